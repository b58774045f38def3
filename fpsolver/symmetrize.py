r"""Detailed balance of a sparse matrix, and the symmetric matrix it is similar to.

A matrix :math:`M` (a generator :math:`\mathcal L`, or :math:`I - c\Delta t\,\mathcal L`)
*balances* with positive weights :math:`w` when, for every off-diagonal pair,

.. math:: M_{ij}\,w_j = M_{ji}\,w_i ,

which for a generator is detailed balance with the stationary density :math:`w`.
Then, with :math:`H = \mathrm{diag}(\sqrt w)`,

.. math:: S = H^{-1} M H, \qquad S_{ij} = \operatorname{sign}(M_{ij})\sqrt{M_{ij}M_{ji}}\ (i\ne j),
          \quad S_{ii} = M_{ii},

is symmetric and has the spectrum of :math:`M`; it is built from the products
:math:`M_{ij}M_{ji}`, so it never over- or underflows however widely :math:`w` ranges.
For a reversible generator :math:`-S` is a symmetric positive semi-definite M-matrix:
conjugate gradients, LOBPCG and algebraic multigrid apply.

The weights are accumulated along a breadth-first spanning tree of the matrix graph,
:math:`\ln w_i - \ln w_{\mathrm{parent}(i)} = \ln|M_{i,\mathrm{parent}}| - \ln|M_{\mathrm{parent},i}|`,
summed to the root by pointer jumping (:math:`\log_2` depth vectorised passes, O(N log N)),
and then verified on every edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sps
from scipy.sparse.csgraph import breadth_first_order

__all__ = ["BALANCE_TOL", "Symmetrization", "log_balance_weights", "symmetrize"]

#: Largest violation of :math:`\ln w_i + \ln|M_{ji}| = \ln w_j + \ln|M_{ij}|` accepted, relative to
#: ``max(1, max|ln w|)`` (round-off accumulated along tree paths of a few thousand edges is ~1e-12).
BALANCE_TOL = 1e-9

#: Largest spread of ln w for which :math:`\sqrt w` (scaled to a largest value of 1) stays a normal
#: float64 number, so that :math:`H^{-1}` exists.
MAX_LOG_SPREAD = 2.0 * 700.0


def _off_diagonal(matrix: sps.spmatrix) -> tuple[sps.csr_matrix, np.ndarray] | None:
    """Off-diagonal part (CSR, sorted) and, aligned with its entries, the transposed entries;
    None when the pattern or the signs of M_ij and M_ji differ."""
    coo = sps.coo_matrix(matrix)
    keep = (coo.row != coo.col) & (coo.data != 0)
    off = sps.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=coo.shape)
    off.sum_duplicates()
    transposed = off.T.tocsr()
    transposed.sum_duplicates()
    # With a symmetric pattern, the sorted CSR of the transpose has the same indptr and indices.
    if not (np.array_equal(off.indptr, transposed.indptr) and np.array_equal(off.indices, transposed.indices)):
        return None
    if np.any(np.sign(off.data) != np.sign(transposed.data)):
        return None
    return off, transposed.data


def log_balance_weights(matrix: sps.spmatrix) -> np.ndarray | None:
    r"""Natural log of weights :math:`w` (largest 0) with :math:`M_{ij}w_j = M_{ji}w_i`, or None.

    None when the off-diagonal pattern is not symmetric, a pair :math:`M_{ij}, M_{ji}` differs in
    sign, the graph is disconnected, or the balance fails on some edge by more than
    :data:`BALANCE_TOL` (a cycle with net circulation: no detailed balance).
    """
    split = _off_diagonal(matrix)
    return None if split is None else _balance_weights(*split)


def _balance_weights(off: sps.csr_matrix, partner: np.ndarray) -> np.ndarray | None:
    """:func:`log_balance_weights` from the split of :func:`_off_diagonal` (computed once by callers)."""
    n = off.shape[0]
    log_ratio = sps.csr_matrix((np.log(np.abs(off.data)) - np.log(np.abs(partner)), off.indices, off.indptr), shape=off.shape)
    order, parent = breadth_first_order(off, 0, directed=False, return_predecessors=True)
    if len(order) < n:
        return None
    root, child = order[0], order[1:]
    step = np.zeros(n)
    step[child] = np.asarray(log_ratio[child, parent[child]]).ravel()  # ln w_i - ln w_parent(i)
    ancestor = parent.copy()
    ancestor[root] = root
    while np.any(ancestor != root):  # pointer jumping: step[i] sums the path from i to ancestor[i]
        step = step + np.where(ancestor != root, step[ancestor], 0.0)
        ancestor = ancestor[ancestor]
    log_w = step - step.max()
    rows = np.repeat(np.arange(n), np.diff(off.indptr))
    violation = log_w[rows] - log_w[off.indices] - log_ratio.data
    if violation.size and np.abs(violation).max() > BALANCE_TOL * max(1.0, float(np.abs(log_w).max())):
        return None
    return log_w


@dataclass(frozen=True)
class Symmetrization:
    r"""A matrix :math:`M` written as :math:`H S H^{-1}` with :math:`S` symmetric.

    Attributes
    ----------
    matrix
        :math:`S` (CSR).
    scale
        The diagonal of :math:`H`, :math:`\sqrt{w}` scaled to a largest value of 1.
    """

    matrix: sps.csr_matrix
    scale: np.ndarray

    def to_symmetric(self, x: np.ndarray) -> np.ndarray:
        """:math:`H^{-1}x` (a vector or the columns of an array)."""
        return x / (self.scale if x.ndim == 1 else self.scale[:, None])

    def from_symmetric(self, y: np.ndarray) -> np.ndarray:
        """:math:`Hy` (a vector or the columns of an array)."""
        return y * (self.scale if y.ndim == 1 else self.scale[:, None])


def symmetrize(matrix: sps.spmatrix) -> Symmetrization | None:
    """The symmetric matrix similar to ``matrix`` by a positive diagonal scaling, or None.

    None when ``matrix`` does not balance (:func:`log_balance_weights`) or when the weights
    spread over more than :data:`MAX_LOG_SPREAD` in the log (the scaling would underflow).
    """
    split = _off_diagonal(matrix)
    log_w = None if split is None else _balance_weights(*split)
    if split is None or log_w is None or -log_w.min() > MAX_LOG_SPREAD:
        return None
    off, partner = split
    off.data = np.sign(off.data) * np.sqrt(off.data * partner)
    sym = sps.csr_matrix(off + sps.diags(sps.csr_matrix(matrix).diagonal()))
    return Symmetrization(sym, np.exp(0.5 * log_w))
