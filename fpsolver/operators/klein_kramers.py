r"""Conservative generator of the Klein–Kramers equation (the :class:`~fpsolver.models.Inertial` model).

Per direction :math:`k` (position :math:`\theta_k`, velocity :math:`r_k`),

.. math::

    \partial_t P = -\partial_{\theta_k}(r_k P) - \partial_{r_k}(-\tfrac{\partial_k L}{M_k} P)
                   + \partial_{r_k}\Big[\frac{D_k}{M_k^2}\Big(\partial_{r_k} P + \frac{M_k r_k}{T_k} P\Big)\Big].

**Reference weights.** With the reference temperature :math:`T` (the model's, or the median
local temperature when there is none) let :math:`a = e^{-L/T}` and
:math:`b_k = e^{-M_k r_k^2/2T}`, :math:`w = a\prod_k b_k` (the Maxwell–Boltzmann density) and
:math:`h = P/w`. Unknowns are point values at cell centres; a flux scheme for point values is
fourth-order consistent when its face flux approximates :math:`F - \Delta^2 F''/24` (the
"numerical flux" whose difference quotient is :math:`\partial F` to fourth order), and the
face weights used below are built that way: :math:`\tilde a = a\,e^{-\Delta^2(a''/a)/24}`, the
same for b.

**Ornstein–Uhlenbeck part** (friction and noise, along :math:`r_k` at fixed θ): a symmetric
four-point flux in :math:`h = P/b_{\rm local}` (see :func:`_add_ornstein_uhlenbeck`), fourth
order, dissipative in the Maxwellian-weighted norm, with the local Maxwellian exact. (The
two-point Scharfetter–Gummel flux, an M-matrix, is only second order: on P4 with 80 velocity
cells it was -2e-3 off in :math:`\lambda_1`, this flux +6e-4, and it converges 3-4x faster.)

**Hamiltonian transport** (free flight along :math:`\theta_k`, force along :math:`r_k`): the
flux through a face is :math:`u\,\tilde w_{\rm face}\,h_{\rm face}`, with the discrete velocity
and force

.. math::

    u_j = \frac{T}{M_k}\,\frac{\tilde b_{j-\frac12} - \tilde b_{j+\frac12}}{\Delta r\, b_j} \approx r_j,
    \qquad
    f_i = \frac{T}{M_k(\theta_i)}\,\frac{\tilde a_{i-\frac12} - \tilde a_{i+\frac12}}{\Delta\theta\, a_i} \approx \frac{\partial_k L}{M_k},

both fourth-order accurate (face weights of closed walls are 0). These definitions make the
discrete divergence of the transported :math:`w` vanish cell by cell, so :math:`w` is an
*exact* discrete stationary state (when an equilibrium exists: one temperature, constant
mass) for any face value :math:`h_{\rm face}` that is 1 on :math:`h \equiv 1`. The centred
:math:`h_{\rm face}` would make the transport skew-adjoint in the :math:`w`-weighted inner
product but leaves a checkerboard :math:`h = (-1)^i` in θ undamped (a spurious slow mode).
fpsolver uses the upwind-biased face value

.. math::

    h_{i+\frac12} = \tfrac16(-h_{i-1} + 5h_i + 2h_{i+1}) \quad (u > 0),
    \qquad \tfrac16(2h_i + 5h_{i+1} - h_{i+2}) \quad (u < 0),

which for point values equals :math:`h - \Delta^2 h''/24` at the face plus the dissipation
:math:`\Delta^3|u|\,\partial^3 h/12`: a fourth-order flux with third-order damping of the grid
scale. Its upstream difference is weighted by :math:`\sqrt{w_{\rm up}/w_{\rm face}}`, which
both supplies the :math:`-\Delta^2 (w'/w) h'/12` part of the numerical flux and makes the
damping provably dissipative (see :func:`_add_transport`). Where the stencil would leave the
domain at a reflecting wall the centred value is used. **The scheme is third order overall**
(measured on P4, gamma = T = 1: observed orders 2.67, 2.92, 2.99 from 40 to 320 cells in x).

**Boundaries.** Velocity axes are truncated in the Maxwellian tail with zero flux. In θ:
*reflecting* — zero normal flux (the wall is a closed face of weight 0, which also keeps
:math:`w` exact); *periodic* — seams as in :mod:`.edges` (the landscape must be periodic for
an equilibrium); *absorbing* — the flux through the wall is :math:`u\,w_{\rm face}h` with h of the wall cell
(first-order upwind) for outgoing u, and 0 for incoming u: nothing comes back in.

**Assembly.** Every coefficient is a product of factors that depend on a few axes only (u on
:math:`r_k`, the force and the a-ratios on the positions, the b-ratios on :math:`r_k`), so each
is evaluated on its own small broadcastable shape; per axis the face fluxes are collected as four
stencil arrays (the cells two below to one above a face) and turned into row stencils by
differencing neighbouring faces; one CSR matrix with int32 indices is built at the end. Measured
against the face-by-face COO assembly it replaced (fresh processes, shared machine; see
docs/phase-space.md): 24⁴ 6.6 s / 1.33 GiB peak before, 0.8 s / 0.31 GiB after; 32⁴ 19 s /
4 GiB before, 2.6 s / 0.63 GiB after; 40⁴ 8.2 s / 1.31 GiB.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sps

from ..boundary import Boundaries
from ..errors import InputError
from ..grid import Grid
from ..models import InertialCoefficients
from .registry import register_generator

__all__ = ["klein_kramers_generator", "assemble_klein_kramers", "reference_temperature", "CENTRED"]

#: Face value of h from (upwind, downwind) cells where the third-order stencil is not available.
CENTRED = (0.5, 0.5)

#: Stencil slots of a face j (between cells j-1 and j): the cells j-2, j-1, j, j+1.
SLOTS = 4

LogWeight = Callable[[float, bool], np.ndarray]


@register_generator(InertialCoefficients)
def klein_kramers_generator(coeffs: InertialCoefficients, grid: Grid, boundaries: Boundaries) -> sps.csr_matrix:
    """Assemble :math:`\\mathcal L` with ``dP/dt = L @ P`` on the phase-space grid (C order)."""
    return assemble_klein_kramers(coeffs, grid, boundaries)


def reference_temperature(coeffs: InertialCoefficients, grid: Grid) -> float:
    """The temperature of the reference weights: the equilibrium one, else the median local temperature."""
    temperature = coeffs.equilibrium_temperature
    if temperature is None:
        temperature = float(np.median(coeffs.temperature(_position_cells(grid, coeffs.ndim))))
    return temperature


def assemble_klein_kramers(
    coeffs: InertialCoefficients, grid: Grid, boundaries: Boundaries, temperature: float | None = None
) -> sps.csr_matrix:
    """The generator, with an optional reference ``temperature`` (default :func:`reference_temperature`).

    The reference temperature is a choice of the discretisation (the weights w); sub-problems
    of a separable phase space (:mod:`fpsolver.kronecker`) pass the full problem's so that the
    full generator is exactly the Kronecker sum of theirs.
    """
    _check(grid, boundaries, coeffs.ndim)
    weights = _ReferenceWeights(coeffs, grid, boundaries, temperature)
    stencils = _Stencils(grid, boundaries)
    n = coeffs.ndim
    for k in range(n):
        stencils.add_transport(k, weights.velocity(k), weights.log_weight_along(k))
        stencils.add_transport(n + k, -weights.force(k), weights.log_weight_along(n + k))
        stencils.add_ornstein_uhlenbeck(n + k, coeffs, k)
    return stencils.matrix()


def _check(grid: Grid, boundaries: Boundaries, n: int) -> None:
    for axis in grid:
        if not axis.is_uniform:
            raise InputError(f"phase-space axis {axis.name!r} must be uniform (the transport reconstruction assumes equal cells)")
    for k in range(n, 2 * n):
        if boundaries.sides[k] != ("reflecting", "reflecting"):
            raise InputError(
                f"velocity axis {grid[k].name!r} is truncated with zero flux; its boundary must be 'reflecting', "
                f"got {list(boundaries.sides[k])}"
            )


def _along(values: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """A 1-D array laid along ``axis`` of an ``ndim``-dimensional broadcast shape."""
    shape = [1] * ndim
    shape[axis] = -1
    return np.reshape(values, shape)


class _ReferenceWeights:
    r"""Logs of the reference weights :math:`a = e^{-L/T}`, :math:`b_k = e^{-M_k r_k^2/2T}` and the discrete u, f.

    Every array is returned on the smallest broadcastable shape (its own axes only).
    """

    def __init__(self, coeffs: InertialCoefficients, grid: Grid, boundaries: Boundaries, temperature: float | None):
        self.coeffs, self.grid, self.boundaries = coeffs, grid, boundaries
        n = coeffs.ndim
        mesh = grid.mesh()
        self.positions = {d: mesh[i] for i, d in enumerate(coeffs.positions)}
        self.temperature = reference_temperature(coeffs, grid) if temperature is None else temperature
        self.mass = coeffs.mass(self.positions)  # (n, position-broadcast shape)
        self.reference_mass = np.array([float(np.median(m)) for m in coeffs.mass(_position_cells(grid, n))])

    def log_a(self, points: dict[str, np.ndarray], axis: int | None = None) -> np.ndarray:
        r""":math:`\log a = -L/T` at the points; with ``axis``, the face weight :math:`\log\tilde a` for faces normal to it.

        :math:`\tilde a = a\,e^{-\Delta^2 (a''/a)/24}` (derivatives along the axis,
        :math:`a''/a = (\partial L/T)^2 - \partial^2 L/T`) is :math:`a - \Delta^2 a''/24` to fourth
        order: the numerical flux whose difference quotient is :math:`\partial a` to fourth order.
        """
        land = self.coeffs.model.landscape
        args = {v: points[v] for v in land.variables}
        value = -np.asarray(land.value(**args), dtype=float) / self.temperature
        if axis is None:
            return value
        k = land.variables.index(self.grid.names[axis])
        slope = land.gradient(**args)[k] / self.temperature
        curvature = land.hessian(**args)[k, k] / self.temperature
        return value - self.grid[axis].widths[0] ** 2 * (slope**2 - curvature) / 24.0

    def log_b(self, k: int, r: np.ndarray, face: bool = False) -> np.ndarray:
        r""":math:`\log b_k = -M_k r^2/2T` (reference mass); ``face``: the fourth-order face weight, as for a."""
        inverse_variance = self.reference_mass[k] / self.temperature
        value = -inverse_variance * np.asarray(r) ** 2 / 2.0
        if not face:
            return value
        width = self.grid[self.coeffs.ndim + k].widths[0]
        return value - width**2 * ((inverse_variance * r) ** 2 - inverse_variance) / 24.0

    def log_weight_along(self, axis: int) -> LogWeight:
        """A function ``(shift, face) -> log w`` at the faces of ``axis`` moved by ``shift`` cell widths along it.

        ``face`` selects the face weight (at whole shifts) rather than the cell value (half shifts).
        Only the factor of w that varies along the axis matters (the others cancel in every ratio);
        the result broadcasts against the grid with ``n + 1`` faces along ``axis``.
        """
        n = self.coeffs.ndim
        ax = self.grid[axis]
        faces = _along(ax.faces, axis, self.grid.ndim)

        def log_w(shift: float, face: bool) -> np.ndarray:
            moved = faces + shift * ax.widths[0]
            if axis >= n:
                return self.log_b(axis - n, moved, face)
            points = dict(self.positions)
            points[ax.name] = moved
            return self.log_a(points, axis if face else None)

        return log_w

    def _difference_quotient(self, axis: int, log_cells: np.ndarray, log_faces: np.ndarray) -> np.ndarray:
        r"""(w_{i-1/2} - w_{i+1/2}) / (Δ w_i) along ``axis`` with closed (reflecting) walls of weight 0."""
        ndim = self.grid.ndim
        ratio_lo = np.exp(log_faces[_slice(axis, 0, -1, ndim)] - log_cells)
        ratio_hi = np.exp(log_faces[_slice(axis, 1, None, ndim)] - log_cells)
        lower, upper = self.boundaries.sides[axis]
        ratio_lo = _close(ratio_lo, axis, 0, lower == "reflecting")
        ratio_hi = _close(ratio_hi, axis, -1, upper == "reflecting")
        return (ratio_lo - ratio_hi) / self.grid[axis].widths[0]

    def velocity(self, k: int) -> np.ndarray:
        r"""Discrete velocity :math:`u_j` along position k (laid along velocity axis ``n + k``)."""
        axis = self.coeffs.ndim + k
        log_w = self.log_weight_along(axis)
        quotient = self._difference_quotient(axis, log_w(0.5, False)[_slice(axis, 0, -1, self.grid.ndim)], log_w(0.0, True))
        return self.temperature / self.reference_mass[k] * quotient

    def force(self, k: int) -> np.ndarray:
        r"""Discrete force per mass :math:`f_i \approx \partial_k L/M_k` (position-broadcast shape)."""
        log_cells = self.log_a(self.positions)
        quotient = self._difference_quotient(k, log_cells, self.log_weight_along(k)(0.0, True))
        return self.temperature / self.mass[k] * quotient


def _position_cells(grid: Grid, n: int) -> dict[str, np.ndarray]:
    mesh = np.meshgrid(*(a.centers for a in grid[:n]), indexing="ij")
    return dict(zip(grid.names[:n], mesh))


def _slice(axis: int, start: int, stop: int | None, ndim: int) -> tuple[slice, ...]:
    index = [slice(None)] * ndim
    index[axis] = slice(start, stop)
    return tuple(index)


def _close(ratio: np.ndarray, axis: int, end: int, closed: bool) -> np.ndarray:
    """Zero the face weight of the first/last cell layer along ``axis`` when that wall is closed."""
    if not closed:
        return ratio
    ratio = ratio.copy()
    index = [slice(None)] * ratio.ndim
    index[axis] = end
    ratio[tuple(index)] = 0.0
    return ratio


class _Stencils:
    r"""Face fluxes per axis as :data:`SLOTS` stencil arrays, differenced into one CSR generator.

    For axis a, ``faces[a][q]`` (shape: the grid with ``n_a + 1`` faces along a) is the
    coefficient of :math:`P` in cell ``j - 2 + q`` in the flux through face j (between cells
    j - 1 and j). Cell i gains :math:`(J_i - J_{i+1})/\Delta_a`, so its row holds, at offset d
    along a, ``faces[q = d + 2] at face i`` minus ``faces[q = d + 1] at face i + 1``.
    """

    def __init__(self, grid: Grid, boundaries: Boundaries):
        self.grid, self.boundaries = grid, boundaries
        self.faces: dict[int, np.ndarray] = {}

    def _cells(self, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per face j (1-D, length n + 1): which of the cells j-2..j+1 exist, ``interior`` and ``absorbing`` masks."""
        n = self.grid[axis].n
        j = np.arange(n + 1)
        periodic = self.boundaries.periodic(axis)
        exists = np.stack([periodic | ((j - 2 + q >= 0) & (j - 2 + q < n)) for q in range(SLOTS)])
        interior = exists[1] & exists[2]
        lower, upper = self.boundaries.sides[axis]
        absorbing = ((j == 0) & (lower == "absorbing")) | ((j == n) & (upper == "absorbing"))
        return exists, interior, absorbing

    def _add(self, axis: int, slot: int, values: np.ndarray) -> None:
        shape = list(self.grid.shape)
        shape[axis] += 1
        if axis not in self.faces:
            self.faces[axis] = np.zeros((SLOTS, *shape))
        self.faces[axis][slot] += np.broadcast_to(values, shape)

    def add_transport(self, axis: int, speed: np.ndarray, log_w: LogWeight) -> None:
        r"""Flux :math:`u\,\tilde w_f h_f` through the faces normal to ``axis``; ``log_w(s, face)`` as in :class:`_ReferenceWeights`.

        Along the flow, with upwind cell U, downwind cell D and U2 upstream of U,
        :math:`h_f = \tfrac12(h_U + h_D) - \tfrac16(\delta_f - \rho\,\delta_{\rm up})`, where
        :math:`\delta_f = h_D - h_U`, :math:`\delta_{\rm up} = h_U - h_{U2}` and
        :math:`\rho = \sqrt{w_{\rm up}/w_f}` (face weights; u is the same on both faces). With
        :math:`\rho = 1` this is the upwind-biased face value :math:`(-h_{U2} + 5h_U + 2h_D)/6`; the factor makes
        the added term provably dissipative in the w-weighted norm (Cauchy–Schwarz along each line of
        constant u), which the plain stencil is not where w varies by a large factor per cell.
        Where U2 does not exist the centred value is used; at an absorbing wall the outgoing flux
        takes h of the wall cell and nothing comes in. ``speed`` does not vary along ``axis``.
        """
        ndim = self.grid.ndim
        exists, interior, absorbing = self._cells(axis)
        log_face = log_w(0.0, True)
        for direction in (1, -1):
            up, down, upstream = (1, 2, 0) if direction > 0 else (2, 1, 3)
            third = _along(interior & exists[upstream], axis, ndim)
            inner = _along(interior, axis, ndim)
            outflow = _along(absorbing & exists[up], axis, ndim)
            ratio_up = np.exp(log_face - log_w(-0.5 * direction, False))
            ratio_down = np.exp(log_face - log_w(0.5 * direction, False))
            rho = np.exp(0.5 * (log_w(-direction, True) - log_face))
            ratio_upstream = np.exp(log_face - log_w(-1.5 * direction, False))
            along_flow = speed > 0 if direction > 0 else speed <= 0
            moving = np.where(along_flow, speed, 0.0)
            self._add(axis, upstream, moving * np.where(third, -rho / 6.0 * ratio_upstream, 0.0))
            up_weight = np.where(third, (4.0 + rho) / 6.0, np.where(inner, CENTRED[0], np.where(outflow, 1.0, 0.0)))
            self._add(axis, up, moving * (up_weight * ratio_up))
            down_weight = np.where(third, 2.0 / 6.0, np.where(inner, CENTRED[1], 0.0))
            self._add(axis, down, moving * (down_weight * ratio_down))

    def add_ornstein_uhlenbeck(self, axis: int, coeffs: InertialCoefficients, k: int) -> None:
        r"""Friction and noise along velocity k, fourth order, symmetric and dissipative in the Maxwellian norm.

        With the local Maxwellian :math:`b = e^{-r^2/2s^2}`, :math:`s^2 = T_k(\theta)/M_k(\theta)`,
        :math:`h = P/b`, :math:`\kappa = D_k/M_k^2` and :math:`\delta_f = h_{f+} - h_{f-}` the flux is

        .. math::

            J_f = -\frac{\kappa}{\Delta}\Big[\tfrac76\beta_f\delta_f
                  - \tfrac1{12}\big(G_{f,f+1}\delta_{f+1} + G_{f,f-1}\delta_{f-1}\big)\Big],
            \qquad \beta_f = b_f e^{-\Delta^2\ell'^2/48},\quad G_{f,g} = \sqrt{\beta_f\beta_g},

        (:math:`\ell = \ln b`), which is :math:`J - \Delta^2 J''/24` to fourth order — the numerical
        flux of a fourth-order conservative scheme for :math:`J = -\kappa b\,\partial_r h`. The
        matrix :math:`K` of the quadratic form :math:`\sum_f J_f\delta_f = -\frac{\kappa}{\Delta}\delta^\top K\delta`
        is symmetric and diagonally dominant (G is capped at :math:`6\min(\beta_f, \beta_g)`, inactive
        on any grid with :math:`\Delta r < 0.8\,s`), so this part is dissipative; :math:`h \equiv 1`
        gives zero flux, so the local Maxwellian stays exact. Terms reaching past the truncation are dropped.
        """
        ndim = self.grid.ndim
        exists, interior, _ = self._cells(axis)
        positions = {d: c for d, c in zip(coeffs.positions, self.grid.mesh())}
        mass = coeffs.mass(positions)[k]
        inverse_variance = mass / coeffs.temperature(positions)[k]
        width = self.grid[axis].widths[0]
        r_face = _along(self.grid[axis].faces, axis, ndim)

        def log_b(r: np.ndarray) -> np.ndarray:
            return -0.5 * inverse_variance * r**2

        def log_beta(r: np.ndarray) -> np.ndarray:
            return log_b(r) - width**2 * (inverse_variance * r) ** 2 / 48.0

        conductance = coeffs.diffusion(positions)[k] / (mass**2 * width) * _along(interior, axis, ndim)
        log_face = log_beta(r_face)
        main = 7.0 / 6.0 * conductance
        self._add(axis, 1, main * np.exp(log_face - log_b(r_face - 0.5 * width)))
        self._add(axis, 2, -main * np.exp(log_face - log_b(r_face + 0.5 * width)))
        for step, far, near in ((1, 3, 2), (-1, 0, 1)):
            log_other = log_beta(r_face + step * width)
            log_g = np.minimum(0.5 * (log_face + log_other), np.log(6.0) + np.minimum(log_face, log_other))
            side = conductance / 12.0 * np.exp(log_g) * _along(exists[far], axis, ndim)
            # step +1: + G (h_far - h_near); step -1: + G (h_near - h_far).
            self._add(axis, far, step * side * np.exp(-log_b(r_face + 1.5 * step * width)))
            self._add(axis, near, -step * side * np.exp(-log_b(r_face + 0.5 * step * width)))

    def matrix(self) -> sps.csr_matrix:
        """The generator in CSR format (int32 indices when they fit)."""
        grid = self.grid
        size = grid.size
        index_type = np.int32 if size * (1 + 4 * grid.ndim) < np.iinfo(np.int32).max else np.int64
        flat = np.arange(size, dtype=index_type).reshape(grid.shape)
        diagonal = np.zeros(grid.shape)
        data, columns = [], []
        for axis, faces in sorted(self.faces.items()):
            ax = grid[axis]
            n, width = ax.n, ax.widths[0]
            if self.boundaries.periodic(axis):  # face 0 is the seam, face n
                faces[(slice(None), *_slice(axis, 0, 1, grid.ndim))] = faces[(slice(None), *_slice(axis, n, n + 1, grid.ndim))]
            lower = faces[(slice(None), *_slice(axis, 0, n, grid.ndim))]  # face i, cell i is above it
            upper = faces[(slice(None), *_slice(axis, 1, n + 1, grid.ndim))]  # face i + 1, cell i is below it
            diagonal += (lower[2] - upper[1]) / width
            position = _along(np.arange(n), axis, grid.ndim)
            stride = int(np.prod(grid.shape[axis + 1 :], dtype=np.int64))
            for offset, values in ((-2, lower[0]), (-1, lower[1] - upper[0]), (1, lower[3] - upper[2]), (2, -upper[3])):
                target = position + offset
                if self.boundaries.periodic(axis):
                    target = np.mod(target, n)
                inside = (target >= 0) & (target < n)
                data.append(np.where(inside, values / width, 0.0).ravel())
                columns.append(np.where(inside, flat + (target - position) * stride, flat).astype(index_type, copy=False).ravel())
            del self.faces[axis], faces, lower, upper
        data.append(diagonal.ravel())
        columns.append(flat.ravel())
        width = len(data)
        values = np.stack(data, axis=1).ravel()
        del data
        indices = np.stack(columns, axis=1).ravel()
        del columns
        indptr = np.arange(0, size * width + 1, width, dtype=index_type)
        mat = sps.csr_matrix((values, indices, indptr), shape=(size, size))
        mat.sum_duplicates()
        mat.eliminate_zeros()
        return mat
