r"""Conservative generator of the overdamped Fokker–Planck equation.

The model's current (see :mod:`fpsolver.models`) is written as

.. math::

    J_a = (b_a - \alpha_a)P - D_{aa}\,\partial_a P - \sum_{j\ne a} D_{aj}\,\partial_j P .

**Diagonal part** (per axis, Scharfetter–Gummel). Along each edge of axis
:math:`a` the exponent is

.. math::

    \Delta\tilde\psi = \Delta\phi - d\,\frac{r_a}{D_{aa}}\Big|_{\rm face}
                       + s\,\ln\frac{D_{aa,+}}{D_{aa,-}},
    \qquad r_a = b_a - \alpha^{\rm off}_a + \sum_j D_{aj}\,\partial_j\phi,

where :math:`\phi` is the reference potential (:math:`L/T` when
:math:`D = TA`, otherwise 0), :math:`s` the convention exponent (the diagonal
part of the spurious drift, :math:`s\,\partial_a D_{aa}`, enters exactly
through the logarithm) and :math:`\alpha^{\rm off}` the rest of it. In the
Einstein case :math:`r_a` vanishes identically, so :math:`e^{-\phi}` is an exact
discrete steady state; in 1-D the stationary density of every convention,
:math:`D^{-s}e^{-\int b/D}`, is reproduced to second order (exactly when
:math:`b/D` is constant along edges).

**Cross part** (full D only). With a reference potential, the symmetric corner
stencil of :mod:`fpsolver.operators.cross_diffusion`: exact Gibbs state, real
non-positive spectrum on any grid. Without one, :math:`-D_{aj}\partial_j P` at the
face with the four-cell central stencil (one-sided at non-periodic ends). It is
omitted on absorbing faces.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sps

from ..boundary import Boundaries
from ..errors import FPSolverWarning
from ..grid import Grid
from ..models import OverdampedCoefficients
from .cross_diffusion import add_corner_cross_flux
from .edges import Edges, FluxAssembler, axis_edges, neighbour
from .registry import register_generator
from .scharfetter_gummel import sg_weights

__all__ = ["overdamped_generator"]

#: Step of the central differences of D(θ), relative to the smallest cell width.
DERIVATIVE_STEP = 1e-2



@register_generator(OverdampedCoefficients)
def overdamped_generator(coeffs: OverdampedCoefficients, grid: Grid, boundaries: Boundaries) -> sps.csr_matrix:
    """Assemble :math:`\\mathcal L` with ``dP/dt = L @ P`` (cell densities, C order)."""
    assembler = FluxAssembler(grid)
    steps = [DERIVATIVE_STEP * float(ax.widths.min()) for ax in grid]
    symmetric_cross = not coeffs.diagonal_diffusion and coeffs.potential(dict(zip(grid.names, grid.mesh()))) is not None
    for axis in range(grid.ndim):
        edges = axis_edges(grid, boundaries, axis)
        if not len(edges):
            continue
        diffusion = coeffs.diffusion(edges.face_points)
        _add_diagonal_flux(assembler, edges, coeffs, diffusion, steps)
        if not coeffs.diagonal_diffusion and not symmetric_cross:
            _add_cross_flux(assembler, edges, coeffs, diffusion, grid, boundaries)
    if symmetric_cross:
        _warn_limited(add_corner_cross_flux(assembler, coeffs, grid, boundaries))
    return assembler.matrix()


def _add_diagonal_flux(
    assembler: FluxAssembler,
    edges: Edges,
    coeffs: OverdampedCoefficients,
    diffusion: np.ndarray,
    steps: list[float],
) -> None:
    a = edges.axis
    faces = edges.face_points
    d_aa = diffusion[a, a]
    s = coeffs.model.convention_exponent
    residual = coeffs.drift(faces)[a]
    delta_psi = np.zeros(len(edges))
    phi_lower = coeffs.potential(edges.lower_points)
    if phi_lower is not None:
        delta_psi += coeffs.potential(edges.upper_points) - phi_lower
        residual = residual + np.einsum("j...,j...->...", diffusion[a], coeffs.gradient(faces)) / coeffs.model.temperature
    if s and not coeffs.constant_diffusion:
        lower_d = coeffs.diffusion(edges.lower_points)[a, a]
        upper_d = coeffs.diffusion(edges.upper_points)[a, a]
        delta_psi += s * np.log(upper_d / lower_d)
        if not coeffs.diagonal_diffusion:
            alpha = coeffs.spurious_drift(faces, steps)[a]
            residual = residual - (alpha - s * coeffs.diffusion_derivative(faces, a, steps[a])[a, a])
    delta_psi -= edges.distance * residual / d_aa
    w_lower, w_upper = sg_weights(delta_psi, d_aa / edges.distance)
    assembler.add(edges, edges.lower, w_lower)
    assembler.add(edges, edges.upper, -w_upper)


def _add_cross_flux(
    assembler: FluxAssembler,
    edges: Edges,
    coeffs: OverdampedCoefficients,
    diffusion: np.ndarray,
    grid: Grid,
    boundaries: Boundaries,
) -> None:
    a = edges.axis
    interior = edges.interior
    for j in range(grid.ndim):
        if j == a:
            continue
        d_aj = diffusion[a, j]
        if not np.any(d_aj):
            continue
        for multi in (edges.lower_multi, edges.upper_multi):
            plus, x_plus = neighbour(grid, boundaries, multi, j, +1)
            minus, x_minus = neighbour(grid, boundaries, multi, j, -1)
            span = x_plus - x_minus
            for cell, sign in ((plus, 1.0), (minus, -1.0)):
                # -D_aj * d_j(P) averaged over the two cells beside the face (hence 1/2).
                assembler.add(edges, cell, -0.5 * sign * d_aj / span, mask=interior)


#: Share of the Gibbs weight at corners where the cross-diffusion bound binds, above which the
#: operator warns (below it the limited corners lie far up the walls, where nothing lives).
LIMITED_WEIGHT_WARNING = 1e-8


def _warn_limited(share: float) -> None:
    """Warn when the corner stencil's stability bound limited the cross diffusion where the density lives."""
    if share > LIMITED_WEIGHT_WARNING:
        warnings.warn(
            f"off-diagonal diffusion on a grid that does not resolve exp(-L/T): corners carrying {share:.2g} of the "
            "Gibbs weight have the potential changing by several units per cell, and the cross diffusion there is "
            "limited to keep the operator stable (the Gibbs state stays exact; transients and rates lose accuracy): "
            "refine the grid where L/T changes fastest",
            FPSolverWarning,
            stacklevel=4,
        )
