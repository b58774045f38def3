"""Transient rate through a dividing surface during an evolution.

The probability current across a grid-aligned plane of faces, from the chain's jumps
between the two sides, the population on the start's side, and their ratio
:math:`k(t)` with its plateau (the flux-over-population rate of the transient regime).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sps
import xarray as xr

from .chain import MarkovChain
from .critical import critical_points
from .errors import InputError
from .fields_xr import TIME_UNITS
from .landscapes import Landscape

__all__ = ["surface_flux", "dividing_plane", "plateau"]


def dividing_plane(landscape: Landscape, grid, surface: str | Mapping[str, float]) -> tuple[int, float]:
    """Axis number and position of a dividing plane: ``{"x": 0.0}``, or ``"auto"`` (through the
    lowest index-1 saddle, normal to the axis its unstable direction is closest to)."""
    if surface == "auto":
        saddles = [p for p in critical_points(landscape, grid) if p.index == 1]
        if not saddles:
            raise InputError("surface='auto' needs an index-1 saddle inside the grid; give the plane, e.g. {'x': 0.0}")
        b = saddles[0]
        variable = landscape.variables[int(np.argmax(np.abs(b.unstable_direction)))]
        return grid.index(variable), float(b.position[landscape.variables.index(variable)])
    if not isinstance(surface, Mapping) or len(surface) != 1:
        raise InputError(f"surface must be 'auto' or one axis and position such as {{'x': 0.0}}, got {surface!r}")
    ((name, position),) = surface.items()
    ax = grid.axis(name)
    if not ax.lo < float(position) < ax.hi:
        raise InputError(f"surface {name} = {position} lies outside the grid [{ax.lo}, {ax.hi}]")
    return grid.index(name), float(position)


def surface_flux(chain: MarkovChain, axis: int, position: float, snaps: np.ndarray, times: np.ndarray, p0: np.ndarray) -> xr.Dataset:
    """Current across the plane of faces nearest ``position`` along ``axis``, the population
    behind it, and their ratio, for the densities ``snaps`` (time, cells)."""
    grid = chain.grid
    ax = grid[axis]
    k = int(np.argmin(np.abs(ax.faces[1:-1] - position))) + 1  # interior face index
    upper = np.zeros(grid.shape, bool)
    index = [slice(None)] * grid.ndim
    index[axis] = slice(k, None)
    upper[tuple(index)] = True
    upper = upper.ravel()
    volumes = chain.volumes
    if (volumes * p0)[upper].sum() > (volumes * p0)[~upper].sum():
        upper = ~upper  # count the current away from the side that holds the start
    q = chain.q
    into = sps.csr_matrix(q)[upper][:, ~upper]  # K_{start side -> other side}
    back = sps.csr_matrix(q)[~upper][:, upper]
    masses = snaps * volumes
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


def plateau(times: np.ndarray, rate: np.ndarray) -> float:
    """Plateau of k(t): the value where it changes least between saved times (after the first fifth)."""
    late = (times > times[-1] / 5) & np.isfinite(rate) & (rate > 0)
    idx = np.flatnonzero(late)
    if idx.size < 3:
        return float("nan")
    change = np.abs(np.diff(np.log(rate[idx]))) / np.diff(times[idx])
    best = int(np.argmin(change))
    return float(np.sqrt(rate[idx[best]] * rate[idx[best + 1]]))
