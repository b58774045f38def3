"""Registry of sparse linear solvers with one interface: factorise once, solve many times.

>>> solver = factorize(A)            # SuperLU by default
>>> x = solver.solve(b)

Registered methods
------------------
``superlu``
    Sparse LU (:func:`scipy.sparse.linalg.splu`), direct; the default. Minimum-degree
    ordering on A + Aᵀ (the generators are structurally symmetric): on a 400² grid it
    halves the fill of COLAMD (9.7e6 vs 1.75e7 entries) and the solve time.
``krylov``
    GMRES preconditioned by an incomplete LU (:func:`scipy.sparse.linalg.spilu`, drop
    tolerance 1e-4, fill factor 10); for 3-D systems too large to factorise (40³: ILU 1.7 s
    and 49 ms per solve, against 15 s to factorise fully). Tolerance ``rtol`` (default 1e-12).

New methods register with :func:`register_solver`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spla

from .errors import InputError, SolverError

__all__ = ["Factorization", "factorize", "register_solver", "SOLVERS"]

logger = logging.getLogger(__name__)


class Factorization(Protocol):
    """A prepared linear operator :math:`A^{-1}`."""

    shape: tuple[int, int]

    def solve(self, b: np.ndarray) -> np.ndarray:
        """Return x with A x = b."""


SOLVERS: dict[str, Callable[..., Factorization]] = {}


def register_solver(name: str) -> Callable[[Callable[..., Factorization]], Callable[..., Factorization]]:
    """Decorator registering a factory ``factory(A, **options) -> Factorization`` under ``name``."""

    def wrap(factory: Callable[..., Factorization]) -> Callable[..., Factorization]:
        SOLVERS[name] = factory
        return factory

    return wrap


def factorize(matrix: sps.spmatrix, method: str = "superlu", **options: Any) -> Factorization:
    """Prepare ``matrix`` for repeated solves with the registered ``method``."""
    try:
        factory = SOLVERS[method]
    except KeyError:
        raise InputError(f"unknown linear solver {method!r}; choose one of {', '.join(SOLVERS)}") from None
    return factory(sps.csc_matrix(matrix), **options)


#: Relative diagonal shifts tried, in turn, for the ILU preconditioner when the plain ILU meets a
#: zero pivot (40^3 stationary systems need 1e-3; GMRES then needs a few more iterations).
PRECONDITIONER_SHIFTS = (1e-6, 1e-3)

#: Ordering and pivoting shared by the LU and ILU factorisations (see _SuperLU).
_SYMMETRIC_OPTIONS = {"permc_spec": "MMD_AT_PLUS_A", "diag_pivot_thresh": 0.1, "options": {"SymmetricMode": True}}


class _SuperLU:
    def __init__(self, matrix: sps.csc_matrix, permc_spec: str = "MMD_AT_PLUS_A", diag_pivot_thresh: float = 0.1):
        self.shape = matrix.shape
        try:
            # Symmetric mode with a preference for diagonal pivots: the systems are (volume-weighted)
            # column diagonally dominant, so elimination rarely needs row interchanges; keeping the
            # symmetric ordering makes the 3-D factorisation ~3.5x faster (30^3: 7.9 s -> 2.1 s).
            self._lu = spla.splu(matrix, **{**_SYMMETRIC_OPTIONS, "permc_spec": permc_spec, "diag_pivot_thresh": diag_pivot_thresh})
        except RuntimeError as exc:
            raise SolverError(f"sparse LU factorisation failed ({exc}); the matrix is singular") from None

    def solve(self, b: np.ndarray) -> np.ndarray:
        return self._lu.solve(np.asarray(b, dtype=float))


class _Krylov:
    def __init__(self, matrix: sps.csc_matrix, rtol: float = 1e-12, maxiter: int = 500, drop_tol: float = 1e-4, fill_factor: float = 10.0):
        self.shape = matrix.shape
        self._matrix = matrix.tocsr()
        self._rtol = rtol
        self._maxiter = maxiter
        ilu = None
        # A generator row replaced by a normalisation can give the ILU an exactly zero pivot; the
        # preconditioner may then come from a slightly shifted matrix (GMRES still solves the true one).
        scale = float(np.abs(matrix.diagonal()).max())
        for shift in (0.0, *(relative * scale for relative in PRECONDITIONER_SHIFTS)):
            try:
                shifted = matrix + shift * sps.identity(matrix.shape[0], format="csc") if shift else matrix
                ilu = spla.spilu(shifted, drop_tol=drop_tol, fill_factor=fill_factor, **_SYMMETRIC_OPTIONS)
                break
            except RuntimeError as exc:
                failure = exc
        if ilu is None:
            raise SolverError(f"the incomplete LU preconditioner failed ({failure}); use the 'superlu' solver") from None
        self._preconditioner = spla.LinearOperator(matrix.shape, ilu.solve)

    def solve(self, b: np.ndarray) -> np.ndarray:
        x, info = spla.gmres(self._matrix, b, rtol=self._rtol, atol=0.0, M=self._preconditioner, maxiter=self._maxiter, restart=50)
        if info != 0:
            raise SolverError(f"GMRES did not converge to rtol={self._rtol} in {self._maxiter} restarts")
        return x


register_solver("superlu")(_SuperLU)
register_solver("krylov")(_Krylov)
