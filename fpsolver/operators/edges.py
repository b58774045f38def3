r"""Face connectivity of a grid and the scatter of face fluxes into a sparse generator.

Finite volumes: for a cell :math:`c` with volume :math:`V_c`,

.. math::

    \frac{dP_c}{dt} = -\frac{1}{V_c}\sum_{f \in \partial c} \pm A_f J_f ,

where :math:`J_f` is the flux through face :math:`f` (positive along the axis)
and :math:`A_f` the face area. Whatever the flux stencil, every face adds its
flux to one cell and removes it from the other, so the volume-weighted column
sums of the generator vanish and probability is conserved to round-off (except
through absorbing faces, whose outer side is a ghost node with zero density).

The :class:`Edges` of one axis list, for every face normal to it, the nodes on
both sides (a cell, or a ghost node *at* an absorbing face), their coordinates
(periodic neighbours unwrapped, so that a non-periodic potential stays
continuous across the seam), the distance between them and the face area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sps

from ..boundary import Boundaries
from ..grid import Grid, broadcast_along

__all__ = ["Edges", "axis_edges", "neighbour", "FluxAssembler", "GHOST"]

#: Index used for a ghost node (outside an absorbing face, density zero).
GHOST = -1


@dataclass(frozen=True)
class Edges:
    """The faces normal to one axis and the nodes they connect.

    Attributes
    ----------
    axis
        Axis number.
    lower, upper
        Flat cell index on each side, :data:`GHOST` for an absorbing ghost.
    lower_points, upper_points, face_points
        Coordinates (by axis name) of the two nodes and of the face centre.
    lower_multi, upper_multi
        Multi-indices ``(ndim, m)`` of the two nodes (ghosts: the adjacent cell's).
    distance
        Distance between the two nodes along the axis.
    area
        Face area (product of the other axes' cell widths; 1 in 1-D).
    """

    axis: int
    lower: np.ndarray
    upper: np.ndarray
    lower_points: dict[str, np.ndarray]
    upper_points: dict[str, np.ndarray]
    face_points: dict[str, np.ndarray]
    lower_multi: np.ndarray
    upper_multi: np.ndarray
    distance: np.ndarray
    area: np.ndarray

    @property
    def interior(self) -> np.ndarray:
        """Mask of faces with a cell on both sides."""
        return (self.lower != GHOST) & (self.upper != GHOST)

    def __len__(self) -> int:
        return self.lower.size


def axis_edges(grid: Grid, boundaries: Boundaries, axis: int) -> Edges:
    """All faces normal to ``axis`` that carry a flux (interior, periodic seam, absorbing sides)."""
    ax = grid[axis]
    n = ax.n
    flat = np.arange(grid.size).reshape(grid.shape)
    multi = np.indices(grid.shape)
    centres = [np.broadcast_to(c, grid.shape) for c in grid.mesh()]
    area = grid.cell_volumes / broadcast_along(ax.widths, axis, grid.ndim)

    def slab(k: np.ndarray | int) -> dict[str, np.ndarray]:
        k = np.atleast_1d(k)
        return {
            "flat": flat.take(k, axis=axis).ravel(),
            "multi": multi.take(k, axis=axis + 1).reshape(grid.ndim, -1),
            "area": area.take(k, axis=axis).ravel(),
            **{name: centres[d].take(k, axis=axis).ravel() for d, name in enumerate(grid.names)},
        }

    def along(values: np.ndarray, k_count: int) -> np.ndarray:
        """Broadcast per-slab values of the axis coordinate onto the flattened slab."""
        shape = list(grid.shape)
        shape[axis] = k_count
        return np.broadcast_to(broadcast_along(values, axis, grid.ndim), shape).ravel()

    parts = []
    # Interior faces between cells k and k+1.
    k = np.arange(n - 1)
    lo, hi = slab(k), slab(k + 1)
    parts.append((lo, hi, along(ax.faces[1:-1], n - 1), along(np.diff(ax.centers), n - 1)))
    lower_kind, upper_kind = boundaries.sides[axis]
    if lower_kind == "periodic":
        lo, hi = slab(n - 1), slab(0)
        hi = dict(hi)
        hi[ax.name] = hi[ax.name] + ax.length  # unwrap across the seam
        gap = (ax.hi - ax.centers[-1]) + (ax.centers[0] - ax.lo)
        parts.append((lo, hi, np.full(lo["flat"].size, ax.hi), np.full(lo["flat"].size, gap)))
    if lower_kind == "absorbing":
        hi = slab(0)
        lo = _ghost(hi, ax.name, ax.lo)
        parts.append((lo, hi, np.full(hi["flat"].size, ax.lo), np.full(hi["flat"].size, ax.centers[0] - ax.lo)))
    if upper_kind == "absorbing":
        lo = slab(n - 1)
        hi = _ghost(lo, ax.name, ax.hi)
        parts.append((lo, hi, np.full(lo["flat"].size, ax.hi), np.full(lo["flat"].size, ax.hi - ax.centers[-1])))

    def cat(side: int, key: str) -> np.ndarray:
        return np.concatenate([p[side][key] for p in parts], axis=-1)

    face_points = {name: cat(0, name) for name in grid.names}
    face_points[ax.name] = np.concatenate([p[2] for p in parts])
    return Edges(
        axis=axis,
        lower=cat(0, "flat"),
        upper=cat(1, "flat"),
        lower_points={name: cat(0, name) for name in grid.names},
        upper_points={name: cat(1, name) for name in grid.names},
        face_points=face_points,
        lower_multi=cat(0, "multi"),
        upper_multi=cat(1, "multi"),
        distance=np.concatenate([p[3] for p in parts]),
        area=cat(0, "area"),
    )


def _ghost(cell: dict[str, np.ndarray], name: str, position: float) -> dict[str, np.ndarray]:
    """A ghost node facing ``cell`` at the absorbing face ``position``."""
    ghost = dict(cell)
    ghost["flat"] = np.full(cell["flat"].size, GHOST)
    ghost[name] = np.full(cell["flat"].size, position)
    return ghost


def neighbour(
    grid: Grid, boundaries: Boundaries, multi: np.ndarray, axis: int, step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Flat index and (unwrapped) axis coordinate of the neighbour ``step`` = ±1 cells along ``axis``.

    At a non-periodic end the cell itself is returned (one-sided differences).
    """
    ax = grid[axis]
    k = multi[axis] + step
    coord_shift = np.zeros(k.shape)
    if boundaries.periodic(axis):
        coord_shift = np.where(k < 0, -ax.length, np.where(k >= ax.n, ax.length, 0.0))
        k = np.mod(k, ax.n)
    else:
        k = np.clip(k, 0, ax.n - 1)
    moved = multi.copy()
    moved[axis] = k
    return np.ravel_multi_index(tuple(moved), grid.shape), ax.centers[k] + coord_shift


class FluxAssembler:
    """Collects face-flux stencils and builds the generator :math:`\\mathcal L` (``dP/dt = L @ P``).

    Each call of :meth:`add` gives, for the faces ``edges``, one stencil slot: the
    face flux gains ``weight * P[cell]``. Slots whose cell is a ghost are dropped
    (the density there is zero).
    """

    def __init__(self, grid: Grid):
        self.grid = grid
        self._volumes = grid.cell_volumes.ravel()
        self._rows: list[np.ndarray] = []
        self._cols: list[np.ndarray] = []
        self._vals: list[np.ndarray] = []

    def add(self, edges: Edges, cell: np.ndarray, weight: np.ndarray, mask: np.ndarray | None = None) -> None:
        """Add ``weight * P[cell]`` to the flux through each face of ``edges`` (optionally only where ``mask``)."""
        keep = cell != GHOST
        if mask is not None:
            keep &= mask
        cell, weight = cell[keep], np.broadcast_to(weight, keep.shape)[keep]
        lower, upper, area = edges.lower[keep], edges.upper[keep], edges.area[keep]
        for side, sign in ((lower, -1.0), (upper, 1.0)):
            real = side != GHOST
            self._rows.append(side[real])
            self._cols.append(cell[real])
            self._vals.append(sign * weight[real] * area[real] / self._volumes[side[real]])

    def add_entries(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> None:
        """Add generator entries directly (terms that are conservative by construction: volume-weighted
        column sums zero)."""
        self._rows.append(rows)
        self._cols.append(cols)
        self._vals.append(values)

    def matrix(self) -> sps.csr_matrix:
        """The assembled generator in CSR format (duplicates summed)."""
        n = self.grid.size
        if not self._rows:
            return sps.csr_matrix((n, n))
        rows = np.concatenate(self._rows)
        cols = np.concatenate(self._cols)
        vals = np.concatenate(self._vals)
        mat = sps.coo_matrix((vals, (rows, cols)), shape=(n, n)).tocsr()
        mat.sum_duplicates()
        mat.eliminate_zeros()
        return mat

