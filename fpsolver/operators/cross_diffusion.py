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
    r"""The corner terms of :math:`V\,\dot P = -\nabla_u \sum_c W_c V_c\, g_a g_j`, 16 entries per corner.

    With :math:`g_a = \alpha\cdot u` and :math:`g_j = \beta\cdot u` over the corner's four cells,
    cell m gains :math:`-W_c V_c(\alpha_m\,\beta + \beta_m\,\alpha)\cdot u / V_m`, and
    :math:`u = P e^{\phi}` (the exponents combined, since each factor alone can overflow). The
    column sums vanish because :math:`\sum_m \alpha_m = \sum_m \beta_m = 0`: probability is conserved.
    :math:`V_c = h_a h_j` times the cells' widths along the other axes; every face then carries
    :math:`-\tfrac12\sum_c W_c\,g(c)` (the flux form of the module docstring).
    """
    volumes = grid.cell_volumes.ravel()
    width = {k: np.broadcast_to(grid[k].widths.reshape([-1 if d == k else 1 for d in range(grid.ndim)]), grid.shape).ravel() for k in plane}
    cells = {key: c[keep] for key, c in corners.cells.items()}
    h_a, h_j = corners.h_a[keep], corners.h_j[keep]
    first = cells[(0, 0)]
    v_corner = h_a * h_j * volumes[first] / (width[plane[0]][first] * width[plane[1]][first])
    alpha = {key: (1.0 if key[0] else -1.0) / (2 * h_a) for key in cells}
    beta = {key: (1.0 if key[1] else -1.0) / (2 * h_j) for key in cells}
    signed = -sign[keep] * v_corner
    log_w = log_weight[keep]
    for row, m in cells.items():
        for col, n in cells.items():
            value = signed * (alpha[row] * beta[col] + beta[row] * alpha[col]) / volumes[m] * np.exp(log_w + phi[col][keep])
            assembler.add_entries(m, n, value)
