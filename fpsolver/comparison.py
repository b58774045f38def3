r"""Per-optimizer quantities of an optimizer comparison, beside the PDE's escape times.

Two results that the rate layer does not give for an optimizer's model, whose temperature
:math:`T(\theta)` varies along the escape path (gradient noise :math:`C(\theta)`):

**Closed-form escape time** (:func:`escape_theory`, 1-D). With the local mobility
:math:`A(\theta)` and temperature :math:`T(\theta) = D_\theta/A` (overdamped: :math:`D_\theta`
the diffusion; inertial: its large-damping limit, :math:`A = 1/(\gamma M)`,
:math:`T = D/(\gamma M)`), Laplace's method on the exact 1-D MFPT of the Itô model
(THEORY.md §5) gives

.. math::

    \tau \approx \frac{2\pi}{\lambda_+}\,\frac{A_b}{A_a}\sqrt{\frac{|H_b|\,T_b}{H_a\,T_a}}\;
    e^{\Delta\Phi}, \qquad \Delta\Phi = \int_a^b \frac{L'(\theta)}{T(\theta)}\,d\theta,

from the minimum a past the saddle b, with :math:`\lambda_+ = A_b|H_b|` overdamped and
:math:`\lambda_+ = -\gamma_b/2 + \sqrt{\gamma_b^2/4 + |H_b|/M_b}` inertial (Kramers–Langer at
moderate damping). For a uniform T it is Kramers' formula; :math:`\Delta\Phi` is the exact
exponent of the model for any noise shape (the Xie et al. and Adai-paper exponents are its
piecewise-quadratic approximation for C = H/B). The large-damping (Itô) limit of the
Klein–Kramers equation with θ-dependent D and constant γM is the Itô overdamped model,
which is why the same :math:`\sqrt{T_b/T_a}` factor is used for inertial models; at
moderate damping it is an approximation. The error is O(T/ΔL) (Laplace's method).

**Variance in a well** (:func:`well_variance`). The stationary density of a multi-well
landscape spreads over every well; the variance "near a minimum" is that of the
*quasi-stationary* density: the slowest mode of the generator with the escape target
absorbing, which the surviving particles of a simulation approach (Yaglom limit), so
PDE and simulator (:func:`fpsolver.simulate.quasi_stationary_moments`) measure the same
quantity. The harmonic theory is :math:`T_a/H_a` (THEORY.md §3), off by O(T/ΔL) in an
anharmonic well.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import scipy.integrate as si
import xarray as xr

from .barrier import descend
from .critical import refine
from .errors import FPSolverWarning, InputError
from .fields_xr import TIME_UNITS
from .landscapes import Landscape
from .models import InertialCoefficients, OverdampedCoefficients
from .problem import FokkerPlanck
from .spectral import slowest_modes

__all__ = ["escape_theory", "well_variance", "harmonic_variance", "LOCAL_COEFFICIENTS"]

#: Quadrature nodes of the exponent integral.
NODES = 4001

#: Smallest escape exponent ΔΦ = ∫L'/T for which the closed form is given: its relative error is
#: O(1/ΔΦ) (measured 15 % at ΔΦ = 3 for SGD), and below 1 the barrier is no barrier.
MIN_EXPONENT = 1.0

#: Negative probability in the quasi-stationary mode (of total 1) above which its moments are not trusted.
NEGATIVE_MASS_LIMIT = 1e-6

Local = Callable[[object, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _overdamped_local(coeffs: OverdampedCoefficients, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    points = {coeffs.dims[0]: x}
    mobility = np.broadcast_to(coeffs.mobility(points)[0, 0], x.shape)
    return mobility, np.broadcast_to(coeffs.diffusion(points)[0, 0], x.shape) / mobility


def _inertial_local(coeffs: InertialCoefficients, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    points = {coeffs.positions[0]: x}
    friction = np.broadcast_to(coeffs.damping(points)[0] * coeffs.mass(points)[0], x.shape)
    return 1.0 / friction, np.broadcast_to(coeffs.diffusion(points)[0], x.shape) / friction


def _overdamped_growth(coeffs: OverdampedCoefficients, x: float, curvature: float) -> float:
    mobility, _ = _overdamped_local(coeffs, np.array([x]))
    return float(mobility[0] * abs(curvature))


def _inertial_growth(coeffs: InertialCoefficients, x: float, curvature: float) -> float:
    points = {coeffs.positions[0]: np.array([x])}
    gamma, mass = float(coeffs.damping(points)[0, 0]), float(coeffs.mass(points)[0, 0])
    return -gamma / 2 + float(np.sqrt(gamma**2 / 4 + abs(curvature) / mass))


#: Coefficients type -> (local mobility and temperature along θ, saddle growth rate λ₊).
LOCAL_COEFFICIENTS: dict[type, tuple[Local, Callable[[object, float, float], float]]] = {
    OverdampedCoefficients: (_overdamped_local, _overdamped_growth),
    InertialCoefficients: (_inertial_local, _inertial_growth),
}


def _start_minimum(problem: FokkerPlanck, start: Sequence[float], stop: np.ndarray | None = None) -> float:
    """The minimum of the start's well (1-D): steepest descent over the position cells from the
    start's cell (:func:`fpsolver.barrier.descend`; periodic seams included), then Newton's method
    from the cell reached. Newton alone, from a start on the well's concave flank, would climb to
    the barrier. Raises when the descent enters ``stop`` (position cells of the target) first."""
    land = problem.model.landscape
    x = problem.grid.axis(land.variables[0]).centers
    point = float(np.asarray(start, dtype=float).ravel()[0])
    if not x[0] - 0.5 * (x[1] - x[0]) <= point <= x[-1] + 0.5 * (x[-1] - x[-2]):
        raise InputError(f"the start {list(start)} lies outside the grid's {land.variables[0]} axis [{x[0]:g}, {x[-1]:g}]")
    lower, upper = np.arange(x.size - 1), np.arange(1, x.size)
    if problem.boundaries.periodic(0):
        lower, upper = np.append(lower, x.size - 1), np.append(upper, 0)
    cell = descend(land.value(x), ((lower, upper),), int(np.argmin(np.abs(x - point))), np.zeros(x.size, bool) if stop is None else stop)
    if cell < 0:
        raise InputError(f"the start {list(start)} descends into the target: it is in no well to escape from (the mfpt task still applies)")
    minimum = refine(land, np.array([x[cell]]))
    if minimum is None or minimum.index != 0:
        raise InputError(f"no minimum found by descending from the start {list(start)} (the landscape falls to the grid's edge)")
    return float(minimum.position[0])


def _exits(problem: FokkerPlanck, start: Sequence[float], target: str) -> tuple[float, list[float], Callable[[np.ndarray], np.ndarray]]:
    """The start's minimum a, the saddle on each side of a from which the target is reached, and the
    map of positions back into the axis (1-D).

    From a's cell the position cells are walked in each direction (across the seam of a periodic
    axis) to the first target cell; the saddle of that side is Newton's method from the highest cell
    passed. A side that meets the grid's edge first has no exit. Saddles are returned unwrapped
    (a periodic saddle reached across the seam lies beyond the axis), with ``wrap`` mapping points back.
    """
    land = problem.model.landscape
    if len(land.variables) != 1:
        raise InputError(f"the closed-form escape time is 1-D only; the landscape has variables {list(land.variables)}")
    axis = problem.grid.axis(land.variables[0])
    x = axis.centers
    inside = problem.target_mask(target).reshape(problem.grid.shape)
    inside = inside.reshape(inside.shape[0], -1).any(axis=1)  # a position cell is in the target if any of its velocities is
    if not inside.any():
        raise InputError(f"the target {target!r} contains no cell of the grid")
    a = _start_minimum(problem, start, inside)
    periodic = problem.boundaries.periodic(0)
    period = axis.hi - axis.lo

    def wrap(points: np.ndarray) -> np.ndarray:
        return axis.lo + np.mod(points - axis.lo, period) if periodic else points

    first = int(np.argmin(np.abs(x - a)))
    saddles = []
    for direction in (1, -1):
        steps = np.arange(1, x.size)
        cells = first + direction * steps
        if periodic:
            unwrapped = x[np.mod(cells, x.size)] + period * np.floor_divide(cells, x.size)
            cells = np.mod(cells, x.size)
        else:
            keep = (cells >= 0) & (cells < x.size)
            cells = cells[keep]
            unwrapped = x[cells]
        hit = np.flatnonzero(inside[cells])
        if hit.size == 0:
            continue  # the grid's edge comes first: no exit on this side
        edge = unwrapped[hit[0]]
        passed = unwrapped[: hit[0]]
        top = passed[np.argmax(land.value(wrap(passed)))] if passed.size else a
        saddle = refine(land, np.array([wrap(np.array([top]))[0]]))
        b = None if saddle is None or saddle.index != 1 else float(saddle.position[0])
        if b is not None and periodic:
            b = a + direction * float(np.mod(direction * (b - a), period))
        if b is None or not 0 < direction * (b - a) < direction * (edge - a):
            side = "above" if direction > 0 else "below"
            raise InputError(f"no saddle between the minimum {a:g} and the target {target!r} {side} it: nothing to escape over")
        saddles.append(b)
    return a, saddles, wrap


def _local(problem: FokkerPlanck) -> tuple[Local, Callable[[object, float, float], float]]:
    coeffs = problem.coefficients
    try:
        return next(LOCAL_COEFFICIENTS[kind] for kind in type(coeffs).__mro__ if kind in LOCAL_COEFFICIENTS)
    except StopIteration:
        raise InputError(f"no closed-form theory for {type(coeffs).__name__}") from None


def harmonic_variance(problem: FokkerPlanck, start: Sequence[float]) -> xr.Dataset:
    r"""Harmonic variance :math:`T_a/H_a` at the minimum below ``start`` (1-D; T the model's local temperature).

    For HessianNoise, :math:`T_a = \eta(H_a + \delta)/(2B)` for SGD and :math:`(\eta/2)\sqrt{(H_a+\delta)/B}`
    for Adam with P frozen at the minimum (THEORY.md §3 with C = (H + δ)/B).

    Parameters
    ----------
    problem
        A 1-D problem, overdamped or its phase space.
    start
        A point in the well; Newton's method from it finds the minimum.

    Returns
    -------
    xarray.Dataset
        ``well_variance_theory`` (dim ``parameter``).
    """
    local, _ = _local(problem)
    land = problem.model.landscape
    if len(land.variables) != 1:
        raise InputError(f"the harmonic variance is computed in 1-D only; the landscape has variables {list(land.variables)}")
    a = _start_minimum(problem, start)
    _, temperature = local(problem.coefficients, np.array([a]))
    curvature = float(land.hessian(np.array([a]))[0, 0, 0])
    return xr.Dataset(
        {"well_variance_theory": (("parameter",), [float(temperature[0]) / curvature], {"long_name": "harmonic variance T/H at the minimum", "units": "1"})},
        coords={"parameter": list(land.variables)},
    )


def escape_theory(problem: FokkerPlanck, start: Sequence[float], target: str) -> xr.Dataset:
    r"""Closed-form escape time from the start's minimum over the saddles towards ``target`` (1-D; module docstring).

    Parameters
    ----------
    problem
        A 1-D overdamped problem or its phase space (any registered coefficients type).
    start
        A point in the basin (positions only); the descent from it finds the minimum a.
    target
        A region such as ``"x >= 0.4"``. On each side of a from which the target is reached
        (both, for a region on both sides or on a periodic axis) the saddle b is the top passed
        on the way; the rates over the saddles add.

    Returns
    -------
    xarray.Dataset
        ``theory_escape_time`` (model time) and, for an optimizer's model,
        ``theory_escape_iterations``; ``theory_exits`` (the saddles combined); and for the
        fastest exit ``theory_exponent`` (ΔΦ), ``theory_growth_rate`` (λ₊),
        ``theory_temperature_minimum`` and ``theory_temperature_saddle`` (T at a and b).
    """
    coeffs = problem.coefficients
    local, growth = _local(problem)
    land = problem.model.landscape
    a, saddles, wrap = _exits(problem, start, target)
    exits = [_exit(coeffs, local, growth, land, a, b, wrap) for b in saddles]
    tau = 1.0 / sum(1.0 / e.time for e in exits)
    fastest = min(exits, key=lambda e: e.time)
    low = [e for e in exits if e.exponent < MIN_EXPONENT]
    if low:
        warnings.warn(
            f"escape_theory: the escape exponent int L'/T from the minimum {a:.6g} to the saddle {low[0].saddle:.6g} is only "
            f"{low[0].exponent:.3g}: the barrier is below the noise's energy scale, there is no separation of time "
            f"scales for Kramers-Langer theory (its error is O(1/exponent)); the closed form is NaN, use the PDE's mfpt",
            FPSolverWarning,
            stacklevel=2,
        )
        tau = float("nan")
    ds = xr.Dataset(
        {
            "theory_escape_time": ((), tau, {"long_name": "closed-form escape time (Kramers-Langer, local temperature)", "units": TIME_UNITS}),
            "theory_exits": ((), len(exits), {"long_name": "saddles whose escape rates the closed form adds", "units": "1"}),
            "theory_exponent": ((), fastest.exponent, {"long_name": "escape exponent: integral of L'/T from minimum to the fastest exit's saddle", "units": "1"}),
            "theory_growth_rate": ((), fastest.growth, {"long_name": "growth rate at the fastest exit's saddle (lambda_+)", "units": f"1 / ({TIME_UNITS})"}),
            "theory_temperature_minimum": ((), fastest.t_min, {"long_name": "local temperature at the minimum", "units": "loss"}),
            "theory_temperature_saddle": ((), fastest.t_saddle, {"long_name": "local temperature at the fastest exit's saddle", "units": "loss"}),
        }
    )
    step = getattr(problem.model, "iteration_time", None)
    if step is not None:
        ds["theory_escape_iterations"] = ((), tau / step, {"long_name": "closed-form escape time in optimizer iterations", "units": "1"})
    ds.attrs["escape_theory_note"] = (
        "1/tau = sum over the saddles b of lambda_+ / (2 pi) * (A_a / A_b) sqrt(H_a T_a / (|H_b| T_b)) exp(-int_a^b L'/T); "
        f"minimum {a:.6g}, saddles " + ", ".join(f"{e.saddle:.6g}" for e in exits)
    )
    return ds


class _Exit(NamedTuple):
    """The closed form over one saddle: its time, exponent ΔΦ, growth rate λ₊, position, and T at a and b."""

    time: float
    exponent: float
    growth: float
    saddle: float
    t_min: float
    t_saddle: float


def _exit(coeffs: object, local: Local, growth: Callable[[object, float, float], float], land: Landscape, a: float, b: float, wrap: Callable[[np.ndarray], np.ndarray]) -> _Exit:
    """Kramers-Langer time over one saddle b (unwrapped) from the minimum a, with the local temperature."""
    x = np.linspace(a, b, NODES)
    mobility, temperature = local(coeffs, wrap(x))
    slope = land.gradient(wrap(x))[0]
    exponent = float(si.simpson(slope / temperature, x=x))
    b_inside = float(wrap(np.array([b]))[0])
    h_a, h_b = float(land.hessian(np.array([a]))[0, 0, 0]), float(land.hessian(np.array([b_inside]))[0, 0, 0])
    rate = growth(coeffs, b_inside, h_b)
    prefactor = 2 * np.pi / rate * mobility[-1] / mobility[0] * np.sqrt(abs(h_b) * temperature[-1] / (h_a * temperature[0]))
    return _Exit(float(prefactor * np.exp(exponent)), exponent, rate, b_inside, float(temperature[0]), float(temperature[-1]))


def well_variance(problem: FokkerPlanck, target: str) -> xr.Dataset:
    r"""Mean and variance of each position in the quasi-stationary density off ``target`` (target cells absorbing).

    The density is the slowest mode of the generator restricted to the cells outside the
    target (positive by Perron–Frobenius); in phase space its position marginal is used.
    Its decay rate is returned too (the escape rate of the quasi-stationary state).

    Parameters
    ----------
    problem
        Any problem (overdamped or phase space, any dimension).
    target
        The absorbing region, e.g. ``"x >= 0.4"``.

    Returns
    -------
    xarray.Dataset
        ``well_mean_pde`` and ``well_variance_pde`` (dim ``parameter``), ``well_decay_rate_pde``.
    """
    chain = problem.chain
    free = ~problem.target_mask(target)
    if not free.any():
        raise InputError(f"the target {target!r} covers the whole grid")
    modes = slowest_modes(chain.q[free][:, free], 1, None, problem.rate_solver)
    vector = np.real(modes.vectors[:, 0])
    vector = vector / vector.sum()
    negative = float(-np.sum(np.minimum(vector, 0.0)))
    if negative > NEGATIVE_MASS_LIMIT:  # a phase-space generator is not an M-matrix: round-off-level negatives are expected
        warnings.warn(f"the quasi-stationary mode has negative mass {negative:.3g} (of 1): the variance is unreliable", FPSolverWarning, stacklevel=2)
    masses = np.zeros(chain.size)
    masses[free] = np.clip(vector, 0.0, None)
    masses /= masses.sum()
    names = list(problem.model.landscape.variables)
    mesh = dict(zip(problem.grid.names, (np.broadcast_to(m, problem.grid.shape).ravel() for m in problem.grid.mesh())))
    mean = np.array([masses @ mesh[v] for v in names])
    variance = np.array([masses @ (mesh[v] - mu) ** 2 for v, mu in zip(names, mean)])
    return xr.Dataset(
        {
            "well_mean_pde": (("parameter",), mean, {"long_name": "mean of theta in the well (quasi-stationary, PDE)", "units": "1"}),
            "well_variance_pde": (("parameter",), variance, {"long_name": "variance of theta in the well (quasi-stationary, PDE)", "units": "1"}),
            "well_decay_rate_pde": ((), float(modes.rates[0]), {"long_name": "decay rate of the quasi-stationary state", "units": f"1 / ({TIME_UNITS})"}),
        },
        coords={"parameter": names},
    )
