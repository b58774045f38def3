r"""Escape rates by several estimators, beside the rate theory of the model.

:func:`escape_rate` takes an :class:`EscapeProblem` — the chain, the start, the target and
the fields the estimators need — and never the :class:`~fpsolver.problem.FokkerPlanck`
object. Estimators and theory columns are registries:

=============  ===============================================================================
estimator      what it computes (rates in 1 / model time)
=============  ===============================================================================
``mfpt``       1 / mean first-passage time from the start point; exact from any start at any
               rate scale (:func:`fpsolver.rates.mfpt_field`)
``flux``       steady flux over population with a unit source in the start cell, by one direct
               solve (equals ``mfpt`` at the cell centre by the Hill relation); NaN with a
               warning where the direct solve has lost its digits
``committor``  capacity over population from the thermal basin around the start's minimum
               (potential theory with the time-reversed chain: a stationary state, or the
               model's reference state); the rate of the basin, which differs from ``mfpt`` by
               the in-basin relaxation; NaN when the start is in no basin
``eigen``      slowest decay rate of the survival probability (target absorbing); NaN where
               the shift-invert solve has lost its digits
=============  ===============================================================================

Theory columns come from :data:`THEORY_RATES`, keyed by the model's coefficients type; the
barrier is the saddle on the lowest path from the start's basin to the target
(:mod:`fpsolver.barrier`). Where no barrier exists the theory columns are NaN with one
warning saying why; the estimators do not need a barrier.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from .barrier import Barrier, descend, find_barrier
from .chain import MarkovChain
from .errors import FPSolverWarning, InputError
from .fields_xr import TIME_UNITS, to_dataarray
from .landscapes import Landscape
from .models import InertialCoefficients, OverdampedCoefficients
from .rates import (
    checked,
    direct_error,
    mfpt_at,
    mfpt_log_from_basin,
    reactive_current,
    steady_population,
    survival_rate,
)
from .regions import component_of, point_text
from .theory import barrier_action, energy_diffusion, eyring_kramers, langer_inertial, turnover_factor

__all__ = ["EscapeProblem", "Estimate", "ESTIMATORS", "ESCAPE_METHODS", "THEORY_RATES", "escape_rate", "register_estimator", "register_theory"]

COMMITTOR_ATTRS = {"long_name": "forward committor: probability to reach the target before the start", "units": "1"}
CURRENT_ATTRS = {"long_name": "net reactive probability current (start to target), scaled to max 1", "units": "1"}
RATE_UNITS = f"1 / ({TIME_UNITS})"


@dataclass(frozen=True)
class EscapeProblem:
    """Everything the estimators need.

    Attributes
    ----------
    chain
        The discrete chain.
    start
        Start point (one coordinate per grid axis).
    target
        Flat mask of the target cells (absorbing faces count as target too).
    log_weight
        Field whose local maxima mark the wells (log stationary masses, or -energy / T).
    energy
        The landscape on the cells (flat), for the barrier.
    thermal
        Energy scale of the noise at the start (the temperature when there is one).
    landscape
        The loss (for Newton's method at the minimum and saddle).
    coefficients
        The bound model (selects the theory column).
    log_pi
        log of the stationary masses (None: there is no stationary state to use).
    solver
        Linear solver name.
    """

    chain: MarkovChain
    start: np.ndarray
    target: np.ndarray
    log_weight: np.ndarray
    energy: np.ndarray
    thermal: float
    landscape: Landscape
    coefficients: object
    log_pi: np.ndarray | None = None
    solver: str = "superlu"

    @property
    def exits(self) -> np.ndarray:
        """Target cells and the cells that leak through absorbing faces (where escapes end)."""
        return self.target | (self.chain.leak > 0)

    @property
    def start_cell(self) -> int:
        return int(np.ravel_multi_index(self.chain.grid.locate(self.start), self.chain.grid.shape))


@dataclass
class Estimate:
    """One estimator's rate, its steady population (flux) and any fields it produces."""

    rate: float
    population: float = float("nan")
    fields: xr.Dataset = field(default_factory=xr.Dataset)


ESTIMATORS: dict[str, Callable[[EscapeProblem], Estimate]] = {}


def register_estimator(name: str) -> Callable[[Callable[[EscapeProblem], Estimate]], Callable[[EscapeProblem], Estimate]]:
    """Decorator adding an estimator to :data:`ESTIMATORS`."""

    def wrap(func: Callable[[EscapeProblem], Estimate]) -> Callable[[EscapeProblem], Estimate]:
        ESTIMATORS[name] = func
        return func

    return wrap


@register_estimator("mfpt")
def _by_mfpt(ep: EscapeProblem) -> Estimate:
    time, error = mfpt_at(ep.chain, ep.target, ep.log_weight, ep.start, ep.solver)
    time = checked(time, error, f"mean first-passage time from {point_text(ep.start)}")
    return Estimate(1.0 / time if time > 0 else float("nan"))


@register_estimator("flux")
def _by_flux(ep: EscapeProblem) -> Estimate:
    population, _ = steady_population(ep.chain, ep.start_cell, ep.target, ep.solver)
    population = checked(population, direct_error(ep.chain.scale, population), "escape rate by 'flux' (direct steady solve)")
    return Estimate(1.0 / population, population)


@register_estimator("committor")
def _by_committor(ep: EscapeProblem) -> Estimate:
    chain = ep.chain
    if ep.log_pi is None:
        warnings.warn("the 'committor' escape rate needs a stationary state (detailed balance, or mass-conserving boundaries): NaN", FPSolverWarning, stacklevel=4)
        return Estimate(float("nan"))
    low = descend(ep.energy, chain.pairs, ep.start_cell, ep.exits)
    if low < 0:
        warnings.warn(
            f"the 'committor' escape rate is the rate out of the start's basin, but the start {point_text(ep.start)} "
            "descends straight into the target (it is in no metastable basin): NaN; use 'mfpt'",
            FPSolverWarning,
            stacklevel=4,
        )
        return Estimate(float("nan"))
    # The thermal basin in the stationary measure: {log w >= log w(minimum) - 1}, i.e. L <= L_a + T
    # overdamped and L + M r^2 / 2 <= E_a + T in phase space (high-velocity states are not in it).
    region = (ep.log_weight >= ep.log_weight[low] - 1.0) & ~ep.target
    basin = component_of(chain.grid, chain.boundaries, region, low)
    if not np.all(np.isfinite(ep.log_pi[basin])) or not np.isfinite(ep.log_pi).any():
        warnings.warn("the 'committor' escape rate: the stationary state has no digits in the basin: NaN", FPSolverWarning, stacklevel=4)
        return Estimate(float("nan"))
    with np.errstate(over="ignore", invalid="ignore"):
        log_time, error, backward, forward = mfpt_log_from_basin(chain, basin, ep.target, ep.log_pi, ep.solver)
    if not np.isfinite(log_time):
        warnings.warn("the 'committor' escape rate: the stationary state's tails have no digits (the time-reversed chain overflows): NaN", FPSolverWarning, stacklevel=4)
        return Estimate(float("nan"))
    backward = np.clip(backward, 0.0, 1.0)
    current, _, _ = reactive_current(chain, ep.log_pi, forward, backward)
    grid = chain.grid
    fields = xr.Dataset(
        {
            "committor": to_dataarray(grid, forward, "committor", COMMITTOR_ATTRS),
            "reactive_current": to_dataarray(grid, current, "reactive_current", CURRENT_ATTRS, leading=("component",)),
        },
        coords={"component": ("component", list(grid.names))},
    )
    if log_time > np.log(np.finfo(float).max):
        warnings.warn(f"the 'committor' escape rate e^{-log_time:.1f} is below the range of float64: NaN", FPSolverWarning, stacklevel=4)
        return Estimate(float("nan"), fields=fields)
    time = checked(float(np.exp(log_time)), error, "escape rate by 'committor' (potential theory)")
    return Estimate(1.0 / time, fields=fields)


@register_estimator("eigen")
def _by_eigen(ep: EscapeProblem) -> Estimate:
    rate = survival_rate(ep.chain, ep.target, ep.solver)
    time = 1.0 / rate if rate > 0 else float("inf")
    return Estimate(1.0 / checked(time, direct_error(ep.chain.scale, time), "escape rate by 'eigen' (shift-invert)"))


#: Estimators of :func:`escape_rate`, in their default order.
ESCAPE_METHODS: tuple[str, ...] = tuple(ESTIMATORS)

TheoryRate = Callable[[object, Barrier, Landscape], tuple[float, str, dict[str, tuple[float, str]]]]

#: Coefficients type -> closed-form rate from the minimum and saddle: returns (rate, note, extras),
#: the extras being further closed forms ``name -> (value, units)`` written as ``theory_<name>``.
THEORY_RATES: dict[type, TheoryRate] = {}


def register_theory(coefficients_type: type) -> Callable[[TheoryRate], TheoryRate]:
    """Decorator registering the closed-form rate of a model kind."""

    def wrap(func: TheoryRate) -> TheoryRate:
        THEORY_RATES[coefficients_type] = func
        return func

    return wrap


@register_theory(OverdampedCoefficients)
def _eyring_kramers(coeffs: OverdampedCoefficients, barrier: Barrier, landscape: Landscape) -> tuple[float, str, dict[str, tuple[float, str]]]:
    if coeffs.model.temperature is None or not coeffs.mobility.constant:
        return float("nan"), "Kramers / Eyring-Kramers need D = T * mobility with constant mobility", {}
    mobility = coeffs.mobility({n: np.zeros(1) for n in coeffs.dims})[..., 0]
    keep = [coeffs.dims.index(v) for v in landscape.variables]
    rate = eyring_kramers(
        landscape.hessian(*barrier.minimum.position), landscape.hessian(*barrier.saddle.position),
        barrier.height, coeffs.model.temperature, mobility[np.ix_(keep, keep)],
    )
    return float(rate), "Eyring-Kramers (overdamped, uniform temperature)", {}


@register_theory(InertialCoefficients)
def _inertial_kramers(coeffs: InertialCoefficients, barrier: Barrier, landscape: Landscape) -> tuple[float, str, dict[str, tuple[float, str]]]:
    """Langer / Kramers at moderate damping; in 1-D also energy diffusion and the Mel'nikov-Meshkov
    turnover A(Delta) k_Kramers, Delta = gamma S_b / T (the reported rate)."""
    temperature = coeffs.equilibrium_temperature
    if temperature is None or not coeffs.damping_field.constant:
        return float("nan"), "inertial Kramers theory needs constant mass and damping and one temperature", {}
    origin = {d: np.zeros(1) for d in coeffs.positions}
    mass, damping = coeffs.mass(origin)[:, 0], coeffs.damping(origin)[:, 0]
    h_min, h_saddle = landscape.hessian(*barrier.minimum.position), landscape.hessian(*barrier.saddle.position)
    moderate = langer_inertial(h_min, h_saddle, mass, damping, barrier.height, temperature)
    if len(coeffs.positions) != 1:
        return float(moderate), "Langer (inertial, moderate-to-strong damping); energy diffusion is 1-D only", {"kramers_moderate": (float(moderate), RATE_UNITS)}
    a, b = float(barrier.minimum.position[0]), float(barrier.saddle.position[0])
    action = barrier_action(lambda x: landscape.value(x), a, b, float(mass[0]))
    delta = float(damping[0]) * action / temperature
    omega = float(np.sqrt(h_min[0, 0] / mass[0]))
    extras = {
        "kramers_moderate": (float(moderate), RATE_UNITS),
        "energy_diffusion": (float(energy_diffusion(omega, float(damping[0]), action, barrier.height, temperature)), RATE_UNITS),
        "turnover_delta": (delta, "1"),
        "barrier_action": (action, "loss * time"),
    }
    return float(turnover_factor(delta) * moderate), "Mel'nikov-Meshkov turnover A(Delta) * Kramers (moderate damping), Delta = gamma S_b / T", extras


def theory_rate(ep: EscapeProblem, barrier: Barrier) -> tuple[float, str, dict[str, tuple[float, str]]]:
    """The registered closed form for the model, or NaN with the reason."""
    if barrier.saddle is None:
        return float("nan"), barrier.note, {}
    for kind in type(ep.coefficients).__mro__:
        if kind in THEORY_RATES:
            return THEORY_RATES[kind](ep.coefficients, barrier, ep.landscape)
    return float("nan"), f"no closed-form rate is registered for {type(ep.coefficients).__name__}", {}


def escape_rate(ep: EscapeProblem, methods: Sequence[str] = ESCAPE_METHODS) -> xr.Dataset:
    """Escape rate from ``ep.start`` to ``ep.target`` by each estimator in ``methods``, with theory.

    Returns
    -------
    xarray.Dataset
        ``escape_rate`` (estimator), ``escape_time`` (estimator) = 1 / rate, ``kramers_rate``
        (the model's closed form), ``barrier`` (L(saddle) - L(minimum)), ``minimum`` and
        ``saddle`` positions and their Hessian eigenvalues (dim ``coordinate``; NaN without a
        barrier), ``steady_population`` (flux estimator), and the committor fields.
    """
    methods = tuple(methods)
    unknown = [m for m in methods if m not in ESTIMATORS]
    if unknown or not methods:
        raise InputError(f"unknown escape-rate method(s) {unknown}; choose from {', '.join(ESTIMATORS)}")
    if ep.target[ep.start_cell]:
        raise InputError(f"the start {point_text(ep.start)} lies inside the target")
    barrier = find_barrier(ep.landscape, ep.chain.grid, ep.chain.boundaries, ep.chain.pairs, ep.energy, ep.start_cell, ep.exits)
    theory, note, extras = theory_rate(ep, barrier)
    if barrier.saddle is None:
        warnings.warn(f"theory columns are NaN ({note})", FPSolverWarning, stacklevel=3)
    estimates = [ESTIMATORS[m](ep) for m in methods]
    rates = np.array([e.rate for e in estimates])
    population = next((e.population for e in estimates if np.isfinite(e.population)), float("nan"))
    names = list(ep.landscape.variables)
    nan = np.full(len(names), np.nan)

    def point(p, attr):
        return getattr(p, attr) if p is not None else nan

    ds = xr.Dataset(
        {
            "escape_rate": (("estimator",), rates, {"long_name": "escape rate", "units": RATE_UNITS}),
            "escape_time": (("estimator",), 1.0 / rates, {"long_name": "escape time (1 / rate)", "units": TIME_UNITS}),
            "kramers_rate": ((), theory, {"long_name": "closed-form rate theory (see kramers_note)", "units": RATE_UNITS}),
            "barrier": ((), barrier.height, {"long_name": "barrier L(saddle) - L(minimum) on the lowest path", "units": "loss"}),
            "minimum": (("coordinate",), point(barrier.minimum, "position"), {"long_name": "minimum of the start's basin", "units": "1"}),
            "saddle": (("coordinate",), point(barrier.saddle, "position"), {"long_name": "index-1 saddle on the lowest path to the target", "units": "1"}),
            "hessian_minimum": (("coordinate",), point(barrier.minimum, "eigenvalues"), {"long_name": "Hessian eigenvalues at the minimum", "units": "loss"}),
            "hessian_saddle": (("coordinate",), point(barrier.saddle, "eigenvalues"), {"long_name": "Hessian eigenvalues at the saddle", "units": "loss"}),
            "steady_population": ((), population, {"long_name": "steady population for a unit source (flux estimator)", "units": TIME_UNITS}),
        },
        coords={
            "estimator": ("estimator", list(methods), {"long_name": "rate estimator"}),
            # The former dimension name, kept as an indexed coordinate so that the dictionary form
            # .sel({"method": ...}) of older code still selects (a file read back needs set_xindex).
            "method": ("estimator", list(methods), {"long_name": "rate estimator (former name)"}),
            "coordinate": ("coordinate", names),
        },
    ).set_xindex("method")
    step = getattr(getattr(ep.coefficients, "model", None), "iteration_time", None)
    if step is not None:
        ds["escape_iterations"] = (("estimator",), 1.0 / rates / step, {"long_name": "escape time in optimizer iterations (SGD time / learning rate)", "units": "1"})
        ds["kramers_iterations"] = ((), 1.0 / theory / step if theory > 0 else np.nan, {"long_name": "closed-form escape time in iterations", "units": "1"})
    for name, (value, units) in extras.items():
        ds[f"theory_{name}"] = ((), value, {"long_name": f"closed form: {name.replace('_', ' ')}", "units": units})
    for part in (e.fields for e in estimates):
        ds = ds.merge(part)
    ds.attrs["time_units"] = TIME_UNITS
    ds.attrs["kramers_note"] = note
    return ds
