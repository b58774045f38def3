r"""Mean first-passage times and committors from the discrete generator.

The finite-volume generator :math:`\mathcal L` acts on densities; the probability
masses :math:`m = VP` obey :math:`\dot m = Qm` with :math:`Q = V\mathcal L V^{-1}`,
whose off-diagonal entries are the jump rates :math:`K_{j\to i} = Q_{ij}` of a
Markov chain on the cells. All rate quantities are those of this chain, so that
every method agrees on the discrete level (Hill relation, committors, spectra).

Mean first-passage time (backward equation)
    :math:`Q^\top\tau = -1` on the free cells, :math:`\tau = 0` on the target (cells of a
    target region, and ghost nodes beyond absorbing faces). One sparse solve gives
    :math:`\tau` from every cell. A direct solve loses every digit once the rate falls
    below about :math:`\epsilon\,\|Q\|` (THEORY.md §6; measured: ΔL/T = 20 already drifts).

Potential-theoretic form (Bovier–Eckhoff–Gayrard–Klein)
    For a reversible chain (detailed balance :math:`\pi_iK_{i\to j} = \pi_jK_{j\to i}`) and a
    start cell :math:`a`,

    .. math:: \mathbb E_a\tau_B = \frac{\sum_i \pi_i h_i}{\mathrm{cap}(a, B)},\qquad
              \mathrm{cap}(a,B) = \tfrac12\sum_{i,j}\pi_iK_{i\to j}(h_i - h_j)^2,

    with the committor :math:`h` (1 at :math:`a`, 0 on :math:`B`, :math:`Q^\top h = 0`
    elsewhere), an O(1) quantity that a sparse LU computes accurately. The weights are
    handled in log space, so rates down to :math:`e^{-700}` keep their digits. It is an exact
    identity of the chain, so it equals the backward-equation value wherever that is accurate.

Detailed balance is detected, not assumed: :math:`\log\pi` is accumulated along a spanning
tree of the grid from the rate ratios and then checked on every edge.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sps
import sympy as sp

from .errors import FPSolverWarning, InputError, SolverError
from .grid import Grid
from .expressions import parse_condition
from .linalg import factorize

__all__ = ["jump_rates", "log_detailed_balance_weights", "backward_mfpt", "committor", "chain_mfpt_1d", "start_cells", "region_mask", "mfpt_log_from_basin", "face_leak", "reactive_current", "reversed_chain"]

logger = logging.getLogger(__name__)

#: Largest relative violation of detailed balance accepted as reversible.
DETAILED_BALANCE_TOL = 1e-9

#: Above this value of (largest MFPT) x (largest jump rate), direct backward solves lose digits.
DIRECT_PRECISION_LIMIT = 1e10


def jump_rates(operator: sps.spmatrix, volumes: np.ndarray) -> sps.csr_matrix:
    r"""The matrix :math:`Q = V\mathcal L V^{-1}` (mass generator; :math:`Q_{ij} = K_{j\to i}` off the diagonal)."""
    v = sps.diags(volumes)
    return sps.csr_matrix(v @ operator @ sps.diags(1.0 / volumes))


def log_detailed_balance_weights(q: sps.spmatrix, grid: Grid) -> np.ndarray | None:
    r"""Natural log of weights :math:`\pi` (up to a constant) with :math:`\pi_iK_{i\to j} = \pi_jK_{j\to i}`.

    Accumulated along a spanning tree of the grid (axis 0 through the origin, then axis 1 from
    every point of that line, ...) from :math:`\log K_{i\to j} - \log K_{j\to i}`, then verified on
    every edge; ``None`` when the chain is not reversible to :data:`DETAILED_BALANCE_TOL`.
    """
    q = sps.csr_matrix(q)
    ndim, shape = grid.ndim, grid.shape
    index = np.arange(grid.size).reshape(shape)
    log_pi = np.zeros(shape)
    for axis in range(ndim):
        slab = tuple([slice(None)] * (axis + 1) + [0] * (ndim - axis - 1))  # later axes at 0
        cells = index[slab]
        n = shape[axis]
        lower = cells.take(np.arange(n - 1), axis=axis)
        upper = cells.take(np.arange(1, n), axis=axis)
        forward = np.asarray(q[upper.ravel(), lower.ravel()]).ravel()  # K_{lower -> upper}
        backward = np.asarray(q[lower.ravel(), upper.ravel()]).ravel()  # K_{upper -> lower}
        if np.any(forward <= 0) or np.any(backward <= 0):
            return None
        steps = (np.log(forward) - np.log(backward)).reshape(lower.shape)
        start = log_pi[slab].take([0], axis=axis)
        log_pi[slab] = start + np.concatenate([np.zeros_like(start), np.cumsum(steps, axis=axis)], axis=axis)
    log_pi = log_pi.ravel()
    upper_part = sps.triu(q, k=1).tocoo()  # Q_ij = K_{j->i} with i < j
    rows, cols, k_ji = upper_part.row, upper_part.col, upper_part.data
    k_ij = np.asarray(q[cols, rows]).ravel()
    if np.any(k_ji < 0) or np.any(k_ij < 0) or np.any((k_ji > 0) != (k_ij > 0)):
        return None
    both = k_ji > 0
    violation = log_pi[cols[both]] + np.log(k_ji[both]) - log_pi[rows[both]] - np.log(k_ij[both])
    if violation.size and np.abs(violation).max() > DETAILED_BALANCE_TOL * max(1.0, np.abs(log_pi).max()):
        return None
    return log_pi


def backward_mfpt(q: sps.spmatrix, free: np.ndarray, solver: str = "superlu") -> np.ndarray:
    r"""MFPT from every cell by one solve of :math:`Q^\top\tau = -1` on the ``free`` cells (0 elsewhere)."""
    qt = sps.csr_matrix(q.T)[free][:, free]
    tau = np.zeros(q.shape[0])
    try:
        tau[free] = factorize(qt, solver).solve(-np.ones(int(free.sum())))
    except SolverError:
        raise InputError("the target cannot be reached from some cells (the backward equation is singular)") from None
    return tau


def committor(
    q: sps.spmatrix, one: np.ndarray, zero: np.ndarray, leak: np.ndarray, ghost: float = 0.0, solver: str = "superlu"
) -> np.ndarray:
    r"""Hitting probability :math:`h`: 1 on the ``one`` cells, 0 on the ``zero`` cells, and
    :math:`Q^\top h = 0` elsewhere, with the value ``ghost`` beyond absorbing faces (rates ``leak``).

    The forward committor of transition-path theory (probability to reach the target before the
    start) is ``committor(q, target, start, leak, ghost=1)``. Solved directly rather than as
    ``1 - h``, small values keep their relative precision.
    """
    qt = sps.csr_matrix(q.T)
    free = ~(one | zero)
    h = np.zeros(q.shape[0])
    h[one] = 1.0
    rhs = -np.asarray(qt[free][:, one].sum(axis=1)).ravel() - ghost * leak[free]
    try:
        h[free] = factorize(qt[free][:, free], solver).solve(rhs)
    except SolverError:
        raise InputError("the committor equations are singular: some cells reach neither the start nor the target") from None
    return np.clip(h, 0.0, 1.0)


def chain_mfpt_1d(q: sps.spmatrix, log_pi: np.ndarray, target: np.ndarray, leak: np.ndarray) -> np.ndarray | None:
    r"""Exact MFPT of a 1-D birth–death chain, subtraction-free in log space.

    For a run of free cells with a reflecting wall on one side and the target on the other,
    the time to take one step towards the target from cell :math:`k` is
    :math:`\sum_{j \text{ behind } k}\pi_j / (\pi_k u_k)`, with :math:`u_k` the rate of that step
    (into a target cell, or out through an absorbing face), so

    .. math:: \tau_i = \sum_{k \text{ from } i \text{ to the target}} \frac{\sum_{j \text{ behind } k}\pi_j}{\pi_k u_k}.

    Every term is positive and the sums are log-sum-exps, so no digit is lost however small
    the rate. ``leak`` holds the rates out through absorbing faces (zero elsewhere; see
    :func:`face_leak`). Returns ``None`` when a run is bounded by targets on both sides.
    """
    n = q.shape[0]
    q = sps.csr_matrix(q)
    if q[0, n - 1] != 0 or q[n - 1, 0] != 0:
        return None  # periodic: the chain is a ring, not a line
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
        tau[cells] = np.exp(np.logaddexp.accumulate(log_terms[::-1])[::-1])
    return tau


def reversed_chain(q: sps.spmatrix, log_pi: np.ndarray) -> sps.csr_matrix:
    r"""Generator of the time-reversed chain, :math:`\tilde Q = \Pi Q^\top \Pi^{-1}`
    (:math:`\tilde K_{i\to j} = \pi_jK_{j\to i}/\pi_i`); equal to :math:`Q` under detailed balance."""
    coo = sps.coo_matrix(q.T)
    data = coo.data * np.exp(log_pi[coo.row] - log_pi[coo.col])
    return sps.csr_matrix((data, (coo.row, coo.col)), shape=q.shape)


def reactive_current(
    q: sps.spmatrix, log_pi: np.ndarray, forward: np.ndarray, backward: np.ndarray, grid: Grid
) -> tuple[np.ndarray, float, float]:
    r"""Net reactive current of transition-path theory at cell centres, and the reaction rate.

    Across the edge from cell :math:`i` to its upper neighbour :math:`j` along an axis the net
    reactive current is :math:`f_{ij} - f_{ji}` with :math:`f_{ij} = \pi_iq^-_iK_{i\to j}q^+_j`
    (forward committor :math:`q^+`, backward :math:`q^-`); each cell gets the mean of its two
    faces along each axis. Returned scaled to a largest magnitude of 1, with the rate of
    reactive trajectories (:math:`\sum\pi = 1`) measured twice: as the current out of the start
    set :math:`\{q^- = 1, q^+ = 0\}` and into the target :math:`\{q^+ = 1, q^- = 0\}`. The net
    current is divergence-free between them, so the two agree to round-off.
    """
    q = sps.csr_matrix(q)
    weights = np.exp(log_pi - log_pi.max())
    weights = weights / weights.sum()
    index = np.arange(grid.size).reshape(grid.shape)
    current = np.zeros((grid.ndim,) + grid.shape)
    start = (backward >= 1.0) & (forward <= 0.0)
    target = (forward >= 1.0) & (backward <= 0.0)
    rate_out = rate_in = 0.0
    for axis in range(grid.ndim):
        n = grid.shape[axis]
        lower = index.take(np.arange(n - 1), axis=axis).ravel()
        upper = index.take(np.arange(1, n), axis=axis).ravel()
        up = np.asarray(q[upper, lower]).ravel()  # K_{lower -> upper}
        down = np.asarray(q[lower, upper]).ravel()  # K_{upper -> lower}
        net = weights[lower] * backward[lower] * up * forward[upper] - weights[upper] * backward[upper] * down * forward[lower]
        rate_out += float(np.sum(net[start[lower] & ~start[upper]]) - np.sum(net[start[upper] & ~start[lower]]))
        rate_in += float(np.sum(net[target[upper] & ~target[lower]]) - np.sum(net[target[lower] & ~target[upper]]))
        face = net.reshape(index.take(np.arange(n - 1), axis=axis).shape)
        pad = [(0, 0)] * grid.ndim
        pad[axis] = (1, 0)
        before = np.pad(face, pad)
        pad[axis] = (0, 1)
        current[axis] = 0.5 * (before + np.pad(face, pad))
    total = np.abs(current).max()
    return (current / total if total > 0 else current), rate_out, rate_in


def mfpt_log_from_basin(
    q: sps.spmatrix, log_pi: np.ndarray, basin: np.ndarray, target: np.ndarray, leak: np.ndarray, solver: str = "superlu"
) -> tuple[float, np.ndarray]:
    r"""Natural log of :math:`\sum_i\pi_ih_i / \mathrm{cap}(A, B)` for a basin :math:`A` (potential theory).

    This is the mean time to reach :math:`B` started from the equilibrium measure on :math:`A`
    (Bovier–Eckhoff–Gayrard–Klein). With :math:`A` a region (not a single cell) every free cell
    is anchored by Dirichlet data on both sides, and the committor keeps full *relative* precision
    (measured 1e-12 where h ~ 1e-33 at barrier/T = 70); the capacity is the committor current
    across the cut h = 1/2, where the h-differences are O(1). Returns the log and the committor.
    """
    h = committor(q, basin, target, leak, 0.0, solver)
    shift = log_pi.max()
    weights = np.exp(log_pi - shift)
    log_population = float(np.log(weights @ h) + shift)
    inside = (h > 0.5) | basin
    coo = sps.coo_matrix(q)
    cross = inside[coo.col] & ~inside[coo.row] & (coo.row != coo.col)  # K_{col -> row}, col inside
    flux = float(np.sum(weights[coo.col[cross]] * coo.data[cross] * (h[coo.col[cross]] - h[coo.row[cross]])))
    flux += float(np.sum(weights[inside] * leak[inside] * h[inside]))  # out through absorbing faces
    if not flux > 0:
        raise InputError("the target cannot be reached from the start")
    return log_population - float(np.log(flux) + shift), h


def face_leak(q: sps.spmatrix, grid: Grid, absorbing_sides: Sequence[tuple[bool, bool]]) -> np.ndarray:
    """Rate of leaving the grid through absorbing faces, per cell (zero away from them).

    Taken as minus the column sums of ``q`` but only in cells that touch an absorbing face:
    elsewhere the column sums are round-off (~1e-13 of the diagonal), which must not be
    mistaken for a leak when the rates of interest are far smaller.
    """
    touching = np.zeros(grid.shape, bool)
    for axis, (lower, upper) in enumerate(absorbing_sides):
        index = [slice(None)] * grid.ndim
        for flag, end in ((lower, 0), (upper, -1)):
            if flag:
                index[axis] = end
                touching[tuple(index)] = True
    leak = np.zeros(grid.size)
    cells = touching.ravel()
    leak[cells] = np.maximum(-np.asarray(q[:, cells].sum(axis=0)).ravel(), 0.0)
    return leak


def region_mask(grid: Grid, region: str | np.ndarray | None, what: str) -> np.ndarray:
    """Flat boolean mask of the cells in ``region``: a condition such as ``"x >= 1"`` (parsed safely,
    evaluated at cell centres), a boolean array of the grid shape, or None (no cell)."""
    if region is None:
        return np.zeros(grid.size, bool)
    if isinstance(region, str):
        condition = parse_condition(region, grid.names)
        used = sorted(s.name for s in condition.free_symbols)
        fn = sp.lambdify([sp.Symbol(v, real=True) for v in used], condition, modules="numpy")
        mesh = dict(zip(grid.names, grid.mesh()))
        mask = np.broadcast_to(np.asarray(fn(*(mesh[v] for v in used)), dtype=bool), grid.shape).ravel()
    else:
        mask = np.asarray(region, dtype=bool)
        if mask.shape not in (grid.shape, (grid.size,)):
            raise InputError(f"{what} mask has shape {mask.shape}, expected the grid shape {grid.shape}")
        mask = mask.ravel()
    if not mask.any():
        raise InputError(f"{what} region {region!r} contains no cell centre of the grid")
    return mask.copy()


def imprecise(tau: np.ndarray, q: sps.spmatrix) -> bool:
    """Whether a direct backward solve is in the regime where it loses digits."""
    scale = float(np.abs(q.diagonal()).max())
    return not np.all(np.isfinite(tau)) or np.nanmax(np.abs(tau)) * scale > DIRECT_PRECISION_LIMIT


def warn_if_imprecise(tau: np.ndarray, q: sps.spmatrix) -> None:
    """Warn when a direct backward solve is in the regime where it loses digits."""
    if imprecise(tau, q):
        warnings.warn(
            "the mean first-passage times are so long compared with the fastest jump rate that the direct "
            "backward solve loses digits; escape_rate(..., methods=('committor',)) keeps them",
            FPSolverWarning,
            stacklevel=3,
        )


def start_cells(grid: Grid, start: Sequence[float]) -> tuple[list[int], np.ndarray]:
    """Flat indices of the cell centres around ``start`` and their multilinear interpolation weights."""
    point = np.asarray(start, dtype=float).ravel()
    if point.size != grid.ndim:
        raise InputError(f"start needs {grid.ndim} coordinate(s), got {point.tolist()}")
    grid.locate(point)  # raises when outside
    lower, fractions = [], []
    for ax, value in zip(grid, point):
        c = ax.centers
        k = int(np.clip(np.searchsorted(c, value) - 1, 0, ax.n - 2))
        lower.append(k)
        fractions.append(float(np.clip((value - c[k]) / (c[k + 1] - c[k]), 0.0, 1.0)))
    cells, weights = [], []
    for corner in np.ndindex(*(2,) * grid.ndim):
        w = np.prod([f if bit else 1.0 - f for f, bit in zip(fractions, corner)])
        if w > 0:
            cells.append(int(np.ravel_multi_index(tuple(k + bit for k, bit in zip(lower, corner)), grid.shape)))
            weights.append(w)
    return cells, np.array(weights)
