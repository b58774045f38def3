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

**Cross part** (full D only). :math:`-D_{aj}e^{-\phi}\partial_j(e^{\phi}P)` at
the face, with the four-cell central stencil on the Slotboom variable
:math:`e^{\phi - \phi_{\rm face}}P` (one-sided at non-periodic ends). It vanishes
on :math:`e^{-\phi}`, keeping the Gibbs state exact for a full mobility
matrix. It is omitted on absorbing faces.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sps

from ..boundary import Boundaries
from ..errors import FPSolverWarning
from ..grid import Grid
from ..models import OverdampedCoefficients
from .edges import Edges, FluxAssembler, axis_edges, neighbour
from .registry import register_generator
from .scharfetter_gummel import sg_weights

__all__ = ["overdamped_generator"]

#: Step of the central differences of D(θ), relative to the smallest cell width.
DERIVATIVE_STEP = 1e-2

#: Largest step of the reference potential L/T between neighbouring cells for which the
#: exponentially weighted cross-diffusion stencil is stable. Measured on 2-D quadratic and
#: double-well landscapes with mobility [[1, .3], [.3, 1]]: all eigenvalues have Re <= 0 up to a
#: step of 5.6; at 9.4 the largest real part is +18, at 16.6 +2.2e3, at 47 +1.8e6.
CROSS_STEP_LIMIT = 6.0


@register_generator(OverdampedCoefficients)
def overdamped_generator(coeffs: OverdampedCoefficients, grid: Grid, boundaries: Boundaries) -> sps.csr_matrix:
    """Assemble :math:`\\mathcal L` with ``dP/dt = L @ P`` (cell densities, C order)."""
    assembler = FluxAssembler(grid)
    steps = [DERIVATIVE_STEP * float(ax.widths.min()) for ax in grid]
    if not coeffs.diagonal_diffusion:
        _warn_unresolved_cross_diffusion(coeffs, grid)
    for axis in range(grid.ndim):
        edges = axis_edges(grid, boundaries, axis)
        if not len(edges):
            continue
        diffusion = coeffs.diffusion(edges.face_points)
        _add_diagonal_flux(assembler, edges, coeffs, diffusion, steps)
        if not coeffs.diagonal_diffusion:
            _add_cross_flux(assembler, edges, coeffs, diffusion, grid, boundaries)
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
    phi_face = coeffs.potential(edges.face_points)
    for j in range(grid.ndim):
        if j == a:
            continue
        d_aj = diffusion[a, j]
        if not np.any(d_aj):
            continue
        for multi, points in ((edges.lower_multi, edges.lower_points), (edges.upper_multi, edges.upper_points)):
            plus, x_plus = neighbour(grid, boundaries, multi, j, +1)
            minus, x_minus = neighbour(grid, boundaries, multi, j, -1)
            span = x_plus - x_minus
            for cell, x, sign in ((plus, x_plus, 1.0), (minus, x_minus, -1.0)):
                factor = 1.0
                if phi_face is not None:
                    moved = dict(points)
                    moved[grid.names[j]] = x
                    factor = np.exp(coeffs.potential(moved) - phi_face)
                # -D_aj * d_j(w) averaged over the two cells beside the face (hence 1/2).
                assembler.add(edges, cell, -0.5 * sign * d_aj * factor / span, mask=interior)


def _warn_unresolved_cross_diffusion(coeffs: OverdampedCoefficients, grid: Grid) -> None:
    """Warn when the grid does not resolve exp(-L/T) well enough for the cross-diffusion stencil.

    Its Slotboom weights exp(phi_neighbour - phi_face) grow exponentially with the potential
    step per cell; beyond :data:`CROSS_STEP_LIMIT` the generator has eigenvalues with positive
    real part (an evolution blows up, a spectrum has negative rates).
    """
    phi = coeffs.potential(dict(zip(grid.names, grid.mesh())))
    if phi is None:
        return
    phi = np.broadcast_to(phi, grid.shape)
    step = max(float(np.abs(np.diff(phi, axis=k)).max()) for k in range(grid.ndim))
    if step > CROSS_STEP_LIMIT:
        warnings.warn(
            f"off-diagonal diffusion on a grid that does not resolve exp(-L/T): the potential L/T changes by up to "
            f"{step:.3g} between neighbouring cells, above {CROSS_STEP_LIMIT:g}, where the cross-diffusion stencil is "
            f"unstable (positive eigenvalues): refine the grid about {step / CROSS_STEP_LIMIT:.2g}x, or shrink the domain "
            "to where the density lives",
            FPSolverWarning,
            stacklevel=4,
        )
