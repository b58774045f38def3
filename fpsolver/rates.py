r"""Rate algorithms on the discrete chain: mean first-passage times, committors, transition paths.

Everything here takes a :class:`~fpsolver.chain.MarkovChain` and flat boolean masks (see
:mod:`fpsolver.regions`); nothing knows about models or problems.

Precision policy (the one place it is decided)
    A direct sparse solve of the backward equation :math:`Q^\top\tau = -1` computes the
    Schur complements' diagonals by subtraction; their true row sums are the (tiny) escape
    rates, so the relative error of a time :math:`\tau` is about
    :math:`\epsilon\,\max|Q_{ii}|\,\tau_{\max}` (THEORY.md §6). :func:`direct_error` is that
    estimate; past :data:`DIRECT_PRECISION_LIMIT` (six digits) the direct answer is not used.

Mean first-passage times from every cell, at any rate scale (:func:`mfpt_field`)
    1. In 1-D (reversible, non-periodic) the exact birth–death formula, subtraction-free in log
       space (:func:`chain_mfpt_1d`).
    2. Otherwise the strong Markov decomposition at the hitting time of
       :math:`S\cup B` (:func:`mfpt_decomposed`), where :math:`S` holds one cell at the bottom
       of every well (local maxima of the weights):

       .. math:: \tau(x) = u(x) + \sum_{a\in S} H_x(a)\,\tau(a),

       with :math:`u = \mathbb E_x[\tau_{S\cup B}]` and the hitting distribution :math:`H_x` —
       both from one well-conditioned solve (every free cell reaches :math:`S\cup B` fast) —
       and :math:`\tau` on :math:`S` from the small trace chain, solved by subtraction-free
       Grassmann–Taksar–Heyman elimination (:func:`gth_solve`). Every step adds positive
       numbers, so times of 1e300 keep their digits, from any start: inside a basin, on the
       far side of a barrier, anywhere. It needs no detailed balance. The direct solve is not
       used for times: once it has lost its digits its values are garbage of any size, so
       nothing computed from them can tell.
    Where the generator is not an M-matrix (third-order transport in phase space) the trace
    chain's rates are not all positive; then the times at the seeds come from potential theory
    with the time-reversed chain, :math:`\mathbb E_a\tau_C = \sum_y\pi_yh^*_a(y)/\mathrm{cap}(a, C)`
    with C the target and the other seeds (:func:`mfpt_log_from_basin`, an identity for any
    positive weights), the arrival distribution on C from the same sums, and the trace chain
    of the seeds by subtraction-free elimination (:func:`_seed_times_potential`); errors are
    estimated cell by cell; a direct solve is used in the cells where its error, estimated from
    the slowest survival rate (shift-invert), is smaller. Where neither can be trusted the
    answer is NaN with a :class:`~fpsolver.errors.FPSolverWarning`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.sparse as sps

from .chain import MarkovChain
from .errors import FPSolverWarning, InputError, SolverError
from .linalg import factorize, sharing_factorizations
from .regions import interpolate_at, start_cells
from .spectral import slowest_modes

__all__ = [
    "DIRECT_PRECISION_LIMIT",
    "direct_error",
    "checked",
    "checked_field",
    "steady_population",
    "survival_rate",
    "backward_mfpt",
    "chain_mfpt_1d",
    "mfpt_decomposed",
    "mfpt_field",
    "mfpt_at",
    "committor",
    "gth_solve",
    "seed_cells",
    "reactive_current",
    "mfpt_log_from_basin",
    "PotentialTime",
]

logger = logging.getLogger(__name__)

EPS = float(np.finfo(float).eps)

#: Estimated relative error above which a direct result is not used when a precise route exists.
DIRECT_PRECISION_LIMIT = 1e-6

#: Estimated relative error above which a result is not reported at all (NaN and a warning).
REPORT_LIMIT = 1e-3

#: Most seed cells of the Markov decomposition (one per well; beyond this the deepest are kept).
MAX_SEEDS = 64


def direct_error(scale: float, time: float) -> float:
    """Estimated relative error of times from a direct backward solve: eps * scale * time."""
    return EPS * scale * time if np.isfinite(time) else np.inf


def checked(value: float, error: float, what: str) -> float:
    """``value`` if its estimated relative ``error`` leaves digits, else NaN; warns in between.

    This is the single precision policy: errors up to :data:`DIRECT_PRECISION_LIMIT` pass
    silently, up to :data:`REPORT_LIMIT` pass with a warning giving the digits left, beyond it
    the value is NaN with a warning. Negative or non-finite values are NaN with a warning.
    """
    if value == np.inf and error <= REPORT_LIMIT:
        warnings.warn(f"{what}: beyond the range of float64 (> 1.8e308); NaN", FPSolverWarning, stacklevel=3)
        return float("nan")
    if not (np.isfinite(value) and value > 0) or not error <= REPORT_LIMIT:
        warnings.warn(f"{what}: no trustworthy digits (estimated relative error {abs(error):.1g}); NaN", FPSolverWarning, stacklevel=3)
        return float("nan")
    if error > DIRECT_PRECISION_LIMIT:
        warnings.warn(f"{what}: only about {-np.log10(error):.0f} digits are left (estimated relative error {error:.1g})", FPSolverWarning, stacklevel=3)
    return float(value)


def checked_field(values: np.ndarray, errors: np.ndarray, what: str) -> np.ndarray:
    """:func:`checked` cell by cell, with one warning: NaN where a value has no digits (or is not positive and finite)."""
    values = np.asarray(values, dtype=float)
    errors = np.broadcast_to(np.asarray(errors, dtype=float), values.shape)
    bad = ~(np.isfinite(values) & (values >= 0) & (errors <= REPORT_LIMIT))
    if bad.any():
        warnings.warn(
            f"{what}: {int(bad.sum())} of {values.size} cells have no trustworthy digits (estimated relative error above "
            f"{REPORT_LIMIT:g}); NaN there",
            FPSolverWarning,
            stacklevel=3,
        )
    else:
        worst = float(errors.max(initial=0.0))
        if worst > DIRECT_PRECISION_LIMIT:
            warnings.warn(f"{what}: only about {-np.log10(worst):.0f} digits are left (estimated relative error {worst:.1g})", FPSolverWarning, stacklevel=3)
    return np.where(bad, np.nan, values)


def _factorize_free(chain: MarkovChain, free: np.ndarray, solver: str):
    """Factorisation of :math:`-Q^\\top` restricted to the ``free`` cells."""
    try:
        return factorize(-chain.qt[free][:, free], solver)
    except SolverError:
        raise InputError("the target cannot be reached from some cells (the backward equation is singular)") from None


def _solve_free(chain: MarkovChain, free: np.ndarray, rhs: list[np.ndarray], solver: str) -> list[np.ndarray]:
    """Solve :math:`-Q^\\top x = b` restricted to the ``free`` cells for every right-hand side."""
    lu = _factorize_free(chain, free, solver)
    try:
        return [lu.solve(b) for b in rhs]
    except SolverError:
        raise InputError("the target cannot be reached from some cells (the backward equation is singular)") from None


def backward_mfpt(chain: MarkovChain, target: np.ndarray, solver: str = "superlu") -> np.ndarray:
    r"""MFPT from every cell by one direct solve of :math:`Q^\top\tau = -1` off the target (0 on it)."""
    free = ~target
    tau = np.zeros(chain.size)
    tau[free] = _solve_free(chain, free, [np.ones(int(free.sum()))], solver)[0]
    return tau


def steady_population(chain: MarkovChain, cell: int, target: np.ndarray, solver: str = "superlu") -> tuple[float, np.ndarray]:
    r"""Steady state with a unit source in ``cell`` and the target absorbing: :math:`Qm = -e_{\rm cell}`
    off the target. Returns the population :math:`\sum m` (= the MFPT from the cell, Hill
    relation) and the steady masses, by one direct solve."""
    free = ~target
    source = np.zeros(chain.size)
    source[cell] = 1.0
    masses = np.zeros(chain.size)
    try:
        masses[free] = factorize(chain.q[free][:, free], solver).solve(-source[free])
    except SolverError:
        raise InputError("the target cannot be reached from the start (the steady equations are singular)") from None
    return float(masses.sum()), masses


def survival_rate(chain: MarkovChain, target: np.ndarray, solver: str = "superlu") -> float:
    """Slowest decay rate of the probability to stay off the target (target cells absorbing)."""
    free = ~target
    return float(slowest_modes(chain.q[free][:, free], 1, None, solver).rates[0])


def committor(chain: MarkovChain, one: np.ndarray, zero: np.ndarray, ghost: float = 0.0, solver: str = "superlu") -> np.ndarray:
    r"""Hitting probability :math:`h`: 1 on ``one``, 0 on ``zero``, :math:`Q^\top h = 0` elsewhere,
    and the value ``ghost`` beyond absorbing faces.

    The forward committor of transition-path theory (to reach the target before the start) is
    ``committor(chain, target, start, ghost=1)``. It is solved directly, not as ``1 - h``:
    the system is an M-matrix whose triangular solves only add positive terms, so small values
    keep their relative precision. (On a chain that is not :attr:`~fpsolver.chain.MarkovChain.monotone`
    only their absolute precision is kept; values are clipped to [0, 1].)
    """
    return np.clip(_committor_solve(chain, one, zero, ghost, solver)[0], 0.0, 1.0)


def _committor_solve(chain: MarkovChain, one: np.ndarray, zero: np.ndarray, ghost: float, solver: str) -> tuple[np.ndarray, np.ndarray]:
    r"""The committor unclipped (the exact algebraic solution), and an estimate of the absolute error of each value.

    The estimate is :math:`\epsilon\max|Q_{ii}|\,t(x)`, with :math:`t` the mean time to hit
    ``one`` or ``zero`` (the same factorisation, one more solve): the backward error of the solve
    times the size of the inverse's row (THEORY.md §6).
    """
    free = ~(one | zero)
    h = np.zeros(chain.size)
    h[one] = 1.0
    rhs = np.asarray(chain.qt[free][:, one].sum(axis=1)).ravel() + ghost * chain.leak[free]
    hit_time = np.zeros(chain.size)
    try:
        h[free], hit_time[free] = _solve_free(chain, free, [rhs, np.ones(int(free.sum()))], solver)
    except InputError:
        raise InputError("the committor equations are singular: some cells reach neither the start nor the target") from None
    return h, EPS * chain.scale * np.abs(hit_time)


def chain_mfpt_1d(chain: MarkovChain, target: np.ndarray) -> np.ndarray | None:
    r"""Exact MFPT of a reversible 1-D birth–death chain, subtraction-free in log space.

    For a run of free cells with a reflecting wall on one side and the target on the other,
    the time of one step towards the target from cell :math:`k` is
    :math:`\sum_{j \text{ behind } k}\pi_j / (\pi_k u_k)`, with :math:`u_k` the rate of that
    step (into a target cell or out through an absorbing face), so

    .. math:: \tau_i = \sum_{k \text{ from } i \text{ to the target}} \frac{\sum_{j \text{ behind } k}\pi_j}{\pi_k u_k}.

    Returns None where the formula does not apply (not 1-D, periodic, irreversible, or a
    run bounded by targets on both sides).
    """
    log_pi = chain.log_pi
    grid = chain.grid
    if grid.ndim != 1 or log_pi is None or chain.boundaries.periodic(0):
        return None
    n, q, leak = chain.size, chain.q, chain.leak
    tau = np.zeros(n)
    free = ~target
    runs = np.flatnonzero(np.diff(np.concatenate([[0], free.astype(int), [0]])))
    for first, stop in zip(runs[::2], runs[1::2]):
        last = stop - 1
        target_left = first > 0 or leak[0] > 0
        target_right = last < n - 1 or leak[n - 1] > 0
        if target_left == target_right:
            if target_left:
                return None
            raise InputError("the target cannot be reached from some cells")
        direction = 1 if target_right else -1
        cells = np.arange(first, stop)[::direction]  # ordered away from the wall, towards the target
        ahead = cells + direction
        inside = (ahead >= 0) & (ahead < n)
        step = np.where(inside, np.asarray(q[np.clip(ahead, 0, n - 1), cells]).ravel(), leak[cells])
        if np.any(step <= 0):
            return None
        lp = log_pi[cells]
        log_terms = np.logaddexp.accumulate(lp) - lp - np.log(step)
        with np.errstate(over="ignore"):  # beyond 1.8e308 is inf, reported by checked()
            tau[cells] = np.exp(np.logaddexp.accumulate(log_terms[::-1])[::-1])
    return tau


def gth_solve(rates: np.ndarray, excess: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    r"""Solve :math:`d_i x_i - \sum_{j\ne i} W_{ij}x_j = c_i` with :math:`d_i = \sum_{j\ne i}W_{ij} + e_i`,
    subtraction-free (Grassmann–Taksar–Heyman elimination).

    ``rates`` is :math:`W \ge 0` (its diagonal ignored), ``excess`` :math:`e \ge 0` and ``rhs``
    :math:`c \ge 0`. Eliminating unknown :math:`k` adds :math:`W_{ik}W_{kj}/d_k` to the rates,
    :math:`W_{ik}e_k/d_k` to the excess and :math:`W_{ik}c_k/d_k` to the right-hand side; the
    diagonal is always re-formed as a sum, never by subtraction, so the solution keeps full
    relative precision however close :math:`d_i` is to :math:`\sum_j W_{ij}`.
    """
    w = np.array(rates, dtype=float)
    np.fill_diagonal(w, 0.0)
    e = np.array(excess, dtype=float)
    c = np.array(rhs, dtype=float)
    m = c.size
    d = np.zeros(m)
    if m == 0:
        return np.zeros(0)
    for k in range(m):
        rest = np.arange(k + 1, m)
        d[k] = w[k, rest].sum() + e[k]
        if not d[k] > 0:
            raise InputError("the target cannot be reached from some wells")
        share = w[rest, k] / d[k]
        w[np.ix_(rest, rest)] += np.outer(share, w[k, rest])
        e[rest] += share * e[k]
        c[rest] += share * c[k]
    x = np.zeros(m)
    for k in range(m - 1, -1, -1):
        rest = np.arange(k + 1, m)
        x[k] = (c[k] + w[k, rest] @ x[rest]) / d[k]
    return x


def seed_cells(chain: MarkovChain, log_weight: np.ndarray, target: np.ndarray) -> np.ndarray:
    """One cell at the bottom of every well outside the target: the local maxima of ``log_weight``
    that neither touch the target nor a cell that leaks through an absorbing face (such a
    maximum is no well: it exits at once).

    Plateaus give their cell of lowest index; at most :data:`MAX_SEEDS` (the heaviest) are kept.
    """
    weight = np.where(target, -np.inf, log_weight)
    best = chain.neighbours_max(weight)
    exits = target | (chain.leak > 0)
    edge = exits | (chain.neighbours_max(np.where(exits, 1.0, 0.0)) > 0)
    candidates = np.flatnonzero(~edge & (weight >= best))
    if candidates.size > 1:
        # On a plateau keep one cell: drop every cell with an equal neighbour of lower index.
        drop = np.zeros(chain.size, bool)
        for lower, upper in chain.pairs:
            tie = weight[lower] == weight[upper]
            drop[np.maximum(lower, upper)[tie]] = True
        candidates = candidates[~drop[candidates]]
    if candidates.size > MAX_SEEDS:
        candidates = candidates[np.argsort(weight[candidates])[::-1][:MAX_SEEDS]]
    return np.sort(candidates)


def mfpt_decomposed(chain: MarkovChain, target: np.ndarray, log_weight: np.ndarray, solver: str = "superlu") -> tuple[np.ndarray, np.ndarray]:
    r"""MFPT from every cell by the strong Markov decomposition at the seeds (module docstring).

    Parameters
    ----------
    chain
        The chain.
    target
        Flat mask of the target cells (absorbing faces count as target too).
    log_weight
        A field whose local maxima mark the wells: the log of the stationary density, or minus
        the energy over the temperature (the Maxwell–Boltzmann density in phase space). On a
        chain that is not :attr:`~fpsolver.chain.MarkovChain.monotone` the times at the seeds
        come from potential theory (:func:`_seed_times_potential`, with the masses
        ``exp(log_weight) * volumes`` as weights), since the trace chain's rates from the
        hitting distribution are no longer positive and its elimination is not
        subtraction-free. Those identities hold for any positive weights; weights close to the
        stationary masses keep their terms O(1) (exactly stationary: the Maxwell–Boltzmann state
        of the Klein–Kramers scheme).

    Returns
    -------
    tau, error
        The times, and their estimated relative errors cell by cell: ``eps * scale * max u`` for
        the fast parts on a monotone chain (the same in every cell); on a non-monotone one the
        backward error ``eps * scale`` propagated by the Green function, plus the defect of
        :math:`\sum_a H(a) + H(B) = 1` in the cell times the seed times, relative to
        :math:`\tau(x)`: small in the wells, large past the barrier where :math:`\tau` is much
        shorter than the seeds' times and :math:`H \sim e^{-\Delta L/T}` is known only absolutely.
    """
    with sharing_factorizations():  # the seeds' committors solve on these free cells again
        return _mfpt_decomposed(chain, target, log_weight, solver)


def _mfpt_decomposed(chain: MarkovChain, target: np.ndarray, log_weight: np.ndarray, solver: str) -> tuple[np.ndarray, np.ndarray]:
    seeds = seed_cells(chain, log_weight, target)
    stop = target.copy()
    stop[seeds] = True
    free = ~stop
    qt_free = chain.qt[free].tocsc()  # rows: jumps out of the free cells; columns sliced per seed
    rhs = [np.ones(int(free.sum()))]
    rhs += [qt_free[:, [a]].toarray().ravel() for a in seeds]
    rhs.append(np.asarray(qt_free[:, target].sum(axis=1)).ravel() + chain.leak[free])
    lu = _factorize_free(chain, free, solver) if free.any() else None
    solutions = [lu.solve(b) for b in rhs] if lu is not None else [np.zeros(0)] * len(rhs)
    u = np.zeros(chain.size)
    u[free] = solutions[0]
    hits = np.zeros((seeds.size + 1, chain.size))  # hitting distribution on the seeds, then on the target
    for k, sol in enumerate(solutions[1:]):
        hits[k, free] = sol
    hits[np.arange(seeds.size), seeds] = 1.0
    hits[-1, target] = 1.0
    # The hitting probabilities of S and B sum to one exactly; their defect measures how far the
    # free solves are from exact (a well without a seed would show here), beside eps * scale * max u.
    defects = np.abs(hits.sum(axis=0) - 1.0)
    defect = float(defects.max(initial=0.0))
    fast_error = direct_error(chain.scale, float(u.max())) if u.size else 0.0
    if chain.monotone:
        hits = np.clip(hits, 0.0, None)
        tau_seeds = _seed_times_gth(chain, seeds, hits, u)
        tau = u + tau_seeds @ hits[: seeds.size]
        error = np.full(chain.size, np.inf if np.any(u < 0) else max(fast_error, defect))
    else:
        tau_seeds, seed_errors = _seed_times_potential(chain, seeds, target, log_weight + np.log(chain.volumes), solver)
        # Per cell, the backward error eps * scale propagated by the Green function G of the free
        # cells: |delta u| ~ eps scale (G|u|)(x), |delta H| ~ eps scale (G 1)(x) = eps scale u(x);
        # the extreme tails (slow, irrelevant corners of phase space) then do not spoil the wells.
        spread = np.zeros(chain.size)
        if lu is not None:
            spread[free] = np.abs(lu.solve(np.abs(u[free])))
        with np.errstate(over="ignore", invalid="ignore"):  # beyond 1.8e308 is inf, reported by checked()
            tau = u + tau_seeds @ hits[: seeds.size]
            absolute = EPS * chain.scale * (spread + np.abs(u) * tau_seeds.sum()) + defects * tau_seeds.sum() + (seed_errors * tau_seeds) @ np.abs(hits[: seeds.size])
        with np.errstate(divide="ignore", invalid="ignore"):
            error = np.where(tau > 0, absolute / tau, np.inf)
    tau[target] = 0.0
    error[target] = 0.0
    return tau, error


def _cell_mask(size: int, cell: int) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[cell] = True
    return mask


def _seed_times_potential(chain: MarkovChain, seeds: np.ndarray, target: np.ndarray, log_pi: np.ndarray, solver: str) -> tuple[np.ndarray, np.ndarray]:
    r"""Times at the seeds of a non-monotone chain, by potential theory on the trace chain of the seeds.

    For each seed :math:`a`, with :math:`C` the target and the other seeds, the mean time to
    reach :math:`C` is :math:`m_a = \sum_y\pi_yh^*(y)/\mathrm{cap}(a, C)` (:func:`mfpt_log_from_basin`)
    and the place where it arrives is distributed as
    :math:`p_{ab} = \sum_y\pi_yh^*(y)K_{y\to b}/\mathrm{cap}(a, C)` (last-exit decomposition:
    :math:`G_C(a, y) = \pi_yh^*(y)/\mathrm{cap}(a, C)`). Every seed is a Dirichlet cell of every
    other seed's problem, so no system has a metastable well left in it; the trace chain
    :math:`\tau_a = m_a + \sum_bp_{ab}\tau_b` is solved subtraction-free (:func:`gth_solve`)
    with rates :math:`p_{ab}/m_a` and escape :math:`p_{aB}/m_a`. The error of each seed is its
    potential-theory error and the defect of :math:`\sum_bp_{ab} + p_{aB} = 1`.
    """
    m = seeds.size
    # Rates of the jumps y -> each seed, and y -> the target (absorbing faces included).
    arrivals = np.vstack([chain.q[seeds].toarray(), np.asarray(chain.q[target].sum(axis=0)).ravel() + chain.leak])
    log_times, errors = np.zeros(m), np.zeros(m)
    log_exits = np.full((m, m + 1), -np.inf)  # p_ab to the other seeds, then p_aB to the target
    for k, a in enumerate(seeds):
        stop = target.copy()
        stop[seeds] = True
        stop[a] = False
        result = mfpt_log_from_basin(chain, _cell_mask(chain.size, a), stop, log_pi, solver)
        log_capacity = _log_signed_sum(log_pi, result.backward) - result.log_time
        # h* is 0 on the other seeds and the target, so their own (diagonal) entries drop out.
        for j in [j for j in range(m + 1) if j != k]:
            log_exits[k, j] = _log_signed_sum(log_pi, result.backward * arrivals[j]) - log_capacity
        log_times[k] = result.log_time
        with np.errstate(over="ignore", invalid="ignore"):
            errors[k] = result.error + abs(float(np.sum(np.exp(log_exits[k]))) - 1.0)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        exits = np.exp(log_exits - log_times[:, None])
    if not np.all(np.isfinite(exits)) or not np.all(exits.sum(axis=1) > 0):
        # A capacity or population without a positive sum (weights far from the stationary masses,
        # e.g. a temperature that varies along the path): no digits here; the caller falls back.
        return np.full(m, np.nan), np.full(m, np.inf)
    times = gth_solve(exits[:, :m], exits[:, m], np.ones(m))
    return times, np.where(np.isfinite(times), errors, np.inf)


def _seed_times_gth(chain: MarkovChain, seeds: np.ndarray, hits: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Times at the seeds from the trace chain on them, by subtraction-free elimination (monotone chains)."""
    m = seeds.size
    rates = np.zeros((m, m))
    excess = np.zeros(m)
    rhs_trace = np.zeros(m)
    for k, a in enumerate(seeds):
        cells, out = chain.out_rates(int(a))
        rates[k] = hits[:m, cells] @ out
        excess[k] = hits[m, cells] @ out + chain.leak[a]
        rhs_trace[k] = 1.0 + u[cells] @ out
    return gth_solve(rates, excess, rhs_trace)


def mfpt_field(
    chain: MarkovChain,
    target: np.ndarray,
    log_weight: np.ndarray,
    solver: str = "superlu",
    cells: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MFPT from every cell by the most precise route (module docstring) and its relative error estimate per cell.

    The direct solve is never trusted on what it returns: once it has lost its digits its
    values are garbage of any size (measured: 0.13 where the truth is 4.7e8). It is used only
    where the decomposition cannot give digits — on a chain that is not monotone (higher-order
    transport in phase space), past the barrier where the decomposition's terms cancel — and
    then with an error estimate from the slowest survival rate, computed independently by
    shift-invert, cell by cell where it beats the decomposition's. ``cells`` (flat indices) are
    where the answer is needed; the direct solve is only tried when one of them lacks digits.
    """
    tau = chain_mfpt_1d(chain, target)
    if tau is not None:
        return tau, np.full(chain.size, 1e-13)
    tau, error = mfpt_decomposed(chain, target, log_weight, solver)
    needed = error if cells is None else error[cells]
    if needed.max(initial=0.0) <= DIRECT_PRECISION_LIMIT:
        return tau, error
    logger.info("Markov decomposition: estimated error up to %.2g; trying the direct solve", needed.max())
    slowest = survival_rate(chain, target, solver)
    direct_estimate = direct_error(chain.scale, 1.0 / slowest) if slowest > 0 else np.inf
    better = direct_estimate < error
    if better.any():
        tau = np.where(better, backward_mfpt(chain, target, solver), tau)
        error = np.where(better, direct_estimate, error)
    return tau, error


def mfpt_at(chain: MarkovChain, target: np.ndarray, log_weight: np.ndarray, point: Sequence[float], solver: str = "superlu") -> tuple[float, float]:
    """MFPT from ``point`` (log interpolation between the surrounding cell centres) and its estimated relative error.

    The error is the worst of the surrounding cells'; arguments as for :func:`mfpt_field`.
    """
    cells, _ = start_cells(chain.grid, point)
    tau, error = mfpt_field(chain, target, log_weight, solver, cells)
    return interpolate_at(chain.grid, tau, point), float(error[cells].max())


def reactive_current(
    chain: MarkovChain, log_pi: np.ndarray, forward: np.ndarray, backward: np.ndarray
) -> tuple[np.ndarray, float, float]:
    r"""Net reactive current of transition-path theory at cell centres, and the reaction rate.

    The reactive flux from cell :math:`i` to :math:`j` is :math:`f_{ij} = \pi_iq^-_iK_{i\to j}q^+_j`
    (forward committor :math:`q^+`, backward :math:`q^-`, :math:`\sum\pi = 1`). The rate of
    reactive trajectories is measured twice, from every jump of the chain (seams and
    cross-diffusion jumps included): as the net flux out of the start set
    :math:`\{q^- = 1, q^+ = 0\}` and into the target :math:`\{q^+ = 1, q^- = 0\}`; the net flux
    is divergence-free between them, so the two agree to round-off. The field is the net
    flux across each face (periodic seams included), averaged over each cell's two faces
    along every axis, scaled to a largest magnitude of 1.
    """
    weights = np.exp(log_pi - log_pi.max())
    weights = weights / weights.sum()
    start = (backward >= 1.0) & (forward <= 0.0)
    target = (forward >= 1.0) & (backward <= 0.0)
    coo = sps.coo_matrix(chain.q)
    off = coo.row != coo.col
    to, frm, k = coo.row[off], coo.col[off], coo.data[off]  # jump frm -> to at rate k
    flux = weights[frm] * backward[frm] * k * forward[to]
    rate_out = float(flux[start[frm] & ~start[to]].sum() - flux[start[to] & ~start[frm]].sum())
    rate_in = float(flux[target[to] & ~target[frm]].sum() - flux[target[frm] & ~target[to]].sum())
    grid = chain.grid
    current = np.zeros((grid.ndim, grid.size))
    for axis, (lower, upper) in enumerate(chain.pairs):
        up = np.asarray(chain.q[upper, lower]).ravel()
        down = np.asarray(chain.q[lower, upper]).ravel()
        net = weights[lower] * backward[lower] * up * forward[upper] - weights[upper] * backward[upper] * down * forward[lower]
        np.add.at(current[axis], lower, 0.5 * net)
        np.add.at(current[axis], upper, 0.5 * net)
    total = np.abs(current).max()
    current = current / total if total > 0 else current
    return current.reshape((grid.ndim,) + grid.shape), rate_out, rate_in


class PotentialTime(NamedTuple):
    """Mean time from a start set by potential theory (:func:`mfpt_log_from_basin`)."""

    log_time: float
    """Natural log of the mean time."""
    error: float
    """Estimated relative error of the time."""
    backward: np.ndarray
    """Backward committor (equilibrium potential of the time-reversed chain), as solved (not clipped:
    on a non-monotone chain values slightly outside [0, 1] belong to the exact algebraic solution)."""
    forward: np.ndarray
    """Forward committor, clipped to [0, 1]."""


#: Levels of the backward committor whose level sets serve as cuts for the capacity. The
#: reactive current is divergence-free, so every cut carries it; the one with the smallest
#: estimated error is used (a cut through a saddle, not through a well), and the others that
#: are trusted must agree with it.
CUT_LEVELS = tuple(np.round(np.arange(0.1, 0.95, 0.1), 1))


def mfpt_log_from_basin(
    chain: MarkovChain, basin: np.ndarray, target: np.ndarray, log_pi: np.ndarray, solver: str = "superlu"
) -> PotentialTime:
    r"""Natural log of :math:`\sum_i\pi_ih^*_i / \mathrm{cap}(A, B)` for a start set :math:`A` (potential theory).

    The mean time to reach :math:`B` started from the equilibrium measure on :math:`A`
    (Bovier–Eckhoff–Gayrard–Klein; for chains without detailed balance, Gaudillière–Landim):
    :math:`h^*` is the equilibrium potential of the *time-reversed* chain (1 on A, 0 on B) — the
    backward committor :math:`q^-` of transition-path theory, equal to :math:`1 - q^+` under
    detailed balance — and the capacity is the rate of reactive trajectories, read as the net
    reactive current :math:`\pi_xq^-_xK_{x\to y}q^+_y - \pi_yq^-_yK_{y\to x}q^+_x` across a level
    set of :math:`q^-` through a saddle, where the committors are O(1), plus what leaves through
    absorbing faces on the basin's side. Everything is summed in log space.

    For a single cell :math:`A = \{a\}` the equilibrium measure is :math:`\delta_a`, and the
    result is the mean first-passage time from :math:`a` *exactly* (for the chain):
    :math:`\pi_aG_B(a, y) = \pi_y\tilde G_B(y, a) = \pi_y h^*(y)\tilde G_B(a, a)` and
    :math:`G_B(a, a) = \pi_a/\mathrm{cap}(a, B)`, so
    :math:`\mathbb E_a\tau_B = \sum_yG_B(a, y) = \sum_y\pi_yh^*(y)/\mathrm{cap}(a, B)`. These
    are identities of linear algebra (the Green function of the reversed chain is
    :math:`\Pi^{-1}G^\top\Pi`; the reversed chain keeps the diagonal of :math:`Q`, so the
    reactive current is divergence-free away from absorbing faces because both committors solve
    their equations), valid for chains with negative "rates" and for **any positive weights**
    :math:`\pi`. Weights close to the stationary masses keep every term O(1) relative to the local
    weight: no subtraction of nearly equal numbers, at any barrier.

    Parameters
    ----------
    log_pi
        log of positive weights: the stationary masses (detailed-balance weights, the stationary
        state), or a reference close to them (Maxwell–Boltzmann in phase space, also beside
        absorbing faces where it is not stationary).

    Returns
    -------
    PotentialTime
        The log of the mean time, its estimated relative error — the capacity's on the best of
        the cuts :data:`CUT_LEVELS` (the committors' absolute errors from
        :func:`_committor_solve`, term by term), the spread over the trusted cuts, and the
        backward committor's absolute error weighted by :math:`\pi` relative to the population —
        and the backward and forward committors.
    """
    reversed_chain = chain if chain.log_pi is not None else chain.reversed(log_pi)
    backward, backward_error = _committor_solve(reversed_chain, basin, target, 0.0, solver)
    forward, forward_error = _committor_solve(chain, target, basin, 1.0, solver)  # directly, not 1 - backward
    with np.errstate(divide="ignore", invalid="ignore"):
        log_population = _log_signed_sum(log_pi, backward)  # unclipped: the identity is algebraic
    coo = sps.coo_matrix(chain.q)
    cuts = [_cut_flux(chain, coo, (backward > level) | basin, log_pi, backward, forward, backward_error, forward_error) for level in CUT_LEVELS]
    log_flux, flux_error = min(cuts, key=lambda cut: cut[1])
    # Every cut carries the same current: the trusted ones must agree.
    trusted = np.array([c[0] for c in cuts if c[1] <= max(flux_error, DIRECT_PRECISION_LIMIT)])
    spread = float(np.max(np.abs(np.expm1(trusted - log_flux))))
    # The backward committor's absolute errors weighted by pi, against the population sum(pi h*)
    # (tiny h* in the deep well of another basin are only known absolutely).
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        population_error = float(np.exp(_logsumexp(log_pi + np.log(backward_error)) - log_population))
    error = flux_error + spread + population_error
    return PotentialTime(log_population - log_flux, error, backward, np.clip(forward, 0.0, 1.0))


def _log_signed_sum(log_weights: np.ndarray, values: np.ndarray) -> float:
    """log of sum(exp(log_weights) * values) for a sum that must be positive (NaN otherwise)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = log_weights + np.log(np.abs(values))
    finite = np.isfinite(terms)
    if not finite.any():
        return float("nan")
    top = float(terms[finite].max())
    total = float(np.sum(np.sign(values[finite]) * np.exp(terms[finite] - top)))
    return top + float(np.log(total)) if total > 0 else float("nan")


def _cut_flux(
    chain: MarkovChain,
    coo: sps.coo_matrix,
    inside: np.ndarray,
    log_pi: np.ndarray,
    backward: np.ndarray,
    forward: np.ndarray,
    backward_error: np.ndarray,
    forward_error: np.ndarray,
) -> tuple[float, float]:
    r"""log of the net reactive current out of ``inside`` (jumps across the cut, and absorbing faces
    inside), and its estimated relative error.

    Each term :math:`\pi_xq^-_xK_{x\to y}q^+_y` carries the committors' absolute errors relative
    to their values; summed over the terms and divided by the net current, this is large where
    the cut runs through a metastable well (where the committors are flat and the net current is
    a small difference of large equilibrium fluxes) and round-off where it crosses a saddle.
    """
    cross = (inside[coo.col] != inside[coo.row]) & (coo.row != coo.col)  # jumps col -> row across the cut
    frm, to, k = coo.col[cross], coo.row[cross], coo.data[cross]
    sign = np.where(inside[frm], 1.0, -1.0)  # outward jumps count positive
    leaking = np.flatnonzero(inside & (chain.leak > 0))
    rate = np.concatenate([k, chain.leak[leaking]])
    cells = np.concatenate([frm, leaking])
    q_beyond = np.concatenate([forward[to], np.ones(leaking.size)])  # the forward committor is 1 beyond an absorbing face
    e_beyond = np.concatenate([forward_error[to], np.zeros(leaking.size)])
    product = rate * backward[cells] * q_beyond
    signs = np.concatenate([sign, np.ones(leaking.size)]) * np.sign(product)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_terms = log_pi[cells] + np.log(np.abs(product))
        relative = backward_error[cells] / np.abs(backward[cells]) + e_beyond / np.abs(q_beyond)
    if not np.isfinite(log_terms).any():
        raise InputError("the target cannot be reached from the start")
    log_flux = _log_signed_sum(log_terms, signs)
    if not np.isfinite(log_flux):
        raise InputError("the target cannot be reached from the start (no reactive current)")
    finite = np.isfinite(log_terms)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        error = float(np.exp(_logsumexp(log_terms[finite] + np.log(relative[finite] + EPS)) - log_flux))
    return log_flux, error if np.isfinite(error) else np.inf


def _logsumexp(values: np.ndarray) -> float:
    """log(sum(exp(values))) without overflow or underflow."""
    top = float(np.max(values))
    return top + float(np.log(np.sum(np.exp(values - top)))) if np.isfinite(top) else top

