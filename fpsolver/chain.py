r"""The discrete Markov chain behind a finite-volume generator.

The generator :math:`\mathcal L` acts on cell densities; the probability masses
:math:`m = VP` obey :math:`\dot m = Qm` with :math:`Q = V\mathcal L V^{-1}`, whose
off-diagonal entries are the jump rates :math:`K_{j\to i} = Q_{ij}` of a continuous-time
Markov chain on the cells. Every rate quantity of fpsolver (mean first-passage times,
committors, transition-path currents, flux over population, spectra) is computed for this
chain, so that all methods agree with each other on the discrete level.

:class:`MarkovChain` is a value object: the mass generator, the cell volumes, the rates of
leaving the grid through absorbing faces, the neighbour pairs across every face (periodic
seams included, from :func:`fpsolver.operators.edges.axis_edges`, so seams are handled in
one place), and — when the chain is reversible — the detailed-balance weights
:math:`\log\pi`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sps

from .boundary import Boundaries
from .grid import Grid
from .operators.edges import GHOST, axis_edges
from .symmetrize import BALANCE_TOL, log_balance_weights

__all__ = ["MarkovChain", "DETAILED_BALANCE_TOL"]

#: Largest relative violation of detailed balance accepted as reversible.
DETAILED_BALANCE_TOL = BALANCE_TOL


@dataclass(frozen=True, eq=False)
class MarkovChain:
    """Jump rates of the cell chain of one generator on one grid.

    Attributes
    ----------
    q
        Mass generator :math:`Q = V\\mathcal L V^{-1}` (CSR); ``q[i, j]`` is the rate of jumps j → i.
    volumes
        Cell volumes (flat, C order).
    leak
        Rate of leaving each cell through absorbing faces (zero away from them).
    pairs
        One ``(lower, upper)`` pair of flat index arrays per axis: the two cells beside every
        face normal to that axis, periodic seams included (absorbing faces excluded).
    grid, boundaries
        Where the chain lives.
    """

    q: sps.csr_matrix
    volumes: np.ndarray
    leak: np.ndarray
    pairs: tuple[tuple[np.ndarray, np.ndarray], ...]
    grid: Grid
    boundaries: Boundaries

    @classmethod
    def from_operator(cls, operator: sps.spmatrix, grid: Grid, boundaries: Boundaries) -> MarkovChain:
        """The chain of the density generator ``operator`` (``dP/dt = operator @ P``)."""
        volumes = grid.cell_volumes.ravel()
        q = sps.csr_matrix(sps.diags(volumes) @ operator @ sps.diags(1.0 / volumes))
        pairs, touching = [], np.zeros(grid.size, bool)
        for axis in range(grid.ndim):
            edges = axis_edges(grid, boundaries, axis)
            inside = edges.interior
            pairs.append((edges.lower[inside], edges.upper[inside]))
            touching[edges.lower[edges.upper == GHOST]] = True
            touching[edges.upper[edges.lower == GHOST]] = True
        # Column sums of Q are round-off (~1e-13 of the diagonal) except where probability
        # leaves through an absorbing face; only there are they read as a leak.
        leak = np.zeros(grid.size)
        leak[touching] = np.maximum(-np.asarray(q[:, touching].sum(axis=0)).ravel(), 0.0)
        return cls(q, volumes, leak, tuple(pairs), grid, boundaries)

    @property
    def size(self) -> int:
        return self.q.shape[0]

    @cached_property
    def scale(self) -> float:
        """Fastest total jump rate, :math:`\\max_i |Q_{ii}|` (sets the round-off of direct solves)."""
        return float(np.abs(self.q.diagonal()).max())

    @cached_property
    def qt(self) -> sps.csr_matrix:
        """:math:`Q^\\top` (rows: the jumps out of a cell), the backward generator."""
        return sps.csr_matrix(self.q.T)

    def out_rates(self, cell: int) -> tuple[np.ndarray, np.ndarray]:
        """Cells reachable in one jump from ``cell`` and the rates of those jumps (leak not included)."""
        row = self.qt.getrow(cell)
        keep = (row.indices != cell) & (row.data != 0)
        return row.indices[keep], row.data[keep]

    @cached_property
    def monotone(self) -> bool:
        """True when every jump rate is non-negative (Q is an M-matrix: a true Markov chain).

        Third-order transport in phase space has negative off-diagonal entries; then hitting
        "probabilities" of the chain can be negative and subtraction-free eliminations do not apply.
        """
        off = sps.coo_matrix(self.q)
        return not np.any(off.data[off.row != off.col] < 0)

    @cached_property
    def log_pi(self) -> np.ndarray | None:
        r"""Natural log of weights :math:`\pi` with :math:`\pi_iK_{i\to j} = \pi_jK_{j\to i}`, or None.

        Detailed balance of :math:`Q` in the sense of :func:`fpsolver.symmetrize.log_balance_weights`
        (:math:`Q_{ij}\pi_j = Q_{ji}\pi_i`), checked on every jump of the chain — seams and
        cross-diffusion jumps included — to :data:`DETAILED_BALANCE_TOL`; None when it fails or
        when some jump rate is negative (a non-monotone stencil is not a Markov chain). Scaled so
        that the largest is 0.
        """
        if not self.monotone:
            return None
        log_pi = log_balance_weights(self.q)
        if log_pi is not None:
            log_pi.setflags(write=False)
        return log_pi

    def reversed(self, log_pi: np.ndarray) -> MarkovChain:
        r"""The time-reversed chain :math:`\tilde K_{i\to j} = \pi_jK_{j\to i}/\pi_i` for stationary masses
        :math:`\pi` (equal to this chain under detailed balance). Leaks are kept as they are."""
        coo = sps.coo_matrix(self.q.T)
        data = coo.data * np.exp(log_pi[coo.row] - log_pi[coo.col])
        q = sps.csr_matrix((data, (coo.row, coo.col)), shape=self.q.shape)
        return MarkovChain(q, self.volumes, self.leak, self.pairs, self.grid, self.boundaries)

    def neighbours_max(self, values: np.ndarray) -> np.ndarray:
        """Largest value among each cell's face neighbours (seams included; -inf without any)."""
        best = np.full(self.size, -np.inf)
        for lower, upper in self.pairs:
            np.maximum.at(best, lower, values[upper])
            np.maximum.at(best, upper, values[lower])
        return best
