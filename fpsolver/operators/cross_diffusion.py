r"""Off-diagonal diffusion with a reference potential: a symmetric corner stencil, stable on any grid.

With :math:`D = T A` and :math:`\pi = e^{-\phi}`, :math:`\phi = L/T`, the current is
:math:`J = -\pi D\nabla u` with the Slotboom variable :math:`u = P/\pi`, and the generator is
self-adjoint in :math:`L^2(1/\pi)` with the Dirichlet form
:math:`\mathcal E(u) = \int \pi\,\nabla u\cdot D\nabla u`. The diagonal part
(Scharfetter–Gummel, :mod:`fpsolver.operators.overdamped`) is a sum of face terms
:math:`G_f\,(\Delta_f u)^2` with conductances :math:`G_f = \kappa_f D_{aa}/h_a`,
:math:`\kappa_f = B(\Delta\phi)\,\pi_- = \pi_-\pi_+/\operatorname{logmean}(\pi_-, \pi_+)`.

The cross part :math:`2\int\pi D_{aj}\,\partial_a u\,\partial_j u` is discretised at the
*corners* of the (a, j) plane — the points shared by four cells — with the corner gradients
:math:`g_a = \tfrac12(\alpha_1 + \alpha_2)/h_a` (the mean of the differences across the two
a-faces that meet there; likewise :math:`g_j`) and one weight
:math:`W_c = D_{aj}(c)\,\pi_c` shared by both directions. Differentiating the discrete form
gives the face fluxes

.. math::

    J_f = -\tfrac12\sum_{c \ni f} W_c\, g_j(c) \quad (f \perp a),

so the cross part is symmetric in :math:`u` — the whole generator is similar to a symmetric
matrix — and it vanishes on :math:`u \equiv 1`: the Gibbs state :math:`e^{-\phi}` stays an exact
discrete steady state and probability is conserved to round-off.

**Stability on any grid (2-D proof).** Giving half of each face term to each of the two
corners it touches, a corner's share of the diagonal form is at least
:math:`V_c(k_a g_a^2 + k_j g_j^2)` with :math:`k_a = \min_f \kappa_f D_{aa}(f)` over its
a-faces (Cauchy–Schwarz: :math:`\alpha_1^2 + \alpha_2^2 \ge (\alpha_1 + \alpha_2)^2/2`). The
corner form is therefore non-negative whenever :math:`|W_c| \le \sqrt{k_a k_j}`, and the
weight is limited to that bound: all eigenvalues are real and non-positive. Where the grid
resolves :math:`e^{-\phi}`, :math:`\pi_c` (the geometric mean of the four face weights) is a
second-order value of :math:`\pi` at the corner and the bound is inactive, since
:math:`D_{aj}^2 < D_{aa}D_{jj}`; the bound binds only where :math:`\phi` changes by several
units per cell, and the operator then warns that the cross diffusion there is limited. In three
or more dimensions the faces are shared among several planes and the same bound is used (the
proof gives a factor :math:`1/(n-1)`); it is checked numerically in the tests.

Corners exist where all four cells do (periodic seams included). A face next to a
non-periodic boundary has one corner instead of two: its cross flux is halved there — a
first-order flux error confined to the outermost row of cells, irrelevant to steady states
(exact) and to densities that vanish at the boundary. Absorbing faces carry no cross flux.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boundary import Boundaries
from ..grid import Grid
from ..models import OverdampedCoefficients
from .edges import FluxAssembler
from .scharfetter_gummel import bernoulli

__all__ = ["add_corner_cross_flux"]


@dataclass(frozen=True)
class _Corners:
    """The corners of the (a, j) plane: the four cells around each, and the geometry."""

    cells: dict[tuple[int, int], np.ndarray]  # (da, dj) in {0, 1}^2 -> flat cell index
    points: dict[tuple[int, int], dict[str, np.ndarray]]  # cell centres (unwrapped across seams)
    corner: dict[str, np.ndarray]  # the corner points
    h_a: np.ndarray  # centre distances along a and along j
    h_j: np.ndarray


def add_corner_cross_flux(assembler: FluxAssembler, coeffs: OverdampedCoefficients, grid: Grid, boundaries: Boundaries) -> float:
    """Add the symmetric cross-diffusion fluxes of every plane (a, j), a < j.

    Returns the share of the Gibbs weight :math:`\\sum_c \\pi_c h_a h_j` carried by the corners
    where the stability bound limited the weight (0 on a grid that resolves :math:`e^{-\\phi}`;
    far up the walls of a well it binds at corners of negligible weight).
    """
    limited, total = [], []
    for a in range(grid.ndim):
        for j in range(a + 1, grid.ndim):
            corners = _corners(grid, boundaries, a, j)
            if corners is None:
                continue
            shape = corners.h_a.shape
            d_aj = np.broadcast_to(coeffs.diffusion(corners.corner)[a, j], shape)
            active = d_aj != 0
            if not active.any():
                continue
            phi = {key: np.broadcast_to(coeffs.potential(p), shape) for key, p in corners.points.items()}
            faces_a = [_log_face_weight(coeffs, corners, phi, (0, dj), (1, dj), a) for dj in (0, 1)]
            faces_j = [_log_face_weight(coeffs, corners, phi, (da, 0), (da, 1), j) for da in (0, 1)]
            log_pi_corner = np.mean([log_kappa for log_kappa, _ in faces_a + faces_j], axis=0)
            with np.errstate(divide="ignore"):
                k_a = np.minimum(*(log_kappa + np.log(d) for log_kappa, d in faces_a))
                k_j = np.minimum(*(log_kappa + np.log(d) for log_kappa, d in faces_j))
                log_weight = np.log(np.abs(d_aj)) + log_pi_corner
            log_bound = 0.5 * (k_a + k_j)
            clipped = active & (log_weight > log_bound)
            log_mass = log_pi_corner + np.log(corners.h_a * corners.h_j)
            limited.append(log_mass[clipped])
            total.append(log_mass[active])
            keep = active & np.isfinite(log_weight)
            _scatter(assembler, grid, corners, phi, np.sign(d_aj), np.minimum(log_weight, log_bound), keep, (a, j))
    if not total:
        return 0.0
    every = np.concatenate(total)
    if not np.isfinite(every).any():
        return 0.0
    top = every[np.isfinite(every)].max()
    clipped = np.concatenate(limited)
    return float(np.exp(clipped - top).sum() / np.exp(every - top).sum())


def _corners(grid: Grid, boundaries: Boundaries, a: int, j: int) -> _Corners | None:
    """Every corner of the (a, j) plane whose four cells exist (wrapping across periodic seams)."""
    multi = np.indices(grid.shape).reshape(grid.ndim, -1)
    keep = np.ones(multi.shape[1], dtype=bool)
    for axis in (a, j):
        if not boundaries.periodic(axis):
            keep &= multi[axis] < grid[axis].n - 1
    multi = multi[:, keep]
    if not multi.shape[1]:
        return None
    cells, points = {}, {}
    for da in (0, 1):
        for dj in (0, 1):
            moved = multi.copy()
            shift = {}
            for axis, step in ((a, da), (j, dj)):
                k = multi[axis] + step
                wrap = k >= grid[axis].n
                shift[axis] = np.where(wrap, grid[axis].length, 0.0)
                moved[axis] = np.where(wrap, k - grid[axis].n, k)
            cells[(da, dj)] = np.ravel_multi_index(tuple(moved), grid.shape)
            points[(da, dj)] = {ax.name: ax.centers[moved[d]] + shift.get(d, 0.0) for d, ax in enumerate(grid)}
    corner = {name: 0.5 * (points[(0, 0)][name] + points[(1, 1)][name]) for name in grid.names}
    for axis in (a, j):  # the corner lies on the faces between the rows, not midway between centres
        ax = grid[axis]
        k = multi[axis]
        corner[ax.name] = np.where(k + 1 < ax.n, ax.faces[np.minimum(k + 1, ax.n)], ax.hi)
    h_a = points[(1, 0)][grid[a].name] - points[(0, 0)][grid[a].name]
    h_j = points[(0, 1)][grid[j].name] - points[(0, 0)][grid[j].name]
    return _Corners(cells, points, corner, h_a, h_j)


def _log_face_weight(coeffs: OverdampedCoefficients, corners: _Corners, phi: dict, lower: tuple[int, int], upper: tuple[int, int], axis: int) -> tuple[np.ndarray, np.ndarray]:
    r"""log κ_f = −φ₋ + log B(φ₊ − φ₋) of the face between two of the corner's cells, and D along its normal there."""
    face = {name: 0.5 * (corners.points[lower][name] + corners.points[upper][name]) for name in corners.corner}
    d = np.broadcast_to(coeffs.diffusion(face)[axis, axis], corners.h_a.shape)
    with np.errstate(divide="ignore"):
        return -phi[lower] + np.log(bernoulli(phi[upper] - phi[lower])), d


def _scatter(assembler: FluxAssembler, grid: Grid, corners: _Corners, phi: dict, sign: np.ndarray, log_weight: np.ndarray, keep: np.ndarray, plane: tuple[int, int]) -> None:
    r"""Face fluxes :math:`J_f = -\tfrac12 W_c\,g(c)\,V_c/(A_f h_f)` through the corner's four faces.

    :math:`V_c = h_a h_j \times` (the other widths) and :math:`A_f` the face area, so every
    face passes the same :math:`\tfrac12 W_c V_c g` to the divergence: the stencil is the
    gradient of :math:`\sum_c W_c V_c g_a g_j` (symmetric in u). In terms of densities,
    :math:`u = P e^{\phi}`.
    """
    volumes = grid.cell_volumes.ravel()
    widths = [np.broadcast_to(ax.widths.reshape([-1 if d == k else 1 for d in range(grid.ndim)]), grid.shape).ravel() for k, ax in enumerate(grid)]
    h = {0: corners.h_a, 1: corners.h_j}
    c = {key: cells[keep] for key, cells in corners.cells.items()}
    half_sign, log_w = 0.5 * sign[keep], log_weight[keep]
    for normal in (0, 1):  # 0: faces normal to a (between da = 0 and 1); 1: normal to j
        across = 1 - normal
        for row in (0, 1):
            lower = (0, row) if normal == 0 else (row, 0)
            upper = (1, row) if normal == 0 else (row, 1)
            face_cell = c[lower]
            area = volumes[face_cell] / widths[plane[normal]][face_cell]
            # V_c / (A_f h_normal) = h_across / width_across of the face's row
            scale = h[across][keep] / widths[plane[across]][face_cell]
            # g_across = sum over the two rows along `normal` of (u(., 1) - u(., 0)) / (2 h_across)
            for k in (0, 1):
                for step, sgn in ((1, 1.0), (0, -1.0)):
                    key = (k, step) if normal == 0 else (step, k)
                    # W_c e^{phi_cell} in one exponent: each factor alone can overflow
                    weight = -half_sign * sgn * 0.5 / h[across][keep] * scale * np.exp(log_w + phi[key][keep])
                    assembler.add_faces(c[lower], c[upper], area, c[key], weight)
