r"""Stationary states and slow relaxation modes of a generator :math:`\mathcal L`.

Stationary state
    When the generator satisfies detailed balance (:mod:`fpsolver.symmetrize`) its weights
    *are* the stationary density: :math:`p_i \propto w_i`, accumulated along a spanning tree in
    O(N), exact to round-off, with no linear solve (80³: 0.7 s). Otherwise, for a
    conservative, irreducible generator the null space is one-dimensional.
    Row ``anchor`` of :math:`\mathcal L p = 0` (redundant, because the volume-weighted
    column sums vanish) is replaced by :math:`p_{\rm anchor} = 1`; one sparse LU
    solve gives the null vector, which is then normalised to unit mass. Anchoring
    at the most probable cell (the landscape minimum) keeps the values in range
    even when the density spans hundreds of orders of magnitude.

Spectrum
    The eigenvalues of :math:`\mathcal L` nearest 0 by shift-invert Arnoldi with a
    small *positive* shift :math:`\sigma` (all eigenvalues have
    :math:`\mathrm{Re}\,\lambda \le 0`, so :math:`\mathcal L - \sigma I` is never
    singular); the factorisation is the registry's. Rates are
    :math:`-\mathrm{Re}\,\lambda`, ascending.

    With the iterative ``amg`` solver and a generator in detailed balance, the shift-invert
    solves (which need near machine-precision inner solves of a nearly singular system) are
    replaced by LOBPCG on the symmetric :math:`-S = -H^{-1}\mathcal L H` (same spectrum),
    preconditioned by one AMG V-cycle of :math:`-S`, with the known null vector
    :math:`H\mathbf 1 \propto \sqrt{w}` deflated when probability is conserved. Eigenvectors
    map back as :math:`v = Hy`. Eigenvalue errors are about :math:`\|r\|^2/\mathrm{gap}`
    with the residual :math:`\|r\| \le` :data:`LOBPCG_RTOL` :math:`\max|\mathcal L_{ii}|`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sps
import scipy.sparse.linalg as spla

from .errors import FPSolverWarning, InputError, SolverError
from .linalg import amg_preconditioner, factorize
from .symmetrize import Symmetrization, log_balance_weights, symmetrize

__all__ = ["stationary_density", "slowest_modes", "Modes", "DENSE_LIMIT", "EIGEN_SOLVERS", "register_eigensolver"]

#: Problems with at most this many cells use dense eigen-solves.
DENSE_LIMIT = 600

#: Relative size below which stationary values are round-off (set to zero).
ROUND_OFF = 1e-13

#: Share of negative probability above which the stationary solve warns. Off-diagonal diffusion
#: stencils are not monotone, so tiny negative tail values (far below the truncation error) are normal.
NEGATIVE_MASS_WARNING = 1e-6

#: Default shift, relative to the largest diagonal entry of the generator.
RELATIVE_SHIFT = 1e-9

#: LOBPCG residual tolerance, relative to max|L_ii| (80³: λ₁ within 2.8e-13 of the exact discrete value).
LOBPCG_RTOL = 1e-8

#: LOBPCG iterations allowed (a generous cap: 60³ from physically chosen starts took 8).
LOBPCG_MAXITER = 300

#: Linear solvers whose spectra come from LOBPCG on the symmetrised generator when it balances.
SYMMETRIC_EIGEN_SOLVERS = frozenset({"amg"})

EigenSolver = Callable[[sps.spmatrix, int, "float | None", Any], tuple[np.ndarray, np.ndarray]]

#: Solver name -> eigen-solver ``(operator, k, shift, discretisation) -> (values, vectors)`` that finds the
#: slowest modes itself, from the problem's structure (e.g. :mod:`fpsolver.kronecker`).
EIGEN_SOLVERS: dict[str, EigenSolver] = {}


def register_eigensolver(name: str) -> Callable[[EigenSolver], EigenSolver]:
    """Decorator registering the eigen-solver used by :func:`slowest_modes` for the linear solver ``name``."""

    def wrap(func: EigenSolver) -> EigenSolver:
        EIGEN_SOLVERS[name] = func
        return func

    return wrap


def stationary_density(operator: sps.spmatrix, volumes: np.ndarray, anchor: int, solver: str = "superlu") -> np.ndarray:
    """Null vector of ``operator`` normalised to ``volumes @ p = 1``.

    Parameters
    ----------
    operator
        Conservative generator (volume-weighted column sums zero).
    volumes
        Cell volumes (flattened).
    anchor
        Flat index of a cell where the density is expected to be large.
    """
    log_w = log_balance_weights(operator)
    p = np.exp(log_w) if log_w is not None else _anchored_null_vector(operator, anchor, solver)
    if not np.all(np.isfinite(p)):
        raise SolverError("the stationary solve produced non-finite values (is the generator reducible?)")
    mass = float(volumes @ p)
    if not mass > 0:
        raise SolverError("the stationary solve did not produce a positive density")
    p = p / mass
    # Where the exact density underflows (e^-250 next to the peak), the LU solve leaves round-off
    # of either sign; such values are zero to working precision.
    floor = ROUND_OFF * np.abs(p).max()
    p[np.abs(p) <= floor] = 0.0
    negative_mass = -float(volumes @ np.minimum(p, 0.0))
    if negative_mass > NEGATIVE_MASS_WARNING:
        warnings.warn(
            f"the stationary density has negative values (total {negative_mass:.3g} of the probability, "
            f"down to {p.min():.3g} against a peak of {p.max():.3g}): off-diagonal diffusion makes the "
            "scheme non-monotone; refine the grid where the density varies fastest",
            FPSolverWarning,
            stacklevel=3,
        )
    return p


def _anchored_null_vector(operator: sps.spmatrix, anchor: int, solver: str) -> np.ndarray:
    n = operator.shape[0]
    mat = sps.csr_matrix(operator, copy=True)
    rows = [mat[:anchor], sps.csr_matrix(([1.0], ([0], [anchor])), shape=(1, n)), mat[anchor + 1 :]]
    system = sps.vstack([r for r in rows if r.shape[0]], format="csc")
    return factorize(system, solver).solve(np.eye(1, n, anchor).ravel())


@dataclass(frozen=True)
class Modes:
    """Slowest modes: ``eigenvalues`` (complex, by ascending rate) and right ``vectors`` (columns)."""

    eigenvalues: np.ndarray
    vectors: np.ndarray

    @property
    def rates(self) -> np.ndarray:
        """Relaxation rates :math:`-\\mathrm{Re}\\,\\lambda`."""
        return -self.eigenvalues.real


def slowest_modes(operator: sps.spmatrix, k: int, shift: float | None = None, solver: str = "superlu", discretisation: Any = None) -> Modes:
    """The ``k`` eigenpairs of ``operator`` with the smallest rates.

    Parameters
    ----------
    operator
        The generator.
    k
        Number of modes (including the stationary one when it exists).
    shift
        Positive shift σ of the shift-invert iteration; default ``1e-9 * max|diag|``.
        Accuracy of a rate λ is about ``eps * σ / λ`` relative.
    solver
        Linear solver for :math:`\\mathcal L - \\sigma I`, or one with its own eigen-solver (:data:`EIGEN_SOLVERS`).
    discretisation
        ``(coefficients, grid, boundaries)`` of the problem, for eigen-solvers that use its structure.
    """
    n = operator.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    if k > n:
        raise InputError(f"k={k} modes requested from a problem with only {n} cells")
    symmetric = symmetrize(operator) if solver in SYMMETRIC_EIGEN_SOLVERS and n > DENSE_LIMIT and k < n // 4 else None
    if n <= DENSE_LIMIT or k >= n - 2:
        values, vectors = sla.eig(operator.toarray())
    elif solver in EIGEN_SOLVERS:
        values, vectors = EIGEN_SOLVERS[solver](operator, k, shift, discretisation)
    elif symmetric is not None:
        values, vectors = _lobpcg_modes(symmetric, k)
    else:
        scale = float(np.max(np.abs(operator.diagonal())))
        sigma = RELATIVE_SHIFT * scale if shift is None else float(shift)
        if not sigma > 0:
            raise InputError(f"the shift must be positive, got {sigma!r}")
        lu = factorize(sps.csc_matrix(operator) - sigma * sps.identity(n, format="csc"), solver)
        opinv = spla.LinearOperator((n, n), matvec=lu.solve, dtype=float)
        want = min(n - 2, k + 2)
        try:
            # A seeded start vector: ARPACK's own is random, which made rates differ between runs at 1e-9.
            start = np.random.default_rng(0).standard_normal(n)
            values, vectors = spla.eigs(operator, k=want, sigma=sigma, OPinv=opinv, which="LM", tol=1e-13, maxiter=50 * n, v0=start)
        except spla.ArpackNoConvergence as exc:
            raise SolverError(f"the eigen-solver did not converge ({exc})") from None
        except SolverError as exc:
            raise SolverError(
                f"shift-invert needs accurate solves of L - sigma I with sigma = {sigma:.3g} ({exc}); "
                "use the 'superlu' solver, or pass a larger shift (near the rates sought)"
            ) from None
    order = np.lexsort((np.abs(values.imag), -values.real))[:k]
    return Modes(values[order], vectors[:, order])


def _lobpcg_modes(symmetric: Symmetrization, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` eigenpairs of smallest rate from LOBPCG on ``-S``; vectors mapped back by ``H``."""
    minus_s = sps.csr_matrix(-symmetric.matrix)
    n = minus_s.shape[0]
    scale = float(np.abs(minus_s.diagonal()).max())
    null = symmetric.scale / np.linalg.norm(symmetric.scale)
    conserving = np.linalg.norm(minus_s @ null) <= 1e2 * np.finfo(float).eps * scale * np.sqrt(n)
    wanted = k - 1 if conserving else k
    values, vectors = np.zeros(0), np.zeros((n, 0))
    if wanted:
        preconditioner = amg_preconditioner(minus_s)
        # Random blocks smoothed by the V-cycle: low modes dominate, which LOBPCG converges fast from.
        start = preconditioner @ np.random.default_rng(0).standard_normal((n, wanted))
        constraint = null[:, None] if conserving else None
        tol = LOBPCG_RTOL * scale
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # non-convergence is checked below
            values, vectors = spla.lobpcg(minus_s, start, M=preconditioner, Y=constraint, tol=tol, maxiter=LOBPCG_MAXITER, largest=False)
        residual = np.linalg.norm(minus_s @ vectors - vectors * values, axis=0)
        if not np.all(residual <= tol):
            raise SolverError(f"LOBPCG did not converge in {LOBPCG_MAXITER} iterations (residuals {residual.max():.2g} > {tol:.2g})")
        values = -values
    if conserving:
        values, vectors = np.concatenate([[0.0], values]), np.column_stack([null, vectors])
    return values.astype(complex), symmetric.from_symmetric(vectors)
