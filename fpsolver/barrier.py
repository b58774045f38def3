r"""The barrier on the way out: the start's minimum and the saddle on the lowest path to the target.

The escape from a basin is controlled by the *lowest* barrier on any path to the target, not
by the lowest saddle on the grid. On the grid this is a bottleneck (minimax) problem:

1. descend from the start cell to its basin's minimum (steepest descent over face
   neighbours, periodic seams included); if the descent enters the target first, there is
   no barrier;
2. the lowest level :math:`c^*` at which the minimum and the target lie in one face-connected
   component of :math:`\{E \le c\}` (bisection over the sorted cell energies, components by
   :func:`fpsolver.regions.components`); the cell of energy :math:`c^*` in that component is
   the bottleneck;
3. Newton's method on :math:`\nabla L = 0` from the minimum cell and the bottleneck cell
   (:func:`fpsolver.critical.refine`) gives the minimum and the index-1 saddle, with their
   Hessians. A saddle on the target's edge is fine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boundary import Boundaries
from .critical import CriticalPoint, refine
from .grid import Grid
from .landscapes import Landscape
from .regions import components

__all__ = ["Barrier", "find_barrier", "descend"]


@dataclass(frozen=True)
class Barrier:
    """Minimum and saddle of the lowest path from a start to a target (``saddle`` None: no barrier)."""

    minimum: CriticalPoint | None
    saddle: CriticalPoint | None
    note: str

    @property
    def height(self) -> float:
        if self.minimum is None or self.saddle is None:
            return float("nan")
        return self.saddle.value - self.minimum.value


def descend(energy: np.ndarray, pairs: tuple[tuple[np.ndarray, np.ndarray], ...], start: int, stop: np.ndarray) -> int:
    """Steepest descent over face neighbours from ``start``; returns the local minimum reached,
    or -1 when the path enters ``stop`` first."""
    frm = np.concatenate([np.concatenate([lo, up]) for lo, up in pairs])
    to = np.concatenate([np.concatenate([up, lo]) for lo, up in pairs])
    order = np.argsort(frm, kind="stable")
    frm, to = frm[order], to[order]
    bounds = np.searchsorted(frm, np.arange(energy.size + 1))
    cell = start
    for _ in range(energy.size):
        if stop[cell]:
            return -1
        around = to[bounds[cell] : bounds[cell + 1]]
        if around.size == 0:
            return cell
        best = around[np.argmin(energy[around])]
        if energy[best] >= energy[cell]:
            return cell
        cell = int(best)
    return cell


def bottleneck(grid: Grid, boundaries: Boundaries, energy: np.ndarray, source: int, target: np.ndarray) -> int:
    """The cell at the lowest level where ``source`` and ``target`` first share a face-connected sublevel set."""
    levels = np.unique(energy[energy >= energy[source]])

    def joined(level: float) -> bool:
        labels = components(grid, boundaries, energy <= level)
        return bool(labels[source] > 0 and np.any(labels[target] == labels[source]))

    lo, hi = 0, levels.size - 1
    if not joined(levels[hi]):
        return -1
    while lo < hi:
        mid = (lo + hi) // 2
        if joined(levels[mid]):
            hi = mid
        else:
            lo = mid + 1
    level = levels[lo]
    labels = components(grid, boundaries, energy <= level)
    on_path = (labels == labels[source]) & (energy == level)
    return int(np.flatnonzero(on_path)[0])


def find_barrier(
    landscape: Landscape, grid: Grid, boundaries: Boundaries, pairs, energy: np.ndarray, start: int, target: np.ndarray
) -> Barrier:
    """The minimum of the start's basin and the saddle of the lowest path from it to ``target``.

    ``energy`` is the landscape on the cells (flat); ``pairs`` the face neighbour pairs of the
    chain. Coordinates refer to the landscape's variables.
    """
    low = descend(energy, pairs, start, target)
    if low < 0:
        return Barrier(None, None, "no barrier: the start's descent enters the target directly")
    reach = 2.0 * float(np.sqrt(sum(float(grid.axis(v).widths.max()) ** 2 for v in landscape.variables)))
    minimum = refine(landscape, _position(landscape, grid, low), reach)
    top = bottleneck(grid, boundaries, energy, low, target)
    if top < 0:
        return Barrier(minimum, None, "no barrier: the target cannot be reached")
    saddle = refine(landscape, _position(landscape, grid, top), reach)
    if minimum is None or minimum.index != 0:
        return Barrier(None, None, "no barrier: Newton's method found no minimum at the bottom of the start's basin")
    if saddle is None or saddle.index != 1:
        return Barrier(minimum, None, "no barrier: the lowest path to the target crosses no index-1 saddle (it climbs into the target)")
    return Barrier(minimum, saddle, "saddle of the lowest path from the start's basin to the target")


def _position(landscape: Landscape, grid: Grid, cell: int) -> np.ndarray:
    multi = np.unravel_index(cell, grid.shape)
    return np.array([grid.axis(v).centers[multi[grid.index(v)]] for v in landscape.variables])
