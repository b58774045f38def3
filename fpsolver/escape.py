"""Escape-rate machinery behind :meth:`FokkerPlanck.escape_rate` and the transient rate of
:meth:`FokkerPlanck.evolve`: the barrier and its Kramers / Eyring–Kramers rate, the
potential-theoretic (committor) rate from a thermal basin, the current through a dividing
surface, and the checks that flag rates from direct solves that have lost their digits.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sps
import xarray as xr
from scipy import ndimage

from .critical import critical_points
from .errors import FPSolverWarning, InputError
from .fields_xr import TIME_UNITS, to_dataarray
from .grid import Grid
from .rates import (
    DIRECT_PRECISION_LIMIT,
    committor,
    jump_rates,
    log_detailed_balance_weights,
    mfpt_log_from_basin,
    reactive_current,
)
from .spectral import slowest_modes
from .theory import eyring_kramers

if TYPE_CHECKING:
    from .problem import FokkerPlanck

__all__ = ["escape_rate", "barrier", "committor_rate", "surface_flux", "dividing_plane", "ESCAPE_METHODS"]

#: Methods of :func:`escape_rate`.
ESCAPE_METHODS = ("mfpt", "flux", "committor", "eigen")

#: Rates below eps-level of the fastest jump rate (scale / rate above 1 / this) have no digits left.
DIRECT_NO_DIGITS = 1e-15

COMMITTOR_ATTRS = {"long_name": "forward committor: probability to reach the target before the start", "units": "1"}
CURRENT_ATTRS = {"long_name": "net reactive probability current (start to target), scaled to max 1", "units": "1"}


def escape_rate(
    problem: FokkerPlanck,
    start: Sequence[float],
    target: str | np.ndarray | None = None,
    methods: Sequence[str] = ESCAPE_METHODS,
) -> xr.Dataset:
    """Escape rate from ``start`` to ``target`` by several methods, beside the rate theory.

    Methods
    -------
    ``mfpt``
        1 / mean first-passage time from the start point (:meth:`FokkerPlanck.mfpt`).
    ``flux``
        Steady flux over population with a unit source in the start cell (equals ``mfpt``
        at the cell centre by the Hill relation).
    ``committor``
        Capacity over population, cap(A, B) / Σ π h, with the committor h between the thermal
        basin A = {L ≤ L(start) + T} around the start and the target (detailed balance needed).
        Stays accurate at any barrier height; differs from ``mfpt`` by the in-basin
        relaxation time (relative O(e^{-ΔL/T})).
    ``eigen``
        Slowest decay rate of the survival probability (target absorbing).

    Returns
    -------
    xarray.Dataset
        ``escape_rate`` (method), ``kramers_rate`` (Kramers / Eyring–Kramers, from the minimum
        nearest the start and the lowest index-1 saddle outside the target), ``barrier``, the
        positions and Hessian eigenvalues used (dim ``coordinate``), ``steady_population`` (flux method).
    """
    unknown = [m for m in methods if m not in ESCAPE_METHODS]
    if unknown or not methods:
        raise InputError(f"unknown escape-rate method(s) {unknown}; choose from {', '.join(ESCAPE_METHODS)}")
    target_mask = problem.target_mask(target)
    if target_mask[problem.cell_index(start)]:
        raise InputError(f"the start {list(start)} lies inside the target")
    theory = barrier(problem, start, target_mask)
    scale = float(np.abs(problem.operator.diagonal()).max())  # fastest jump rate
    values, population, fields = [], np.nan, xr.Dataset()
    for method in methods:
        if method == "mfpt":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FPSolverWarning)  # _checked below says it once
                rate = 1.0 / problem.mfpt(start, target)
            if problem.grid.ndim > 1:
                rate = checked_rate(rate, scale, method)
        elif method == "flux":
            flux = problem.flux_over_population(start, target)
            rate = checked_rate(float(flux["rate"]), scale, method)
            population = float(flux["population"]) if np.isfinite(rate) else np.nan
        elif method == "committor":
            rate, fields = committor_rate(problem, start, target_mask)
        else:
            free = ~target_mask
            rate = checked_rate(float(slowest_modes(sps.csr_matrix(problem.operator)[free][:, free], 1, None, problem.solver).rates[0]), scale, method)
        values.append(rate)
    unit = f"1 / ({TIME_UNITS})"
    names = list(problem.model.landscape.variables)
    ds = xr.Dataset(
        {
            "escape_rate": (("method",), np.array(values), {"long_name": "escape rate", "units": unit}),
            "kramers_rate": ((), theory["rate"], {"long_name": "Kramers / Eyring-Kramers rate", "units": unit}),
            "barrier": ((), theory["barrier"], {"long_name": "barrier L(saddle) - L(minimum)", "units": "loss"}),
            "minimum": (("coordinate",), theory["minimum"], {"long_name": "minimum nearest the start", "units": "1"}),
            "saddle": (("coordinate",), theory["saddle"], {"long_name": "index-1 saddle", "units": "1"}),
            "hessian_minimum": (("coordinate",), theory["h_min"], {"long_name": "Hessian eigenvalues at the minimum", "units": "loss"}),
            "hessian_saddle": (("coordinate",), theory["h_saddle"], {"long_name": "Hessian eigenvalues at the saddle", "units": "loss"}),
            "steady_population": ((), population, {"long_name": "steady population for a unit source (flux method)", "units": TIME_UNITS}),
        },
        coords={"method": ("method", list(methods)), "coordinate": ("coordinate", names)},
    )
    ds = ds.merge(fields)
    ds.attrs.update(problem.attrs())
    ds.attrs["time_units"] = TIME_UNITS
    ds.attrs["kramers_note"] = theory["note"]
    return ds


def barrier(problem: FokkerPlanck, start: Sequence[float], target_mask: np.ndarray) -> dict[str, Any]:
    """Minimum nearest the start, lowest index-1 saddle above it outside the target, and the Kramers rate."""
    land = problem.model.landscape
    points = critical_points(land, problem.grid)
    minima = [p for p in points if p.index == 0]
    position = np.array([start[problem.grid.index(v)] for v in land.variables], dtype=float)
    if not minima:
        raise InputError("no minimum of the landscape lies inside the grid")
    a = min(minima, key=lambda p: np.linalg.norm(p.position - position))
    saddles = [
        p for p in points
        if p.index == 1 and p.value > a.value and not target_mask[problem.cell_index(full_point(problem, p.position))]
    ]
    if not saddles:
        raise InputError("no barrier found: no index-1 saddle above the start's minimum lies outside the target")
    b = saddles[0]
    height = b.value - a.value
    rate, note = np.nan, "Kramers / Eyring-Kramers need D = T * mobility with constant mobility"
    coeffs = problem.coefficients
    if problem.model.temperature is not None and coeffs.mobility.constant:
        mobility = coeffs.mobility({n: np.zeros(1) for n in coeffs.dims})[..., 0]
        keep = [coeffs.dims.index(v) for v in land.variables]
        h_min, h_saddle = land.hessian(*a.position), land.hessian(*b.position)
        rate = eyring_kramers(h_min, h_saddle, height, problem.model.temperature, mobility[np.ix_(keep, keep)])
        note = "Eyring-Kramers (overdamped, uniform temperature)"
    return {"rate": float(rate), "barrier": height, "minimum": a.position, "saddle": b.position, "h_min": a.eigenvalues, "h_saddle": b.eigenvalues, "note": note}


def full_point(problem: FokkerPlanck, position: np.ndarray) -> list[float]:
    """A grid point from landscape coordinates (other axes at their centre)."""
    land_vars = problem.model.landscape.variables
    return [float(position[land_vars.index(ax.name)]) if ax.name in land_vars else 0.5 * (ax.lo + ax.hi) for ax in problem.grid]


def committor_rate(problem: FokkerPlanck, start: Sequence[float], target_mask: np.ndarray) -> tuple[float, xr.Dataset]:
    """Potential-theoretic rate from the thermal basin around ``start``, with the committor and
    reactive current as fields (NaN rate and no fields without detailed balance)."""
    q = jump_rates(problem.operator, problem.volumes)
    log_pi = log_detailed_balance_weights(q, problem.grid)
    if log_pi is None:
        warnings.warn("the 'committor' escape rate needs detailed balance, which this operator lacks", FPSolverWarning, stacklevel=3)
        return float("nan"), xr.Dataset()
    energy = problem.landscape_on_cells()
    cell = problem.cell_index(start)
    basin = connected(problem.grid, (energy <= energy[cell] + thermal_energy(problem, start)) & ~target_mask, cell)
    log_time, h = mfpt_log_from_basin(q, log_pi, basin, target_mask, problem.leak_rates(q), problem.solver)
    forward = committor(q, target_mask, basin, problem.leak_rates(q), 1.0, problem.solver)
    current, _, _ = reactive_current(q, log_pi, forward, h, problem.grid)  # backward committor = h here
    fields = xr.Dataset(
        {
            "committor": to_dataarray(problem.grid, forward, "committor", COMMITTOR_ATTRS),
            "reactive_current": to_dataarray(problem.grid, current, "reactive_current", CURRENT_ATTRS, leading=("component",)),
        },
        coords={"component": ("component", list(problem.grid.names))},
    )
    return float(np.exp(-log_time)), fields


def thermal_energy(problem: FokkerPlanck, start: Sequence[float]) -> float:
    """Energy scale T of the noise at ``start``: the temperature, or tr D / tr A without one."""
    if problem.model.temperature is not None:
        return problem.model.temperature
    point = {name: np.array([v]) for name, v in zip(problem.grid.names, start)}
    d = problem.coefficients.diffusion(point)[..., 0]
    a = problem.coefficients.mobility(point)[..., 0]
    return float(np.trace(d) / np.trace(a))


def surface_flux(problem: FokkerPlanck, snaps: np.ndarray, times: np.ndarray, surface: str | Mapping[str, float], p0: np.ndarray) -> xr.Dataset:
    """Current across a grid-aligned plane, the population behind it, and their ratio."""
    axis, position = dividing_plane(problem, surface)
    ax = problem.grid[axis]
    k = int(np.argmin(np.abs(ax.faces[1:-1] - position))) + 1  # interior face index
    upper = np.zeros(problem.grid.shape, bool)
    index = [slice(None)] * problem.grid.ndim
    index[axis] = slice(k, None)
    upper[tuple(index)] = True
    upper = upper.ravel()
    if (problem.volumes * p0)[upper].sum() > (problem.volumes * p0)[~upper].sum():
        upper = ~upper  # count the current away from the side that holds the start
    q = jump_rates(problem.operator, problem.volumes)
    into = sps.csr_matrix(q)[upper][:, ~upper]  # K_{start side -> other side}
    back = sps.csr_matrix(q)[~upper][:, upper]
    masses = snaps * problem.volumes
    flux = np.asarray(into @ masses[:, ~upper].T).sum(axis=0) - np.asarray(back @ masses[:, upper].T).sum(axis=0)
    population = masses[:, ~upper].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = flux / population
    unit = f"1 / ({TIME_UNITS})"
    return xr.Dataset(
        {
            "flux": (("time",), flux, {"long_name": f"probability current across {ax.name} = {ax.faces[k]:.6g}", "units": unit}),
            "population": (("time",), population, {"long_name": "probability on the start side of the surface", "units": "1"}),
            "transient_rate": (("time",), rate, {"long_name": "time-dependent rate flux / population", "units": unit}),
            "rate_plateau": ((), plateau(times, rate), {"long_name": "plateau of the time-dependent rate", "units": unit}),
        },
        coords={"time": times},
        attrs={"surface": f"{ax.name} = {ax.faces[k]:.6g}"},
    )


def dividing_plane(problem: FokkerPlanck, surface: str | Mapping[str, float]) -> tuple[int, float]:
    if surface == "auto":
        saddles = [p for p in critical_points(problem.model.landscape, problem.grid) if p.index == 1]
        if not saddles:
            raise InputError("surface='auto' needs an index-1 saddle inside the grid; give the plane, e.g. {'x': 0.0}")
        b = saddles[0]
        variable = problem.model.landscape.variables[int(np.argmax(np.abs(b.unstable_direction)))]
        return problem.grid.index(variable), float(b.position[problem.model.landscape.variables.index(variable)])
    if not isinstance(surface, Mapping) or len(surface) != 1:
        raise InputError(f"surface must be 'auto' or one axis and position such as {{'x': 0.0}}, got {surface!r}")
    (name, position), = surface.items()
    ax = problem.grid.axis(name)
    if not ax.lo < float(position) < ax.hi:
        raise InputError(f"surface {name} = {position} lies outside the grid [{ax.lo}, {ax.hi}]")
    return problem.grid.index(name), float(position)


def plateau(times: np.ndarray, rate: np.ndarray) -> float:
    """Plateau of k(t): the value where it changes least between saved times (after the first fifth)."""
    late = (times > times[-1] / 5) & np.isfinite(rate) & (rate > 0)
    idx = np.flatnonzero(late)
    if idx.size < 3:
        return float("nan")
    change = np.abs(np.diff(np.log(rate[idx]))) / np.diff(times[idx])
    best = int(np.argmin(change))
    return float(np.sqrt(rate[idx[best]] * rate[idx[best + 1]]))


def checked_rate(rate: float, scale: float, method: str) -> float:
    """A rate from a direct solve: warn where it loses digits, NaN where none are left.

    Direct solves of the backward or steady equations carry a relative error of about
    eps * scale / rate (THEORY.md §6; measured 5e-5 at scale/rate = 7e12).
    """
    if not (rate > 0 and np.isfinite(rate)) or scale / rate > 1.0 / DIRECT_NO_DIGITS:
        warnings.warn(f"escape rate by '{method}': no digits left at this barrier (use the 'committor' method)", FPSolverWarning, stacklevel=3)
        return float("nan")
    if scale / rate > DIRECT_PRECISION_LIMIT:
        warnings.warn(f"escape rate by '{method}': up to {np.log10(scale / rate):.0f} of 16 digits lost (use the 'committor' method)", FPSolverWarning, stacklevel=3)
    return rate


def connected(grid: Grid, mask: np.ndarray, cell: int) -> np.ndarray:
    """The face-connected component of ``mask`` (flat) that contains ``cell``."""
    labels, _ = ndimage.label(mask.reshape(grid.shape))
    flat = labels.ravel()
    return flat == flat[cell]
