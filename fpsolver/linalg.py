r"""Registry of sparse linear solvers with one interface: factorise once, solve many times.

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
``amg``
    O(N) iterative solve for 3-D and larger problems. When the matrix balances (detailed
    balance, :mod:`fpsolver.symmetrize`) the system is rewritten as :math:`S y = H^{-1}b`
    with :math:`S = H^{-1}AH` symmetric and solved by conjugate gradients; otherwise by
    BiCGSTAB. Both stop on the residual of the original system. Preconditioner: with the
    grid's shape (option ``grid_shape``, passed by :class:`~fpsolver.problem.FokkerPlanck`)
    and a balanced matrix, one V-cycle of :class:`~fpsolver.multigrid.BoxMultigrid`; otherwise
    Jacobi while that converges within :data:`JACOBI_ITERATIONS` iterations, then a classical
    (Ruge–Stüben) pyamg hierarchy, built once. Symmetric systems start from the best
    combination of their last :data:`PROJECTION_SIZE` solutions (:class:`PreviousSolutions`).
    Tolerance ``rtol`` (default 1e-10, relative residual; :data:`STEP_RTOL` for the systems of
    time steps, whose schemes may pass a tolerance per solve); ``solve(b, x0)`` warm-starts.

Every factorisation takes an optional starting guess, ``solve(b, x0)``; direct methods ignore it.
:func:`choose_solver` picks a method from the grid (``solver="auto"``).
New methods register with :func:`register_solver`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spla

from .errors import InputError, SolverError
from .multigrid import BoxMultigrid
from .symmetrize import symmetrize

if TYPE_CHECKING:
    from .grid import Grid

__all__ = [
    "Factorization", "factorize", "register_solver", "SOLVERS", "DIRECT_SOLVERS", "choose_solver", "amg_preconditioner", "AUTO",
    "PreviousSolutions", "STEP_RTOL", "GRID_OPTIONS", "grid_options", "sharing_factorizations", "SHARED_LIMIT",
]

logger = logging.getLogger(__name__)


class Factorization(Protocol):
    """A prepared linear operator :math:`A^{-1}`."""

    shape: tuple[int, int]

    def solve(self, b: np.ndarray, x0: np.ndarray | None = None, rtol: float | None = None) -> np.ndarray:
        """Return x with A x = b (``x0``: a starting guess; ``rtol``: the relative residual of this
        solve instead of the factorisation's; both used by iterative methods only)."""


SOLVERS: dict[str, Callable[..., Factorization]] = {}


def register_solver(name: str) -> Callable[[Callable[..., Factorization]], Callable[..., Factorization]]:
    """Decorator registering a factory ``factory(A, **options) -> Factorization`` under ``name``."""

    def wrap(factory: Callable[..., Factorization]) -> Callable[..., Factorization]:
        SOLVERS[name] = factory
        return factory

    return wrap


def factorize(matrix: sps.spmatrix, method: str = "superlu", **options: Any) -> Factorization:
    """Prepare ``matrix`` for repeated solves with the registered ``method``.

    Inside :func:`sharing_factorizations`, a matrix equal entry for entry to one factorised
    earlier in the block (same method and options) gets that factorisation back.
    """
    try:
        factory = SOLVERS[method]
    except KeyError:
        raise InputError(f"unknown linear solver {method!r}; choose one of {', '.join(SOLVERS)}") from None
    csc = sps.csc_matrix(matrix)
    shared = _SHARED.get()
    if shared is None or not all(_plain(value) for value in options.values()):
        return factory(csc, **options)
    key = _fingerprint(csc, method, options)
    if key in shared:
        shared.move_to_end(key)
        return shared[key]
    factorization = factory(csc, **options)
    shared[key] = factorization
    while len(shared) > SHARED_LIMIT:
        shared.popitem(last=False)
    return factorization


#: Factorisations :func:`sharing_factorizations` keeps (the most recently used): the potential-theory
#: time of a well needs two systems (the chain and its time reversal), each met again per well.
SHARED_LIMIT = 2

_SHARED: ContextVar[OrderedDict[bytes, Factorization] | None] = ContextVar("fpsolver_shared_factorizations", default=None)


@contextlib.contextmanager
def sharing_factorizations() -> Iterator[None]:
    """Within this block, :func:`factorize` factorises each distinct matrix once.

    The rate layer meets the same restricted generator several times — the Markov decomposition
    of the MFPT and the potential-theory committors of each well solve on the same free cells —
    and a sparse LU costs far more than hashing the matrix (30 720 phase-space cells: 0.27 s
    against ~1 ms). Matrices are compared by content (a hash of their sorted CSC arrays), so a
    hit returns the factorisation of exactly the same system and the results are bit for bit
    those of a fresh one. At most :data:`SHARED_LIMIT` factorisations are kept, and all are
    released when the outermost block ends; nested blocks share the outer one's.
    """
    if _SHARED.get() is not None:
        yield
        return
    token = _SHARED.set(OrderedDict())
    try:
        yield
    finally:
        _SHARED.reset(token)


def _plain(value: Any) -> bool:
    """Whether an option's ``repr`` identifies it (numbers, strings, None, and tuples of them)."""
    if isinstance(value, tuple):
        return all(_plain(item) for item in value)
    return value is None or isinstance(value, (bool, int, float, str))


def _fingerprint(matrix: sps.csc_matrix, method: str, options: dict[str, Any]) -> bytes:
    """A digest of the matrix's entries (canonical CSC), shape, method and options."""
    canonical = matrix if matrix.has_sorted_indices else matrix.sorted_indices()
    digest = hashlib.blake2b(digest_size=20)
    digest.update(repr((canonical.shape, canonical.dtype.str, method, sorted(options.items(), key=lambda item: item[0]))).encode())
    for array in (canonical.indptr, canonical.indices, canonical.data):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.digest()


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

    def solve(self, b: np.ndarray, x0: np.ndarray | None = None, rtol: float | None = None) -> np.ndarray:
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

    def solve(self, b: np.ndarray, x0: np.ndarray | None = None, rtol: float | None = None) -> np.ndarray:
        rtol = self._rtol if rtol is None else rtol
        x, info = spla.gmres(self._matrix, b, x0=x0, rtol=rtol, atol=0.0, M=self._preconditioner, maxiter=self._maxiter, restart=50)
        if info != 0:
            raise SolverError(f"GMRES did not converge to rtol={rtol} in {self._maxiter} restarts")
        return x


#: Jacobi-preconditioned iterations tried before the AMG hierarchy is built. 60³, I - 0.029 𝓛 (TR-BDF2,
#: dt = 0.1), residual of the original system to 1e-10: Jacobi-CG 85 iterations, AMG-CG 6-7 (the
#: Ruge-Stüben setup took 2.6-4.2 s at 80³ on the shared machine).
JACOBI_ITERATIONS = 25


def amg_preconditioner(matrix: sps.spmatrix) -> spla.LinearOperator:
    """One V-cycle of a classical (Ruge–Stüben) pyamg hierarchy of ``matrix``, as an operator.

    Measured on I - cΔt𝓛 (60³, symmetrised, cΔt = 0.03) against smoothed aggregation: setup
    0.7 s vs 5.8 s, 4 vs 7 BiCGSTAB iterations; smoothed aggregation of the symmetric part,
    rootnode and AIR were slower or did not converge (see docs/numerics.md).
    """
    import pyamg  # deferred: only the iterative path needs it

    return pyamg.ruge_stuben_solver(sps.csr_matrix(matrix)).aspreconditioner(cycle="V")


def inner(a: np.ndarray, b: np.ndarray) -> float:
    """Dot product without BLAS: on the shared 2-core machine a threaded BLAS ``ddot`` of 512k entries
    took 8 ms against 2.5 ms for this loop (threads wait for busy cores)."""
    return float(np.einsum("i,i->", a, b))


def conjugate_gradients(
    matrix: sps.spmatrix, b: np.ndarray, x: np.ndarray, precondition: Callable[[np.ndarray], np.ndarray],
    converged: Callable[[np.ndarray], bool], maxiter: int,
) -> tuple[np.ndarray, int, bool]:
    """Preconditioned conjugate gradients from ``x`` until ``converged(residual)``.

    The stopping test is the caller's, so that a system solved in scaled variables can stop on
    the residual of the original one. Returns the solution, the iterations and whether it converged.
    """
    x = np.array(x, dtype=float)
    r = b - matrix @ x
    z = precondition(r)
    direction = z.copy()
    rz = inner(r, z)
    for iteration in range(maxiter + 1):
        if converged(r):
            return x, iteration, True
        q = matrix @ direction
        alpha = rz / inner(direction, q)
        x += alpha * direction
        r -= alpha * q
        z = precondition(r)
        rz, previous = inner(r, z), rz
        direction *= rz / previous
        direction += z
    return x, maxiter, False


class PreviousSolutions:
    r"""Starting guesses for a symmetric positive definite system :math:`Ax = b` solved many times.

    The guess is the best combination, in the energy norm, of the last ``size`` solutions
    :math:`X = [x_1, \ldots, x_m]` (Fischer, 1998):

    .. math:: x_0 = X c, \qquad (X^{\mathsf T} A X)\,c = X^{\mathsf T} b
              \quad\Longleftrightarrow\quad x_0 = \arg\min_{x \in \mathrm{span}\,X} \|x - A^{-1}b\|_A ,

    at the price of :math:`m` dot products and an :math:`m \times m` solve (pseudo-inverse: the
    solutions of a slowly changing state are nearly dependent). Each new solution costs one
    product :math:`Ax`. When the solutions change smoothly (time steps), the guess starts with an
    error of the order of the step's truncation error instead of the step's change.
    """

    def __init__(self, matrix: sps.csr_matrix, size: int):
        self._matrix, self._size = matrix, size
        self._solutions: list[np.ndarray] = []
        self._gram = np.zeros((0, 0))

    def guess(self, b: np.ndarray) -> np.ndarray | None:
        """The projected guess for right-hand side ``b``, or None before the first solution."""
        if not self._solutions:
            return None
        weights = np.linalg.pinv(self._gram, rcond=1e-13, hermitian=True) @ np.array([inner(x, b) for x in self._solutions])
        guess = np.zeros_like(b)
        for weight, x in zip(weights, self._solutions):
            guess += weight * x
        return guess

    def add(self, x: np.ndarray) -> None:
        """Remember the solution ``x`` (dropping the oldest beyond ``size``)."""
        if len(self._solutions) >= self._size:
            self._solutions.pop(0)
            self._gram = self._gram[1:, 1:]
        image = self._matrix @ x
        row = np.array([inner(y, image) for y in self._solutions] + [inner(x, image)])
        m = len(self._solutions)
        gram = np.empty((m + 1, m + 1))
        gram[:m, :m], gram[m, :], gram[:, m] = self._gram, row, row
        self._solutions.append(x.copy())
        self._gram = gram


#: Earlier solutions the ``amg`` solver projects its starting guesses from (:class:`PreviousSolutions`).
#: 60³, 20 TR-BDF2 steps (CG iterations / CPU s): none 204 / 3.6, 2: 165 / 2.6, 3: 123 / 2.4,
#: 4: 123 / 2.6, 8: 127 / 3.0.
PROJECTION_SIZE = 3


class _AMG:
    def __init__(self, matrix: sps.csc_matrix, rtol: float = 1e-10, maxiter: int = 1000, grid_shape: tuple[int, ...] | None = None, projection: int = PROJECTION_SIZE):
        self.shape = matrix.shape
        self._rtol, self._maxiter = rtol, maxiter
        self._grid_shape = grid_shape
        self._symmetric = symmetrize(matrix)
        # A box hierarchy costs less to build than the Jacobi iterations it would save (80³: 0.1 s).
        self._box = self._symmetric is not None and grid_shape is not None
        self._system = self._symmetric.matrix if self._symmetric is not None else sps.csr_matrix(matrix)
        self._previous = PreviousSolutions(self._system, projection) if self._symmetric is not None and projection > 0 else None
        diagonal = self._system.diagonal()
        self._precondition: Callable[[np.ndarray], np.ndarray] | None = None
        if np.all(diagonal != 0):
            inverse = 1.0 / diagonal
            self._precondition = lambda v: inverse * v
        self._multigrid = False
        #: Krylov iterations taken so far (all solves).
        self.iterations = 0

    def _hierarchy(self) -> Callable[[np.ndarray], np.ndarray]:
        """The multigrid cycle: box aggregation on the grid for symmetric systems, else Ruge-Stueben."""
        if self._box:
            return BoxMultigrid(self._system, self._grid_shape, self._symmetric.scale)
        return amg_preconditioner(self._system).matvec

    def _run(self, b: np.ndarray, x0: np.ndarray, maxiter: int, target: float) -> tuple[np.ndarray, bool]:
        assert self._precondition is not None
        if self._symmetric is not None:
            scale = self._symmetric.scale
            weighted = np.empty_like(b)

            def converged(r: np.ndarray) -> bool:
                np.multiply(scale, r, out=weighted)
                return inner(weighted, weighted) <= target * target

            x, count, done = conjugate_gradients(self._system, b, x0, self._precondition, converged, maxiter)
        else:
            ticks = [0]
            operator = spla.LinearOperator(self.shape, matvec=self._precondition, dtype=float)
            x, info = spla.bicgstab(self._system, b, x0=x0, rtol=0.0, atol=target, M=operator, maxiter=maxiter, callback=lambda _: ticks.__setitem__(0, ticks[0] + 1))
            count, done = ticks[0], info == 0
        self.iterations += count
        return x, done

    def solve(self, b: np.ndarray, x0: np.ndarray | None = None, rtol: float | None = None) -> np.ndarray:
        try:
            return self._solve(b, x0, self._rtol if rtol is None else rtol)
        except (ValueError, ArithmeticError) as exc:  # pyamg breaks down on matrices far from M-matrices
            raise SolverError(
                f"the AMG-preconditioned solve broke down ({exc}); the matrix is not an M-matrix "
                "(e.g. off-diagonal diffusion stencils): use solver='superlu'"
            ) from None

    def _solve(self, b: np.ndarray, x0: np.ndarray | None, rtol: float) -> np.ndarray:
        rhs = np.asarray(b, dtype=float)
        target = rtol * math.sqrt(inner(rhs, rhs))  # residual of the original system
        guess = np.zeros(self.shape[0]) if x0 is None else np.asarray(x0, dtype=float)
        if self._symmetric is not None:
            rhs, guess = self._symmetric.to_symmetric(rhs), self._symmetric.to_symmetric(guess)
        projected = self._previous.guess(rhs) if self._previous is not None else None
        guess = guess if projected is None else projected  # the caller's guesses are earlier solutions
        done = False
        if not self._multigrid and self._precondition is not None and not self._box:
            guess, done = self._run(rhs, guess, JACOBI_ITERATIONS, target)
        if not done:
            if not self._multigrid:
                logger.debug("building the AMG hierarchy of a %d x %d system", *self.shape)
                self._precondition, self._multigrid = self._hierarchy(), True
            guess, done = self._run(rhs, guess, self._maxiter, target)
        if not done or not np.all(np.isfinite(guess)):
            method = "conjugate gradients" if self._symmetric is not None else "BiCGSTAB"
            raise SolverError(f"AMG-preconditioned {method} did not reach rtol={rtol} in {self._maxiter} iterations")
        if self._previous is not None:
            self._previous.add(guess)
        return self._symmetric.from_symmetric(guess) if self._symmetric is not None else guess


#: Solvers whose solves are exact up to round-off (the rate algorithms need one).
DIRECT_SOLVERS = ("superlu",)

#: Relative residual of the ``amg`` solves inside implicit time steps. 60³, 20 TR-BDF2 steps of
#: dt = 0.1: the solution differs from that of 1e-10 solves by 4e-9 (1e-6: 9e-7) of its peak, while
#: the time-discretisation error of those steps is 1.9e-4; 244 instead of 306 CG iterations at 80³.
STEP_RTOL = 1e-8

#: Options a solver takes from the grid, by solver: ``options(grid shape, purpose) -> dict``
#: (purpose ``"evolve"``: the systems of implicit time steps; ``"solve"``: one-off solves).
GRID_OPTIONS: dict[str, Callable[[tuple[int, ...], str], dict[str, Any]]] = {
    "amg": lambda shape, purpose: {"grid_shape": tuple(shape), **({"rtol": STEP_RTOL} if purpose == "evolve" else {})},
}


def grid_options(method: str, shape: tuple[int, ...], purpose: str = "solve") -> dict[str, Any]:
    """The options of :func:`factorize` that ``method`` takes from a grid of ``shape`` (see :data:`GRID_OPTIONS`)."""
    options = GRID_OPTIONS.get(method)
    return {} if options is None else options(shape, purpose)

register_solver("superlu")(_SuperLU)
register_solver("krylov")(_Krylov)
register_solver("amg")(_AMG)

#: The solver name resolved by :func:`choose_solver`.
AUTO = "auto"

#: Largest number of cells, by purpose, for which ``auto`` picks the direct solver in 3-D and
#: beyond. Measured break-even (fresh processes, shared machine): λ₁ (k = 2) 16³ SuperLU 0.38 s /
#: amg 0.43 s, 22³ 0.63 / 0.40 s, 28³ 1.87 / 0.51 s; 20 TR-BDF2 steps 22³ 0.69 / 1.14 s, 28³
#: 1.74 / 1.77 s, 34³ 4.36 / 2.18 s. A time integration reuses one factorisation for many solves.
DIRECT_LIMITS = {"evolve": 25_000, "solve": 10_000}


def choose_solver(grid: Grid, purpose: str = "solve") -> str:
    """The linear solver ``solver="auto"`` stands for on ``grid``.

    SuperLU for 1-D and 2-D grids (sparse LU fill grows like N log N there; 400² factorises in
    0.3 s) and for 3-D grids of at most ``DIRECT_LIMITS[purpose]`` cells; ``amg`` beyond (LU fill
    grows like N^{4/3} and work like N²: 60³ took 108 s and 4 GB); ``kronecker``
    (:mod:`fpsolver.kronecker`) for a 4-D phase space, two positions and two velocities.

    Parameters
    ----------
    grid
        The grid of the problem.
    purpose
        ``"evolve"`` (one matrix, many solves) or ``"solve"`` (one-off solves).
    """
    try:
        limit = DIRECT_LIMITS[purpose]
    except KeyError:
        raise InputError(f"unknown solver purpose {purpose!r}; choose one of {', '.join(DIRECT_LIMITS)}") from None
    if sum(axis.kind == "velocity" for axis in grid) == 2 == grid.ndim // 2:
        return "kronecker"  # 4-D phase space: fpsolver.kronecker (LU fill and ILU/AMG fail there)
    return "superlu" if grid.ndim <= 2 or grid.size <= limit else "amg"
