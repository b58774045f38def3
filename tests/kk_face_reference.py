"""The Klein–Kramers generator assembled face by face (the COO assembly fpsolver used before the
lean structured one): an independent reference that the structured assembly must reproduce to
round-off (tests/test_phase_space_4d.py). Same scheme, see :mod:`fpsolver.operators.klein_kramers`;
only the bookkeeping differs (flat face lists with ghost nodes and one COO entry per stencil slot).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sps

from fpsolver.boundary import Boundaries
from fpsolver.grid import Grid
from fpsolver.models import InertialCoefficients
from fpsolver.operators.edges import GHOST, Edges, FluxAssembler, axis_edges
from fpsolver.operators.klein_kramers import CENTRED, _check, _close, _ReferenceWeights, _slice

__all__ = ["face_by_face_generator"]


def face_by_face_generator(coeffs: InertialCoefficients, grid: Grid, boundaries: Boundaries) -> sps.csr_matrix:
    """Assemble :math:`\\mathcal L` with ``dP/dt = L @ P`` on the phase-space grid (C order)."""
    _check(grid, boundaries, coeffs.ndim)
    weights = _FaceWeights(coeffs, grid, boundaries)
    assembler = FluxAssembler(grid)
    n = coeffs.ndim
    for k in range(n):
        theta_edges = axis_edges(grid, boundaries, k)
        r_edges = axis_edges(grid, boundaries, n + k)
        speed = _at_lower(weights.velocity(k), theta_edges)
        _add_transport(assembler, theta_edges, speed, weights.log_weight_at(theta_edges), grid, boundaries)
        force = _at_lower(weights.force(k), r_edges)
        _add_transport(assembler, r_edges, -force, weights.log_weight_at(r_edges), grid, boundaries)
        _add_ornstein_uhlenbeck(assembler, r_edges, coeffs, k, grid, boundaries)
    return assembler.matrix()


class _FaceWeights(_ReferenceWeights):
    r"""The scheme's reference weights (:math:`\log a`, :math:`\log b_k`, taken from the operator),
    evaluated the old way: at flat face lists and on full grid-shaped arrays."""

    def __init__(self, coeffs: InertialCoefficients, grid: Grid, boundaries: Boundaries):
        super().__init__(coeffs, grid, boundaries, None)
        centres = dict(zip(grid.names, grid.mesh()))
        positions = {d: centres[d] for d in coeffs.positions}
        self.log_a_cells = -np.broadcast_to(coeffs.model.landscape.value(**positions), grid.shape) / self.temperature

    def log_weight_at(self, edges: Edges) -> Callable[[np.ndarray, bool], np.ndarray]:
        """A function ``(shift, face) -> log w`` at the face points moved by ``shift`` cell widths along the axis.

        ``face`` selects the face weight (at whole shifts) rather than the cell value (half shifts).

        Only the factor of w that varies along the axis matters (the others cancel in every ratio).
        """
        axis = edges.axis
        n = self.coeffs.ndim
        name = self.grid.names[axis]
        width = self.grid[axis].widths[0]
        coordinate = edges.face_points[name]

        def log_w(shift: np.ndarray, face: bool) -> np.ndarray:
            moved = coordinate + shift * width
            if axis >= n:
                return self.log_b(axis - n, moved, face)
            points = dict(edges.face_points)
            points[name] = moved
            return self.log_a(points, axis if face else None)

        return log_w

    def _quotient(self, axis: int, log_cells: np.ndarray, log_face) -> np.ndarray:
        r"""(w_{i-1/2} - w_{i+1/2}) / (Δ w_i) along ``axis`` with closed (reflecting) walls of weight 0."""
        ax = self.grid[axis]
        shape = [1] * self.grid.ndim
        shape[axis] = ax.n + 1
        faces = ax.faces
        log_faces = log_face(faces.reshape(shape))
        ratio_lo = np.exp(log_faces[_slice(axis, 0, -1, self.grid.ndim)] - log_cells)
        ratio_hi = np.exp(log_faces[_slice(axis, 1, None, self.grid.ndim)] - log_cells)
        lower, upper = self.boundaries.sides[axis]
        ratio_lo = _close(ratio_lo, axis, 0, lower == "reflecting")
        ratio_hi = _close(ratio_hi, axis, -1, upper == "reflecting")
        return (ratio_lo - ratio_hi) / ax.widths[0]

    def velocity(self, k: int) -> np.ndarray:
        r"""Discrete velocity :math:`u_j` along position k (shape broadcastable to the grid)."""
        axis = self.coeffs.ndim + k
        r = self.grid.mesh()[axis]
        quotient = self._quotient(axis, self.log_b(k, r), lambda faces: self.log_b(k, faces, face=True))
        return np.broadcast_to(self.temperature / self.reference_mass[k] * quotient, self.grid.shape)

    def force(self, k: int) -> np.ndarray:
        r"""Discrete force per mass :math:`f_i \approx \partial_k L/M_k` (grid shape)."""
        centres = dict(zip(self.grid.names, self.grid.mesh()))
        log_cells = self.log_a_cells

        def log_face(faces: np.ndarray) -> np.ndarray:
            points = dict(centres)
            points[self.grid.names[k]] = faces
            return self.log_a(points, k)

        quotient = self._quotient(k, log_cells, log_face)
        return np.broadcast_to(self.temperature / self.mass[k] * quotient, self.grid.shape)


def _at_lower(values: np.ndarray, edges: Edges) -> np.ndarray:
    """A cell field at the cell below each face (the adjacent cell for an absorbing ghost)."""
    return values[tuple(edges.lower_multi)]


def _stencil_cell(grid: Grid, boundaries: Boundaries, multi: np.ndarray, axis: int, step: int) -> np.ndarray:
    """Flat index of the cell ``step`` cells from ``multi`` along ``axis`` (wrapped if periodic, else GHOST outside)."""
    k = multi[axis] + step
    n = grid[axis].n
    if boundaries.periodic(axis):
        k = np.mod(k, n)
    outside = (k < 0) | (k >= n)
    moved = multi.copy()
    moved[axis] = np.clip(k, 0, n - 1)
    flat = np.ravel_multi_index(tuple(moved), grid.shape)
    return np.where(outside, GHOST, flat)


def _add_transport(
    assembler: FluxAssembler,
    edges: Edges,
    speed: np.ndarray,
    log_w: Callable[[np.ndarray, bool], np.ndarray],
    grid: Grid,
    boundaries: Boundaries,
) -> None:
    """Transport through the faces of ``edges``, face by face; ``log_w(s)`` is log w at the face moved
    by s cells. The flux of ``_Stencils.add_transport`` in fpsolver.operators.klein_kramers (its docstring has the scheme)."""
    if not len(edges):
        return
    axis = edges.axis
    forward = speed > 0
    direction = np.where(forward, 1.0, -1.0)
    interior = edges.interior
    up = np.where(forward, edges.lower, edges.upper)
    down = np.where(forward, edges.upper, edges.lower)
    up_multi = np.where(forward, edges.lower_multi, edges.upper_multi)
    upstream = _stencil_cell(grid, boundaries, up_multi, axis, np.where(forward, -1, 1))
    log_face = log_w(np.zeros(len(edges)), True)
    ratio_up = np.exp(log_face - log_w(-0.5 * direction, False))
    ratio_down = np.exp(log_face - log_w(0.5 * direction, False))
    third_order = interior & (upstream != GHOST)
    rho = np.where(third_order, np.exp(0.5 * (log_w(-direction, True) - log_face)), 0.0)
    ratio_upstream = np.where(third_order, np.exp(log_face - log_w(-1.5 * direction, False)), 0.0)
    for cells, weight, mask in (
        (upstream, -rho / 6.0 * ratio_upstream, third_order),
        (up, np.where(third_order, (4.0 + rho) / 6.0, CENTRED[0]) * ratio_up, interior),
        (down, np.where(third_order, 2.0 / 6.0, CENTRED[1]) * ratio_down, interior),
        (up, ratio_up, ~interior),  # absorbing wall: outflow from the wall cell, nothing comes in
    ):
        assembler.add(edges, cells, speed * weight, mask=mask)


def _add_ornstein_uhlenbeck(
    assembler: FluxAssembler, edges: Edges, coeffs: InertialCoefficients, k: int, grid: Grid, boundaries: Boundaries
) -> None:
    """Friction and noise along velocity k, face by face: the flux of
    ``_Stencils.add_ornstein_uhlenbeck`` in fpsolver.operators.klein_kramers (its docstring has the scheme)."""
    if not len(edges):
        return
    axis = edges.axis
    name = coeffs.velocities[k]
    faces = edges.face_points
    mass = coeffs.mass(faces)[k]
    inverse_variance = mass / coeffs.temperature(faces)[k]
    width = grid[axis].widths[0]
    r_face = faces[name]

    def log_b(r: np.ndarray) -> np.ndarray:
        return -0.5 * inverse_variance * r**2

    def log_beta(r: np.ndarray) -> np.ndarray:
        return log_b(r) - width**2 * (inverse_variance * r) ** 2 / 48.0

    conductance = coeffs.diffusion(faces)[k] / (mass**2 * width)
    log_face = log_beta(r_face)
    main = 7.0 / 6.0 * conductance
    assembler.add(edges, edges.lower, main * np.exp(log_face - log_b(r_face - 0.5 * width)))
    assembler.add(edges, edges.upper, -main * np.exp(log_face - log_b(r_face + 0.5 * width)))
    for step in (1, -1):
        beside = edges.upper_multi if step > 0 else edges.lower_multi
        near = edges.upper if step > 0 else edges.lower
        far = _stencil_cell(grid, boundaries, beside, axis, step)
        log_other = log_beta(r_face + step * width)
        log_g = np.minimum(0.5 * (log_face + log_other), np.log(6.0) + np.minimum(log_face, log_other))
        side = conductance / 12.0 * np.exp(log_g)
        exists = far != GHOST
        # step +1: + G (h_far - h_near); step -1: + G (h_near - h_far).
        assembler.add(edges, far, step * side * np.exp(-log_b(r_face + 1.5 * step * width)), mask=exists)
        assembler.add(edges, near, -step * side * np.exp(-log_b(r_face + 0.5 * step * width)), mask=exists)
