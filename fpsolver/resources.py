r"""Memory and step-count estimates, checked before any work starts.

A scenario that asks for a grid of :math:`10^{12}` cells or a time step of
:math:`10^{-300}` should be refused at ``validate`` with a number and advice, not
run out of memory or loop for ever. :func:`estimate` predicts the peak memory
of a run from the grid shape alone; :func:`check` refuses runs beyond the
machine's available memory or :data:`MAX_STEPS` time steps.

Memory model (bytes; :math:`N` cells, :math:`d` axes)
------------------------------------------------------
matrix
    assembly of the generator, measured at about :data:`ASSEMBLY_BYTES_PER_ENTRY`
    bytes per matrix entry (1-D to 3-D, ``tracemalloc`` peak), with
    :math:`(2d+1)N` entries (:math:`3^d N` for a full diffusion matrix).
factorisation
    per solver, from :data:`SOLVER_COSTS` (extend it for a new solver).
    ``superlu``: stored LU entries :math:`F(N)` at :data:`LU_BYTES_PER_ENTRY` bytes,
    :math:`F = F_\mathrm{ref}(N/N_\mathrm{ref})^{b}` calibrated on the quartic
    well with the package's ordering (MMD on AᵀA+A, symmetric mode), see
    :data:`SUPERLU_FILL`: :math:`b = 1` in 1-D (banded), :math:`b \approx 1.16`
    in 2-D (fill/N = 29, 37, 49, 61 at N = 50², 100², 200², 400²; 1.2 is used),
    :math:`b \approx 1.6` in 3-D (fill/N = 67 … 431 at N = 10³ … 30³). Grids of
    more than three axes use the 3-D law (an underestimate).
    ``krylov``: the ILU preconditioner (at most ``fill_factor`` = 10 times the
    matrix) and 60 Krylov vectors.
snapshots and vectors
    8 bytes per cell per stored density (twice: the array and its xarray copy
    when written) and per work vector.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from .errors import InputError

__all__ = [
    "Estimate",
    "estimate",
    "check",
    "check_memory",
    "check_steps",
    "SOLVER_COSTS",
    "register_solver_cost",
    "MAX_STEPS",
    "available_memory",
]

#: Most time steps one evolve task may take.
MAX_STEPS = 10_000_000

#: Peak bytes per generator entry while the operator is assembled (measured 126-153).
ASSEMBLY_BYTES_PER_ENTRY = 160.0

#: Bytes per stored LU entry (value, row index, supernode bookkeeping).
LU_BYTES_PER_ENTRY = 16.0

#: SuperLU fill calibration per number of axes: (reference cells, LU entries there, exponent).
SUPERLU_FILL: dict[int, tuple[float, float, float]] = {
    1: (1.0e5, 4.0e5, 1.0),
    2: (1.6e5, 9.7e6, 1.2),
    3: (2.7e4, 1.16e7, 1.6),
}

#: A solver's factorisation memory in bytes, from (grid shape, matrix entries).
SolverCost = Callable[[tuple[int, ...], float], float]

SOLVER_COSTS: dict[str, SolverCost] = {}


def register_solver_cost(name: str) -> Callable[[SolverCost], SolverCost]:
    """Decorator registering the factorisation-memory model of the linear solver ``name``."""

    def wrap(cost: SolverCost) -> SolverCost:
        SOLVER_COSTS[name] = cost
        return cost

    return wrap


def _cells(shape: tuple[int, ...]) -> float:
    """Number of cells as a float (capped at 1e300 so absurd grids still compare)."""
    return float(min(math.prod(shape), 10**300))


@register_solver_cost("superlu")
def _superlu_bytes(shape: tuple[int, ...], entries: float) -> float:
    cells = _cells(shape)
    ref_cells, ref_fill, exponent = SUPERLU_FILL[min(len(shape), 3)]
    return LU_BYTES_PER_ENTRY * ref_fill * (cells / ref_cells) ** exponent


@register_solver_cost("krylov")
def _krylov_bytes(shape: tuple[int, ...], entries: float) -> float:
    cells = _cells(shape)
    return LU_BYTES_PER_ENTRY * 10.0 * entries + 8.0 * 60 * cells


@register_solver_cost("amg")
def _amg_bytes(shape: tuple[int, ...], entries: float) -> float:
    """The symmetrised copy, a Ruge-Stueben hierarchy (operator complexity ~3) or a box one (~1.14),
    and about 30 vectors (CG, LOBPCG blocks, eight remembered solutions). Against the peak RSS of
    fresh processes (benchmarks/README.md): 0.7-1.45x of it for 60^3-100^3 steps, spectra and
    stationary states."""
    cells = _cells(shape)
    return LU_BYTES_PER_ENTRY * 3.0 * entries + 8.0 * 30 * cells


@dataclass(frozen=True)
class Estimate:
    """Predicted size of a run.

    Attributes
    ----------
    cells
        Number of grid cells.
    matrix_bytes, factor_bytes, data_bytes
        Operator assembly, factorisations (all of them), stored snapshots and work vectors.
    steps
        Time steps of the evolve task (0 without one).
    solver
        The linear solver the factorisation estimate is for.
    """

    cells: float
    matrix_bytes: float
    factor_bytes: float
    data_bytes: float
    steps: float
    solver: str

    @property
    def total_bytes(self) -> float:
        """Predicted peak memory."""
        return self.matrix_bytes + self.factor_bytes + self.data_bytes

    def describe(self) -> str:
        """One line such as ``about 3.2 GB (matrix 10 MB, superlu factors 3.1 GB, data 50 MB)``."""
        return (
            f"about {_size(self.total_bytes)} (matrix {_size(self.matrix_bytes)}, "
            f"{self.solver} factors {_size(self.factor_bytes)}, densities and work vectors {_size(self.data_bytes)})"
        )


def estimate(
    grid_shape: tuple[int, ...],
    solver: str = "superlu",
    n_snapshots: float = 0,
    steps: float = 0,
    factorisations: int = 1,
    vectors: int = 20,
    full_diffusion: bool = False,
) -> Estimate:
    """Estimate the memory a run needs (see the module docstring for the model).

    Parameters
    ----------
    grid_shape
        Cells per axis.
    solver
        Linear solver name; must have an entry in :data:`SOLVER_COSTS`.
    n_snapshots
        Densities kept in memory and written (evolve output times).
    steps
        Number of time steps (only reported and checked against :data:`MAX_STEPS`).
    factorisations
        Matrices factorised and kept at the same time (BDF2: 2).
    vectors
        Work vectors of one grid size (eigenvectors, right-hand sides, fields).
    full_diffusion
        A diffusion/mobility matrix with off-diagonal entries (a :math:`3^d` stencil).
    """
    if solver not in SOLVER_COSTS:
        raise InputError(f"no memory model for the linear solver {solver!r}; known: {', '.join(SOLVER_COSTS)}")
    shape = tuple(int(n) for n in grid_shape)
    d = len(shape)
    cells = _cells(shape)
    entries = cells * (3**d if full_diffusion else 2 * d + 1)
    return Estimate(
        cells=cells,
        matrix_bytes=ASSEMBLY_BYTES_PER_ENTRY * entries,
        factor_bytes=factorisations * SOLVER_COSTS[solver](shape, entries),
        data_bytes=8.0 * cells * (2 * n_snapshots + vectors),
        steps=float(steps),
        solver=solver,
    )


def available_memory() -> float:
    """Bytes of memory available to a new computation now (``psutil``'s 'available')."""
    return float(psutil.virtual_memory().available)


def check_memory(est: Estimate, limit: float | None = None) -> None:
    """Raise :class:`InputError` when ``est`` needs more than ``limit`` bytes (default: available memory)."""
    limit = available_memory() if limit is None else limit
    if est.total_bytes > limit:
        other = [s for s in SOLVER_COSTS if s != est.solver]
        advice = f"use a coarser grid{' or solver: ' + ' / '.join(other) if other else ''}"
        raise InputError(f"{est.cells:.4g} cells need {est.describe()}, more than the {_size(limit)} available; {advice}")


def check_steps(est: Estimate, max_steps: float = MAX_STEPS) -> None:
    """Raise :class:`InputError` when the evolve task takes more than ``max_steps`` steps."""
    if est.steps > max_steps:
        raise InputError(f"t_end/dt = {est.steps:.3g} time steps, more than the limit of {max_steps:.3g}; use a larger dt or a shorter t_end")


def check(est: Estimate, memory_limit: float | None = None, max_steps: float = MAX_STEPS) -> None:
    """Refuse an estimate beyond the memory limit or the step limit (:class:`InputError`)."""
    check_steps(est, max_steps)
    check_memory(est, memory_limit)


def _size(n_bytes: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{n_bytes:.0f} B"
