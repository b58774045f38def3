r"""Implicit time stepping of :math:`dP/dt = \mathcal L P`.

Every scheme only ever solves systems :math:`(I - c\,\Delta t\,\mathcal L)x = r`
for a few constants :math:`c`; each matrix is factorised once and reused for
all steps (:class:`SystemCache`).

=============  =====  ==========================================================
scheme         order  step
=============  =====  ==========================================================
``euler``      1      backward Euler :math:`(I - \Delta t\mathcal L)P^{n+1} = P^n`; L-stable,
                      positivity preserving (the generator is an M-matrix)
``cn``         2      Crank–Nicolson; A-stable but not L-stable: rings on stiff data
``bdf2``       2      :math:`(I - \tfrac23\Delta t\mathcal L)P^{n+1} = \tfrac43P^n - \tfrac13P^{n-1}`,
                      started with one backward-Euler step; L-stable
``trbdf2``     2      TR-BDF2 with :math:`\gamma = 2-\sqrt2` (trapezoid to
                      :math:`t+\gamma\Delta t`, then BDF2); L-stable, one factorisation
=============  =====  ==========================================================

New schemes register with :func:`register_scheme`.

Adaptive steps (``integrate(..., rtol=...)``, TR-BDF2 only)
    The embedded estimate of Hosea & Shampine (1996) for TR-BDF2 written as a three-stage
    ESDIRK (:math:`d = \gamma/2`, :math:`w = \sqrt2/4`, weights :math:`b = (w, w, d)` and the
    third-order companion's :math:`\hat b = ((1-w)/3, (3w+1)/3, d/3)`), filtered for stiffness
    by the same matrix:

    .. math:: e = (I - d\,\Delta t\,\mathcal L)^{-1}\,\Delta t\,\mathcal L
              \big(\tfrac{4w-1}{3}P^n - \tfrac13 P^{n+\gamma} + \tfrac{2d}{3}P^{n+1}\big),

    asymptotically exact (ratio to the true local error 1.003 at :math:`\lambda\Delta t = -0.1`).
    A step is accepted when :math:`E = \|e\|_\infty / (\mathrm{rtol}\,\|P^{n+1}\|_\infty) \le 1`;
    the next step comes from a PI controller, :math:`\Delta t \leftarrow \Delta t\cdot 0.9\,
    E_n^{-0.7/3}E_{n-1}^{0.4/3}` (growth at most 5×, shrink at most 5×), rounded down to a ladder of
    :data:`LADDER_RUNGS` values per octave and grown only by a factor :data:`GROW_THRESHOLD` or more,
    so that few distinct matrices are factorised; :class:`SystemCache` keeps the last
    :data:`MAX_SYSTEMS`. Steps are shortened to land exactly on the save times.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import OrderedDict
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sps

from .errors import FPSolverWarning, InputError, SolverError
from .linalg import DIRECT_SOLVERS, Factorization, factorize, inner

__all__ = [
    "Scheme",
    "SCHEMES",
    "register_scheme",
    "SystemCache",
    "Callback",
    "MassCheck",
    "PositivityLimiter",
    "LIMITED_SCHEMES",
    "NegativeDensityCheck",
    "ProgressBar",
    "integrate",
    "steps_for",
]

logger = logging.getLogger(__name__)

#: A callback gets the time and density after each step; returning True stops the run.
Callback = Callable[[float, np.ndarray], "bool | None"]


#: Factorisations kept by a :class:`SystemCache` (least recently used dropped first); the fixed-step
#: schemes need at most two, adaptive TR-BDF2 revisits a few rungs of its step ladder.
MAX_SYSTEMS = 6


class SystemCache:
    r"""Factorisations of :math:`I - c\,\Delta t\,\mathcal L`, one per distinct ``c * dt``
    (the last :data:`MAX_SYSTEMS` used), and how many were built.

    Parameters
    ----------
    operator
        The generator :math:`\mathcal L`.
    solver, options
        Linear solver name and its options (:func:`fpsolver.linalg.factorize`).
    conserved
        A vector :math:`v` with :math:`v^{\mathsf T}\mathcal L = 0` (the cell volumes of a
        mass-conserving generator), or None. Then every exact solution keeps
        :math:`v^{\mathsf T}x = v^{\mathsf T}r`; after an iterative (inexact) solve the defect
        :math:`\delta = v^{\mathsf T}(r - x)` is put back along :math:`|x|`,
        :math:`x \leftarrow x + \delta\,|x|/v^{\mathsf T}|x|`, so probability is conserved to
        round-off however loose the solver's tolerance (a change of the size of that tolerance).
    """

    def __init__(self, operator: sps.spmatrix, solver: str = "superlu", conserved: np.ndarray | None = None, **options):
        self.operator = sps.csr_matrix(operator)
        self.solver = solver
        self.options = options
        self._conserved = None if conserved is None or solver in DIRECT_SOLVERS else np.asarray(conserved, dtype=float)
        self._cache: OrderedDict[float, Factorization] = OrderedDict()
        self._built = 0
        self._identity = sps.identity(self.operator.shape[0], format="csr")

    @property
    def iterative(self) -> bool:
        """Whether the solves are inexact (an iterative solver): schemes then choose their tolerance."""
        return self.solver not in DIRECT_SOLVERS

    def solve(self, c_dt: float, rhs: np.ndarray, guess: np.ndarray | None = None, rtol: float | None = None) -> np.ndarray:
        r"""Solve :math:`(I - c\Delta t\,\mathcal L)x = r`; ``guess`` warm-starts iterative solvers and
        ``rtol`` (their relative residual) replaces the solver's own tolerance for this solve."""
        key = float(c_dt)
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            logger.debug("factorising I - %g L", key)
            self._cache[key] = factorize(self._identity - key * self.operator, self.solver, **self.options)
            self._built += 1
            if len(self._cache) > MAX_SYSTEMS:
                self._cache.popitem(last=False)
        x = self._cache[key].solve(rhs, guess) if rtol is None else self._cache[key].solve(rhs, guess, rtol)
        if self._conserved is not None:
            size = np.abs(x)
            total = inner(self._conserved, size)
            if total > 0:
                x += (inner(self._conserved, rhs) - inner(self._conserved, x)) / total * size
        return x

    @property
    def factorisations(self) -> int:
        """How many systems were factorised (including any since dropped from the cache)."""
        return self._built


class Scheme(ABC):
    """One implicit scheme; keeps its own history between :meth:`step` calls."""

    name: str = ""
    order: int = 0
    #: Whether :meth:`step_with_error` is implemented (adaptive stepping needs it).
    embedded: bool = False

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the history (start a new integration)."""

    @abstractmethod
    def step(self, p: np.ndarray, dt: float, systems: SystemCache) -> np.ndarray:
        """Advance ``p`` by ``dt``."""

    def step_with_error(self, p: np.ndarray, dt: float, systems: SystemCache) -> tuple[np.ndarray, np.ndarray]:
        """Advance ``p`` by ``dt``; also return an estimate of the local error (embedded schemes)."""
        raise InputError(f"the {self.name!r} scheme has no embedded error estimate; adaptive stepping needs 'trbdf2'")


SCHEMES: dict[str, type[Scheme]] = {}


def register_scheme(cls: type[Scheme]) -> type[Scheme]:
    """Class decorator adding a scheme to :data:`SCHEMES` under ``cls.name``."""
    SCHEMES[cls.name] = cls
    return cls


@register_scheme
class BackwardEuler(Scheme):
    name = "euler"
    order = 1

    def step(self, p, dt, systems):
        return systems.solve(dt, p, p)


@register_scheme
class CrankNicolson(Scheme):
    name = "cn"
    order = 2

    def step(self, p, dt, systems):
        return systems.solve(0.5 * dt, p + 0.5 * dt * (systems.operator @ p), p)


@register_scheme
class BDF2(Scheme):
    name = "bdf2"
    order = 2

    def reset(self):
        self._previous: np.ndarray | None = None
        self._dt: float | None = None

    def step(self, p, dt, systems):
        if self._previous is None or self._dt != dt:
            new = systems.solve(dt, p, p)  # start (or restart after a change of dt) with backward Euler
        else:
            new = systems.solve(2.0 * dt / 3.0, (4.0 * p - self._previous) / 3.0, 2.0 * p - self._previous)
        self._previous, self._dt = p, dt
        return new


@register_scheme
class TRBDF2(Scheme):
    name = "trbdf2"
    order = 2
    embedded = True
    gamma = 2.0 - math.sqrt(2.0)
    #: Hosea–Shampine error weights b - b̂ on the three stages (see the module docstring).
    error_weights = ((math.sqrt(2.0) - 1.0) / 3.0, -1.0 / 3.0, (2.0 - math.sqrt(2.0)) / 3.0)

    #: Iterative solvers: the relative residual of a step's solves is SOLVE_SHARE times the relative
    #: size of the previous step's local error estimate, within SOLVE_RTOL_RANGE (the first step uses
    #: the solver's own tolerance). 80³, dt = 0.1: 148 instead of 287 CG iterations, and the result
    #: within 1e-6 of tightly solved steps whose time error is 2e-4 (docs/numerics.md).
    SOLVE_SHARE, SOLVE_RTOL_RANGE = 0.1, (1e-11, 1e-6)
    #: Relative residual of the solve that filters the error estimate (an estimate needs no more).
    ESTIMATE_RTOL = 1e-3

    def reset(self):
        self._solve_rtol: float | None = None

    def _stages(self, p: np.ndarray, dt: float, systems: SystemCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        g = self.gamma
        c = 0.5 * g * dt  # equals (1 - g) / (2 - g) * dt: one factorisation serves both stages
        slope = systems.operator @ p
        # Starting guesses for iterative solvers: the latest state (60³, Jacobi-CG: 85 and 83
        # iterations; an explicit-Euler or extrapolated guess is worse on stiff data).
        mid = systems.solve(c, p + c * slope, p, self._solve_rtol)
        return slope, mid, systems.solve(c, (mid - (1.0 - g) ** 2 * p) / (g * (2.0 - g)), mid, self._solve_rtol)

    def _raw_error(self, p: np.ndarray, dt: float, slope: np.ndarray, mid: np.ndarray, new: np.ndarray, systems: SystemCache) -> np.ndarray:
        """dt (b - b̂) · (stage slopes), the unfiltered Hosea-Shampine estimate; L mid comes from the stage equation."""
        w1, w2, w3 = self.error_weights
        mid_slope = (mid - p) / (0.5 * self.gamma * dt) - slope
        return dt * (w1 * slope + w2 * mid_slope + w3 * (systems.operator @ new))

    def _tune(self, error: np.ndarray, new: np.ndarray) -> None:
        """Tolerance of the next step's solves from this step's local error estimate."""
        size = math.sqrt(inner(new, new))
        if size > 0 and np.isfinite(size):
            low, high = self.SOLVE_RTOL_RANGE
            self._solve_rtol = min(high, max(low, self.SOLVE_SHARE * math.sqrt(inner(error, error)) / size))

    def step(self, p, dt, systems):
        slope, mid, new = self._stages(p, dt, systems)
        if systems.iterative:
            self._tune(self._raw_error(p, dt, slope, mid, new, systems), new)
        return new

    def step_with_error(self, p, dt, systems):
        slope, mid, new = self._stages(p, dt, systems)
        combination = self._raw_error(p, dt, slope, mid, new, systems)
        if not systems.iterative:
            return new, systems.solve(0.5 * self.gamma * dt, combination, combination)
        error = systems.solve(0.5 * self.gamma * dt, combination, combination, self.ESTIMATE_RTOL)
        self._tune(error, new)
        return new, error


def get_scheme(name: str) -> Scheme:
    """A fresh instance of the registered scheme ``name``."""
    try:
        return SCHEMES[name]()
    except KeyError:
        raise InputError(f"unknown time-stepping scheme {name!r}; choose one of {', '.join(SCHEMES)}") from None


def steps_for(duration: float, dt: float, what: str) -> int:
    """Number of ``dt`` steps in ``duration``; raise unless it is a whole number."""
    count = duration / dt
    steps = round(count)
    if steps < 1 or abs(steps - count) > 1e-6 * max(1.0, count):
        raise InputError(f"{what}={duration:g} must be a positive whole multiple of dt={dt:g}")
    return int(steps)


@dataclass
class MassCheck:
    """Callback raising :class:`SolverError` when total probability drifts by more than ``tol``."""

    volumes: np.ndarray
    tol: float = 1e-9
    initial: float | None = None

    def __call__(self, t: float, p: np.ndarray) -> None:
        mass = inner(self.volumes, p)  # BLAS-free: a threaded ddot waits for busy cores (7 ms at 200²)
        if self.initial is None:
            self.initial = mass
        elif abs(mass - self.initial) > self.tol * max(abs(self.initial), 1.0):
            raise SolverError(f"probability not conserved at t={t:g}: mass {mass!r}, started at {self.initial!r}")


#: What to suggest when a scheme's step makes the density negative, by scheme (default: "").
NEGATIVE_DENSITY_ADVICE: dict[str, str] = {
    "": "use scheme euler (positivity preserving) or a smaller dt",
    "cn": "use scheme bdf2 or trbdf2 (L-stable: they damp the stiff modes cn lets ring), euler (positivity preserving) or a smaller dt",
    "euler": "its exact step is positivity preserving, so the linear solves are inexact: use solver superlu",
}


@dataclass
class PositivityLimiter:
    r"""Callback keeping the density non-negative and its mass exact: the default for L-stable schemes.

    No linear scheme of second order is positivity-preserving for every step (Godunov);
    BDF2 and TR-BDF2 undershoot for a step or two on a steep start (1.7 % of the mass after
    the first TR-BDF2 step of the bundled double_well_2d, 1.7e-7 for BDF2 on a coarse grid).
    Where a step leaves more than ``tol`` of the mass negative, the negative values are set to
    zero and the rest scaled by :math:`\sum V_ip_i / \sum V_i\max(p_i, 0)`: probability stays
    conserved to round-off, the density non-negative, and the change is the size of the
    undershoot itself (the scheme's own error there). The largest share removed in a run is
    kept in :attr:`removed` and written to the output (``positivity_removed``).
    It runs first among the callbacks and changes ``p`` in place (the next step starts from it).
    """

    volumes: np.ndarray
    tol: float = 1e-13
    removed: float = 0.0

    def __call__(self, t: float, p: np.ndarray) -> None:
        weighted = self.volumes * p
        negative = -float(np.minimum(weighted, 0.0).sum())
        total = float(np.abs(weighted).sum())
        if negative <= self.tol * total:
            return
        positive = np.maximum(p, 0.0)
        p[:] = positive * (float(weighted.sum()) / inner(self.volumes, positive))
        self.removed = max(self.removed, negative / total)


#: Schemes the positivity limiter is on for by default (L-stable: their undershoot is a transient
#: of the start; Crank-Nicolson's ringing is left visible and warned about instead).
LIMITED_SCHEMES = ("euler", "bdf2", "trbdf2")


@dataclass
class NegativeDensityCheck:
    r"""Callback warning (once per run) when the density delivered is negative beyond ``tol``.

    The negative mass :math:`-\sum_i V_i \min(p_i, 0)` is compared with ``tol`` times the
    total absolute mass at the output times (multiples of ``interval``; every step when
    it is None), because that is what a user gets; :attr:`worst` records the largest
    share over *every* step. Backward Euler cannot produce negative values (its matrix
    is an M-matrix). Crank–Nicolson does on stiff data with large steps (not L-stable:
    its stiff modes ring with alternating sign; 16 % of the mass on a 4-cell-wide
    Gaussian). BDF2 and TR-BDF2 undershoot for a step or two on a steep start (the
    bundled double_well_2d: 1.7 % after the first TR-BDF2 step, 0 from t = 0.1 on, and
    4e-7 error at t = 5), which is why only output times are judged.

    Parameters
    ----------
    volumes
        Cell volumes (flattened like the density).
    scheme
        Name of the scheme, for the message.
    interval
        Output interval (the run's ``save_every``, or ``t_end``); None checks every step.
    tol
        Relative negative mass tolerated (1e-6: BDF2's ordinary undershoot on a coarse
        grid is 1.7e-7, far below its time error, and is not flagged).
    """

    volumes: np.ndarray
    scheme: str
    interval: float | None = None
    tol: float = 1e-6
    worst: float = 0.0
    warned: bool = False

    def __call__(self, t: float, p: np.ndarray) -> None:
        negative = -inner(self.volumes, np.minimum(p, 0.0))
        total = inner(self.volumes, np.abs(p))
        share = negative / total if total > 0 else 0.0
        self.worst = max(self.worst, share)
        if share > self.tol and not self.warned and self._is_output(t):
            self.warned = True
            advice = NEGATIVE_DENSITY_ADVICE.get(self.scheme, NEGATIVE_DENSITY_ADVICE[""])
            warnings.warn(
                f"the {self.scheme} steps produced negative densities at t={t:g} (min p = {p.min():.3g}, "
                f"{100 * share:.3g} % of the mass negative); {advice}",
                FPSolverWarning,
                stacklevel=2,
            )

    def _is_output(self, t: float) -> bool:
        if self.interval is None:
            return True
        count = t / self.interval
        return abs(count - round(count)) <= 1e-9 * max(1.0, count)


@dataclass
class ProgressBar:
    """Callback showing a tqdm progress bar over the steps."""

    total: int
    description: str = "evolve"
    _bar: object = field(default=None, init=False, repr=False)

    def __call__(self, t: float, p: np.ndarray) -> None:
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=self.description, unit="step", leave=False)
        self._bar.update(1)  # type: ignore[attr-defined]
        self._bar.set_postfix_str(f"t={t:.4g}", refresh=False)  # type: ignore[attr-defined]
        if self._bar.n >= self.total:  # type: ignore[attr-defined]
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()  # type: ignore[attr-defined]
            self._bar = None


def integrate(
    systems: SystemCache,
    p0: np.ndarray,
    t_end: float,
    dt: float | None = None,
    scheme: str = "bdf2",
    save_every: float | None = None,
    callbacks: Sequence[Callback] = (),
    rtol: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Integrate from t = 0 to ``t_end``: fixed steps ``dt``, or adaptive steps when ``rtol`` is given.

    Parameters
    ----------
    rtol
        Adaptive stepping: local error per step at most ``rtol`` times the largest density value
        (see the module docstring); ``dt`` is then the first step (default: estimated from
        :math:`\|P_0\|/\|\mathcal L P_0\|`) and ``save_every`` any positive interval.

    Returns
    -------
    times, snapshots
        Output times (0, save_every, 2 save_every, ..., t_end) and the densities
        there, shape ``(n_times, n_cells)``. A callback returning True stops the
        run early; the last state is then also returned.
    """
    if rtol is not None:
        return _integrate_adaptive(systems, p0, t_end, dt, scheme, save_every, callbacks, rtol)
    if dt is None or not (dt > 0 and math.isfinite(dt)):
        raise InputError(f"dt must be a positive number, got {dt!r}")
    n_steps = steps_for(t_end, dt, "t_end")
    every = n_steps if save_every is None else steps_for(save_every, dt, "save_every")
    stepper = get_scheme(scheme)
    p = np.asarray(p0, dtype=float).copy()
    times, snaps = [0.0], [p.copy()]
    for k in range(1, n_steps + 1):
        p = stepper.step(p, dt, systems)
        if not np.all(np.isfinite(p)):
            raise SolverError(f"the {scheme} step produced non-finite values at t={k * dt:g}")
        t = k * dt
        stop = any([bool(cb(t, p)) for cb in callbacks])
        if k % every == 0 or k == n_steps or stop:
            times.append(t)
            snaps.append(p.copy())
        if stop:
            logger.info("stopped by a callback at t=%g", t)
            break
    return np.array(times), np.array(snaps)


#: Safety factor and PI gains (on E_n and E_{n-1}, divided by order + 1) of the step controller.
SAFETY, GAIN_NOW, GAIN_PREVIOUS = 0.9, 0.7, 0.4
#: Limits on the ratio of successive steps.
MAX_GROWTH, MAX_SHRINK = 5.0, 0.2
#: Steps are rounded down to 2^(k / LADDER_RUNGS) and grown only by GROW_THRESHOLD or more.
LADDER_RUNGS, GROW_THRESHOLD = 4, 1.5
#: Steps below this fraction of t_end mean the error cannot be controlled.
MIN_STEP_FRACTION = 1e-12


def _on_ladder(dt: float) -> float:
    return 2.0 ** (math.floor(LADDER_RUNGS * math.log2(dt) + 1e-9) / LADDER_RUNGS)


def _integrate_adaptive(
    systems: SystemCache,
    p0: np.ndarray,
    t_end: float,
    dt: float | None,
    scheme: str,
    save_every: float | None,
    callbacks: Sequence[Callback],
    rtol: float,
) -> tuple[np.ndarray, np.ndarray]:
    if not (0 < rtol < 1):
        raise InputError(f"rtol must lie in (0, 1), got {rtol!r}")
    if not (t_end > 0 and math.isfinite(t_end)):
        raise InputError(f"t_end must be a positive number, got {t_end!r}")
    if save_every is not None and not (save_every > 0 and math.isfinite(save_every)):
        raise InputError(f"save_every must be a positive number, got {save_every!r}")
    stepper = get_scheme(scheme)
    if not stepper.embedded:
        raise InputError(f"adaptive stepping (rtol) needs a scheme with an error estimate ('trbdf2'), got {scheme!r}")
    p = np.asarray(p0, dtype=float).copy()
    if dt is None:
        rate = float(np.abs(systems.operator @ p).max()) / max(float(np.abs(p).max()), np.finfo(float).tiny)
        dt = min(t_end, rtol ** (1.0 / 3.0) / rate) if rate > 0 else t_end
    if not (dt > 0 and math.isfinite(dt)):
        raise InputError(f"dt must be a positive number, got {dt!r}")
    dt = _on_ladder(dt)
    n_saves = 1 if save_every is None else max(1, math.ceil(t_end / save_every - 1e-9))
    save_times = [min(t_end, k * save_every) for k in range(1, n_saves)] + [t_end] if save_every else [t_end]
    times, snaps = [0.0], [p.copy()]
    t, previous_error, target = 0.0, 1.0, 0
    while target < len(save_times):
        goal = save_times[target]
        step = min(dt, goal - t)
        landing = step < dt or goal - t - step <= 1e-12 * t_end
        new, estimate = stepper.step_with_error(p, step, systems)
        scale = rtol * max(float(np.abs(new).max()), float(np.abs(p).max()))
        error = float(np.abs(estimate).max()) / scale if np.all(np.isfinite(new)) else math.inf
        if error > 1.0:
            dt = _on_ladder(step * max(MAX_SHRINK, SAFETY * error ** (-1.0 / 3.0)))
            if dt < MIN_STEP_FRACTION * t_end:
                raise SolverError(f"adaptive TR-BDF2 needs steps below {dt:.3g} at t={t:g} to reach rtol={rtol:g}")
            continue
        p, t = new, (goal if landing else t + step)
        error = max(error, 1e-10)
        proposal = step * min(MAX_GROWTH, SAFETY * error ** (-GAIN_NOW / 3.0) * previous_error ** (GAIN_PREVIOUS / 3.0))
        previous_error = error
        if not landing or proposal < dt:
            rung = _on_ladder(proposal)
            dt = rung if (rung < dt or rung >= GROW_THRESHOLD * dt) else dt
        stop = any([bool(cb(t, p)) for cb in callbacks])
        if landing or stop:
            times.append(t)
            snaps.append(p.copy())
            target += landing
        if stop:
            logger.info("stopped by a callback at t=%g", t)
            break
    return np.array(times), np.array(snaps)
