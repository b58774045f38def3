r"""Critical points of a landscape: minima and index-1 saddles, by Newton from grid seeds.

Seeds are the cells where :math:`|\nabla L|^2` is a local minimum over the grid (3^d
neighbourhood); Newton's method on :math:`\nabla L = 0` with the exact Hessian refines each
seed; points are classified by the number of negative Hessian eigenvalues (the index) and
de-duplicated. A barrier for escape from minimum :math:`a` is then
:math:`\Delta L = L(b) - L(a)` with the curvatures :math:`H_a`, :math:`H_b` at the two points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import minimum_filter

from .grid import Grid
from .landscapes import Landscape

__all__ = ["CriticalPoint", "critical_points", "refine"]


@dataclass(frozen=True)
class CriticalPoint:
    """A point with :math:`\\nabla L = 0`."""

    position: np.ndarray
    value: float
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray

    @property
    def index(self) -> int:
        """Number of negative Hessian eigenvalues (0 = minimum, 1 = saddle of index 1)."""
        return int(np.sum(self.eigenvalues < 0))

    @property
    def kind(self) -> str:
        return {0: "minimum", 1: "saddle"}.get(self.index, f"index-{self.index}")

    @property
    def unstable_direction(self) -> np.ndarray:
        """Eigenvector of the most negative eigenvalue (the escape direction at a saddle)."""
        return self.eigenvectors[:, int(np.argmin(self.eigenvalues))]


def critical_points(landscape: Landscape, grid: Grid, tol: float = 1e-10, max_iter: int = 50) -> list[CriticalPoint]:
    """Critical points of ``landscape`` inside ``grid`` (over the landscape's own variables).

    Grid axes the landscape does not depend on are ignored; positions are in the landscape's
    variable order. Points are sorted by value.
    """
    names = landscape.variables
    axes = [grid.axis(v) for v in names]
    mesh = np.meshgrid(*(a.centers for a in axes), indexing="ij", sparse=True)
    grad = landscape.gradient(*mesh)
    norm = np.sum(grad**2, axis=0)
    seeds = np.argwhere(norm == minimum_filter(norm, size=3, mode="nearest"))
    spacing = max(float(a.widths.max()) for a in axes)
    found: list[CriticalPoint] = []
    for seed in seeds:
        x = np.array([a.centers[i] for a, i in zip(axes, seed)], dtype=float)
        point = refine(landscape, x, tol=tol, max_iter=max_iter)
        if point is None or not all(a.lo <= xi <= a.hi for a, xi in zip(axes, point.position)):
            continue
        if any(np.linalg.norm(point.position - p.position) < 1e-3 * spacing for p in found):
            continue
        found.append(point)
    return sorted(found, key=lambda p: p.value)


def refine(landscape: Landscape, x0: np.ndarray, reach: float = np.inf, tol: float = 1e-10, max_iter: int = 50) -> CriticalPoint | None:
    r"""Newton's method on :math:`\nabla L = 0` with the exact Hessian from ``x0``.

    Returns the critical point, or None when Newton does not converge (|∇L| > 1e-8) or ends
    farther than ``reach`` from ``x0``.
    """
    x = np.array(x0, dtype=float)
    for _ in range(max_iter):
        g = landscape.gradient(*x).astype(float).ravel()
        h = landscape.hessian(*x).astype(float).reshape(x.size, x.size)
        if not (np.all(np.isfinite(g)) and np.all(np.isfinite(h))):
            return None
        try:
            step = np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            break
        x = x - step
        if np.linalg.norm(step) < tol * max(1.0, np.linalg.norm(x)):
            break
    gradient = landscape.gradient(*x).astype(float).ravel()
    if not np.all(np.isfinite(gradient)) or np.linalg.norm(gradient) > 1e-8 or np.linalg.norm(x - x0) > reach:
        return None
    values, vectors = np.linalg.eigh(landscape.hessian(*x).astype(float).reshape(x.size, x.size))
    return CriticalPoint(x, float(landscape.value(*x)), values, vectors)
