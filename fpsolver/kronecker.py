r"""Slowest modes of a 4-D phase space (x, y, r_x, r_y) by Davidson iteration with a Kronecker-sum preconditioner.

**Separable structure.** For a landscape :math:`L = L_1(x) + L_2(y)` with constant mass, damping
and diffusion per direction, every piece of the Klein–Kramers scheme acts on one direction, so
with the axes reordered to :math:`(x, r_x, y, r_y)` the generator is exactly the Kronecker sum

.. math::

    \mathcal L = A_1 \otimes I + I \otimes A_2 ,

:math:`A_d` the 2-D :math:`(\theta_d, r_d)` generator (same reference temperature). Writing a
4-D vector as the matrix :math:`X` (rows :math:`(x, r_x)`, columns :math:`(y, r_y)`),
:math:`(\mathcal L - \sigma)X = A_1X + XA_2^\top - \sigma X`. With the eigen-decompositions
:math:`A_d = S_d\Lambda_dS_d^{-1}` the solve is

.. math::

    X = S_1\Big[\big(S_1^{-1}BS_2^{-\top}\big) \oslash (\lambda_i + \mu_j - \sigma)\Big]S_2^\top,

four dense products of :math:`n_1 \times n_2` matrices (1600 × 1600 at 40⁴). :math:`A_d` is
decomposed once, densely, *after* the similarity :math:`D_d^{-1}A_dD_d` with
:math:`D_d = \sqrt{w_d}` (w the Maxwell–Boltzmann reference weight): the raw eigenvector matrix
of a 12 × 12 block had condition number 5e7, the weighted one 170. Complex pairs are kept in a
real basis :math:`(\mathrm{Re}\,v, \mathrm{Im}\,v)`, so the four products are real; the pair
mixing is an O(n_1 n_2) step.

**Coupled landscapes.** The separable part is the landscape restricted to the two lines through
its lowest position cell, :math:`L_1(x) = L(x, y^*)`, :math:`L_2(y) = L(x^*, y)`; the
Kronecker solve with it preconditions a Davidson iteration for the modes of the true 4-D
generator. Each step applies the true generator once and the preconditioner once to the
residual of the wanted Ritz pair; the Rayleigh–Ritz projection (in the coordinates
:math:`\hat P = P/\sqrt w` of the 4-D weight, where the modes are O(1)) corrects for the
preconditioner's error. With an equilibrium and no leak, :math:`\sqrt w` is the right *and*
left null vector of the scaled generator, so it is deflated exactly and the search stays in its
orthogonal complement (steps at c = 0.3 on 8·6·7·6: 218 without, 92 with). Measured on 12⁴ with
:math:`L = x^4/4 - x^2/2 + y^2 + c\,xy`, T = 0.1, two modes: shift-invert Arnoldi with GMRES
inner solves needed 141 preconditioner applications at c = 0 and 1338 at c = 0.1; Davidson
(without the deflation) 0, 24 and 76 at c = 0, 0.1, 0.3. At c ≥ 0.6 the line restriction is too
far from the true landscape and the iteration stalls (docs/phase-space.md).

**Convergence.** A Ritz pair :math:`(\theta, \hat u)`, :math:`\|\hat u\| = 1`, is accepted when
:math:`\|\hat{\mathcal L}\hat u - \theta\hat u\| \le` :data:`RESIDUAL_TOLERANCE` ·
:math:`\max|\mathcal L_{ii}|`; no convergence within :data:`MAX_STEPS` steps raises
:class:`~fpsolver.errors.SolverError` (never an unconverged number).

Linear solves other than the spectrum (time steps, the stationary solve) have no Kronecker
structure to use here: the ``kronecker`` linear solver is the ``amg`` one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sps
import sympy as sp

from .boundary import Boundaries
from .errors import InputError, SolverError
from .grid import Grid
from .landscapes import Landscape
from .linalg import SOLVERS, register_solver
from .models import Inertial, InertialCoefficients
from .operators.klein_kramers import assemble_klein_kramers, reference_temperature
from .spectral import register_eigensolver

__all__ = ["KroneckerInverse", "KroneckerModes", "separable_blocks", "kronecker_modes", "kronecker_modes_with_info", "davidson", "RESIDUAL_TOLERANCE", "MAX_STEPS"]

logger = logging.getLogger(__name__)

#: Residual of an accepted Ritz pair, relative to max|L_ii| (8·6·7·6 and 10⁴, c = 0.3: λ₁ within 1.2e-11 and
#: 4.8e-12 of SuperLU shift-invert; 1e-12 left 1.8e-9).
RESIDUAL_TOLERANCE = 1e-13

#: Davidson steps (preconditioner applications) allowed before giving up.
MAX_STEPS = 400

#: Largest search space; a restart keeps the Ritz vectors of the wanted modes and a few more.
MAX_BASIS = 36

#: Preconditioner shift, relative to the smallest non-zero rate of the separable part.
RELATIVE_SHIFT = 0.05


@dataclass(frozen=True)
class Block:
    """The 2-D (θ_d, r_d) generator of one direction and the log of its reference weight at the cells."""

    operator: sps.csr_matrix
    log_weight: np.ndarray
    shape: tuple[int, int]


def separable_blocks(coeffs: InertialCoefficients, grid: Grid, boundaries: Boundaries) -> tuple[list[Block], bool]:
    """The two 2-D generators of the separable part of a 4-D phase-space problem, and whether it is exact.

    The landscape is restricted to the lines through its lowest position cell (exact when it is
    a sum of functions of x and of y). Mass, damping and diffusion must be constant.
    """
    if coeffs.ndim != 2:
        raise InputError(f"the kronecker solver is for two positions and two velocities (4-D phase space); this problem has {coeffs.ndim} positions")
    centre = {d: np.zeros(1) for d in coeffs.positions}
    for field in (coeffs.mass_field, coeffs.damping_field, coeffs.diffusion_field):
        if field is not None and not field.constant:
            raise InputError(f"the kronecker solver needs a constant {field.what} (a θ-dependent one couples the directions); use solver='superlu' on small grids")
    land = coeffs.model.landscape
    cells = np.meshgrid(*(grid[k].centers for k in range(2)), indexing="ij")
    values = land.value(**dict(zip(coeffs.positions, cells)))
    lowest = np.unravel_index(int(np.argmin(values)), values.shape)
    anchor = {name: float(grid[k].centers[lowest[k]]) for k, name in enumerate(coeffs.positions)}
    temperature = reference_temperature(coeffs, grid)
    mass, damping, diffusion = coeffs.mass(centre), coeffs.damping(centre), coeffs.diffusion(centre)
    symbols = {name: sp.Symbol(name, real=True) for name in coeffs.positions}
    blocks, parts = [], []
    for k, name in enumerate(coeffs.positions):
        other = coeffs.positions[1 - k]
        expr = land.expr.xreplace({symbols[other]: sp.Float(anchor[other])})
        parts.append(expr)
        model = Inertial(Landscape(expr, [name]), mass=float(mass[k, 0]), damping=float(damping[k, 0]), diffusion=float(diffusion[k, 0]))
        sub_grid = Grid([grid[k], grid[2 + k]])
        sub = model.on(sub_grid)
        sub_boundaries = Boundaries((boundaries.sides[k], boundaries.sides[2 + k]))
        operator = assemble_klein_kramers(sub, sub.grid, sub_boundaries, temperature)
        log_weight = sub.log_density_reference(dict(zip(sub.grid.names, sub.grid.mesh()))).ravel()
        blocks.append(Block(operator, log_weight, sub.grid.shape))
    remainder = sp.simplify(land.expr - parts[0] - parts[1])
    return blocks, not remainder.free_symbols


class KroneckerInverse:
    r""":math:`(A_1 \otimes I + I \otimes A_2 - \sigma)^{-1}` on 4-D vectors in (x, y, r_x, r_y) order (module docstring)."""

    def __init__(self, blocks: list[Block]):
        (n_x, n_u), (n_y, n_v) = blocks[0].shape, blocks[1].shape
        self.shape4 = (n_x, n_y, n_u, n_v)
        self.size = n_x * n_y * n_u * n_v
        parts = [_real_eigenbasis(block) for block in blocks]
        (self.lam1, self.basis1, self.inverse1, self.pairs1), (self.lam2, self.basis2, self.inverse2, self.pairs2) = parts
        self.sigma = 0.0

    @property
    def eigenvalues(self) -> np.ndarray:
        r"""The eigenvalues :math:`\lambda_i + \mu_j` of the Kronecker sum, shape (n_1, n_2)."""
        return self.lam1[:, None] + self.lam2[None, :]

    def _to_matrix(self, v: np.ndarray) -> np.ndarray:
        n_x, n_y, n_u, n_v = self.shape4
        return v.reshape(n_x, n_y, n_u, n_v).transpose(0, 2, 1, 3).reshape(n_x * n_u, n_y * n_v)

    def _to_vector(self, m: np.ndarray) -> np.ndarray:
        n_x, n_y, n_u, n_v = self.shape4
        return m.reshape(n_x, n_u, n_y, n_v).transpose(0, 2, 1, 3).ravel()

    def solve(self, b: np.ndarray) -> np.ndarray:
        r"""x with :math:`(A_1 \oplus A_2 - \sigma)x = b` (``sigma`` the attribute)."""
        coefficients = self.inverse1 @ self._to_matrix(b) @ self.inverse2.T
        modal = _from_real_pairs(_from_real_pairs(coefficients, self.pairs1, 0), self.pairs2, 1)
        modal /= self.eigenvalues - self.sigma
        real = _to_real_pairs(_to_real_pairs(modal, self.pairs1, 0), self.pairs2, 1).real
        return self._to_vector(self.basis1 @ real @ self.basis2.T)

    def modes(self, count: int) -> np.ndarray:
        """The ``count`` separable modes of largest Re λ as real 4-D vectors (columns; real and imaginary parts of pairs)."""
        order = np.argsort(-self.eigenvalues.real, axis=None)[:count]
        columns = []
        for flat in order:
            i, j = np.unravel_index(flat, self.eigenvalues.shape)
            columns.append(self._to_vector(np.outer(self.basis1[:, i], self.basis2[:, j])))
        return np.column_stack(columns)


def _real_eigenbasis(block: Block) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues, real basis S (Re v, Im v for pairs), S⁻¹, and the first index of each conjugate pair.

    Decomposed in the √w-weighted coordinates; the weights are folded back into S and S⁻¹.
    """
    scale = np.exp(0.5 * (block.log_weight - block.log_weight.max()))
    weighted = (block.operator.multiply(scale[None, :]).multiply(1.0 / scale[:, None])).toarray()
    values, vectors = sla.eig(weighted, check_finite=False)
    complex_ = np.abs(values.imag) > 0
    pairs = []
    basis = vectors.real.copy()
    j = 0
    while j < values.size:
        if complex_[j]:
            if not (j + 1 < values.size and np.isclose(values[j + 1], np.conj(values[j]), rtol=1e-12, atol=0.0)):
                raise SolverError("the eigen-decomposition of a 2-D block returned an unpaired complex eigenvalue")
            basis[:, j + 1] = vectors[:, j].imag
            pairs.append(j)
            j += 2
        else:
            j += 1
    inverse = np.linalg.inv(basis)
    return values, scale[:, None] * basis, inverse / scale[None, :], np.array(pairs, dtype=int)


def _from_real_pairs(matrix: np.ndarray, pairs: np.ndarray, axis: int) -> np.ndarray:
    r"""Coefficients in the real basis (Re v, Im v) -> in the complex eigenvectors (v, v̄), along ``axis``."""
    out = np.moveaxis(matrix.astype(complex), axis, 0)
    first, second = out[pairs].copy(), out[pairs + 1].copy()
    out[pairs] = 0.5 * (first - 1j * second)
    out[pairs + 1] = 0.5 * (first + 1j * second)
    return np.moveaxis(out, 0, axis)


def _to_real_pairs(matrix: np.ndarray, pairs: np.ndarray, axis: int) -> np.ndarray:
    r"""Coefficients on (v, v̄) -> on (Re v, Im v), along ``axis`` (the inverse of :func:`_from_real_pairs`)."""
    out = np.moveaxis(matrix, axis, 0)
    first, second = out[pairs].copy(), out[pairs + 1].copy()
    out[pairs] = first + second
    out[pairs + 1] = 1j * (first - second)
    return np.moveaxis(out, 0, axis)


class _Subspace:
    """Search space V (orthonormal columns), its image AV and H = VᵀAV, in preallocated column-major arrays.

    Appending a column touches only that column (a 40⁴ basis of 36 vectors is 0.7 GiB: copying it
    per step, or multiplying it by complex coefficients, which makes a complex copy, would dominate).
    """

    def __init__(self, size: int, apply: Callable[[np.ndarray], np.ndarray], deflated: np.ndarray):
        self.basis = np.empty((size, MAX_BASIS), order="F")
        self.image = np.empty((size, MAX_BASIS), order="F")
        self.projection = np.empty((MAX_BASIS, MAX_BASIS))
        self.count = 0
        self.apply, self.deflated = apply, deflated

    @property
    def full(self) -> bool:
        return self.count + 2 > MAX_BASIS

    def add(self, t: np.ndarray) -> None:
        """Orthonormalise ``t`` against the deflated space and V (twice is enough, Kahan) and append it."""
        basis = self.basis[:, : self.count]
        for _ in range(2):
            t = t - self.deflated @ (self.deflated.T @ t)
            t = t - basis @ (basis.T @ t)
        norm = np.linalg.norm(t)
        if norm == 0 or not np.isfinite(norm):
            return
        m = self.count
        self.basis[:, m] = t / norm
        self.image[:, m] = self.apply(self.basis[:, m])
        self.count = m + 1
        self.projection[: m + 1, m] = self.basis[:, : m + 1].T @ self.image[:, m]
        self.projection[m, :m] = self.basis[:, m] @ self.image[:, :m]

    def combine(self, which: str, coords: np.ndarray) -> np.ndarray:
        """V @ coords or AV @ coords for complex ``coords`` without a complex copy of V."""
        matrix = (self.basis if which == "basis" else self.image)[:, : self.count]
        return matrix @ coords.real + 1j * (matrix @ coords.imag)

    def ritz(self, target: float) -> tuple[np.ndarray, np.ndarray]:
        """Ritz values and coordinates, nearest ``target`` first."""
        values, coords = np.linalg.eig(self.projection[: self.count, : self.count])
        order = np.argsort(np.abs(values - target))
        return values[order], coords[:, order]

    def restart(self, coords: np.ndarray) -> None:
        """Keep span(V @ coords) (real and imaginary parts)."""
        q, r = np.linalg.qr(np.column_stack([coords.real, coords.imag]))
        q = q[:, np.abs(np.diag(r)) > 1e-12 * np.abs(r).max()]
        m = q.shape[1]
        self.projection[:m, :m] = q.T @ self.projection[: self.count, : self.count] @ q
        self.basis[:, :m] = self.basis[:, : self.count] @ q
        self.image[:, :m] = self.image[:, : self.count] @ q
        self.count = m


def davidson(
    apply: Callable[[np.ndarray], np.ndarray],
    precondition: Callable[[np.ndarray], np.ndarray],
    start: np.ndarray,
    k: int,
    target: float,
    tolerance: float,
    max_steps: int = MAX_STEPS,
    deflated: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The ``k`` eigenpairs nearest ``target`` of the operator ``apply``, by preconditioned Davidson iteration.

    Each step expands the search space by the preconditioned residual of the first unconverged
    wanted Ritz pair (its real and imaginary parts for a complex one).
    ``deflated``: orthonormal columns spanning an invariant subspace whose orthogonal complement is
    invariant too (e.g. a null vector that is also the left null vector); the search stays in that complement.
    Returns eigenvalues, unit eigenvectors (columns, complex) and the number of preconditioner applications.
    Raises :class:`~fpsolver.errors.SolverError` when the residuals do not reach ``tolerance`` in ``max_steps``.
    """
    space = _Subspace(start.shape[0], apply, np.zeros((start.shape[0], 0)) if deflated is None else deflated)
    for column in start.T:
        space.add(column)
    steps = 0
    while True:
        values, coords = space.ritz(target)
        if space.full:
            space.restart(coords[:, : k + 4])
            values, coords = space.ritz(target)
        pending = None
        for index in range(k):
            vector = space.combine("basis", coords[:, index])
            residual = space.combine("image", coords[:, index]) - values[index] * vector
            if np.linalg.norm(residual) > tolerance * np.linalg.norm(vector):
                pending = residual
                break
        if pending is None:
            vectors = space.combine("basis", coords[:, :k])
            return values[:k], vectors / np.linalg.norm(vectors, axis=0), steps
        if steps >= max_steps:
            raise SolverError(f"the Davidson eigen-solver did not converge in {max_steps} steps (residual {np.linalg.norm(pending):.2g} > {tolerance:.2g})")
        for part in [pending.real] + ([pending.imag] if np.any(pending.imag) else []):
            space.add(precondition(part))
            steps += 1


@dataclass(frozen=True)
class KroneckerModes:
    """Result of :func:`kronecker_modes_with_info`: eigenvalues, right eigenvectors (columns), preconditioner
    applications, and whether the separable part was the exact generator."""

    values: np.ndarray
    vectors: np.ndarray
    steps: int
    exact: bool


def kronecker_modes_with_info(operator: sps.spmatrix, k: int, shift: float | None, discretisation: tuple) -> KroneckerModes:
    """The ``k`` eigenpairs of ``operator`` nearest 0, for a 4-D phase-space ``discretisation = (coeffs, grid, boundaries)``.

    ``shift``: the σ of the preconditioner :math:`(A_1 \\oplus A_2 - \\sigma)^{-1}`; default
    :data:`RELATIVE_SHIFT` times the smallest non-zero rate of the separable part.
    """
    if discretisation is None or not isinstance(discretisation[0], InertialCoefficients):
        raise InputError("the kronecker eigen-solver needs a phase-space problem (an Inertial model on a 4-D grid)")
    coeffs, grid, boundaries = discretisation
    blocks, exact = separable_blocks(coeffs, grid, boundaries)
    inverse = KroneckerInverse(blocks)
    rates = np.sort(-inverse.eigenvalues.real, axis=None)
    slowest = rates[rates > 1e-9 * max(1.0, rates.max())]
    inverse.sigma = RELATIVE_SHIFT * float(slowest[0]) if shift is None else float(shift)
    if not inverse.sigma > 0:
        raise InputError(f"the shift must be positive, got {inverse.sigma!r}")
    log_weight = coeffs.log_density_reference(dict(zip(grid.names, grid.mesh()))).ravel()
    scale = np.exp(0.5 * (log_weight - log_weight.max()))
    matrix = sps.csr_matrix(operator)

    def apply(v: np.ndarray) -> np.ndarray:
        return (matrix @ (scale * v)) / scale

    def precondition(v: np.ndarray) -> np.ndarray:
        return inverse.solve(scale * v) / scale

    norm = float(np.abs(matrix.diagonal()).max())
    # With an equilibrium and no leak, sqrt(w) is the null vector of the scaled generator (w is an exact
    # discrete stationary state) and also its left null vector (column sums vanish; uniform cells).
    null = scale / np.linalg.norm(scale) if coeffs.equilibrium_temperature is not None and boundaries.conserves_mass else None
    wanted = k - 1 if null is not None else k
    values, vectors, steps = np.zeros(0, complex), np.zeros((grid.size, 0), complex), 0
    if wanted:
        start = inverse.modes(wanted + 2) / scale[:, None]
        deflated = None if null is None else null[:, None]
        values, vectors, steps = davidson(apply, precondition, start, wanted, 0.0, RESIDUAL_TOLERANCE * norm, deflated=deflated)
    if null is not None:
        values, vectors = np.concatenate([[0.0], values]), np.column_stack([null, vectors])
    logger.info("kronecker eigen-solver: %d preconditioner applications (separable part %s)", steps, "exact" if exact else "approximate")
    return KroneckerModes(values, scale[:, None] * vectors, steps, exact)


@register_eigensolver("kronecker")
def kronecker_modes(operator: sps.spmatrix, k: int, shift: float | None, discretisation: tuple) -> tuple[np.ndarray, np.ndarray]:
    """:func:`kronecker_modes_with_info` as an eigen-solver of :mod:`fpsolver.spectral`: (eigenvalues, vectors)."""
    modes = kronecker_modes_with_info(operator, k, shift, discretisation)
    return modes.values, modes.vectors


# Linear solves (time steps, stationary state) have no Kronecker structure to use: they are amg's.
register_solver("kronecker")(SOLVERS["amg"])
