"""Regions of a grid: target and start masks, start points, and connected components.

A *region* is given as a condition on the axes, such as ``"x >= 1 and y < 0"`` (parsed
safely, evaluated at cell centres), or as a boolean mask of the grid shape. Conditions may
combine any axes with ``and``, ``or`` and ``not`` in every dimension: every comparison is
broadcast onto the full grid before it is combined.

Connectivity is through cell faces, across periodic seams too (a region that wraps around a
periodic axis is one component).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sympy as sp
from scipy import ndimage

from .boundary import Boundaries
from .errors import InputError
from .expressions import parse_condition
from .grid import Grid

__all__ = ["interpolate_at", "point_text", "region_mask", "target_mask", "start_cells", "cell_index", "components", "component_of"]

_RELATIONS = {
    sp.StrictLessThan: np.less,
    sp.LessThan: np.less_equal,
    sp.StrictGreaterThan: np.greater,
    sp.GreaterThan: np.greater_equal,
}


def region_mask(grid: Grid, region: str | np.ndarray | None, what: str) -> np.ndarray:
    """Flat boolean mask of the cells in ``region``.

    Parameters
    ----------
    grid
        The grid.
    region
        A condition such as ``"x >= 1 and y < 0"``, a boolean array of the grid shape (or
        flattened), or None (no cell).
    what
        Name used in error messages (``"target"``, ``"start"``).
    """
    if region is None:
        return np.zeros(grid.size, bool)
    if isinstance(region, str):
        condition = parse_condition(region, grid.names)
        mesh = {name: np.broadcast_to(c, grid.shape) for name, c in zip(grid.names, grid.mesh())}
        mask = _evaluate(condition, mesh, grid.shape).ravel()
    else:
        mask = np.asarray(region, dtype=bool)
        if mask.shape not in (grid.shape, (grid.size,)):
            raise InputError(f"{what} mask has shape {mask.shape}, expected the grid shape {grid.shape}")
        mask = mask.ravel()
    if not mask.any():
        raise InputError(f"{what} region {region!r} contains no cell centre of the grid")
    return mask.copy()


def _evaluate(condition: sp.Basic, mesh: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """A parsed condition on full grid-shaped arrays (no lambdify: each node broadcast explicitly)."""
    if isinstance(condition, sp.And):
        return np.logical_and.reduce([_evaluate(a, mesh, shape) for a in condition.args])
    if isinstance(condition, sp.Or):
        return np.logical_or.reduce([_evaluate(a, mesh, shape) for a in condition.args])
    if isinstance(condition, sp.Not):
        return ~_evaluate(condition.args[0], mesh, shape)
    if condition is sp.true:
        return np.ones(shape, bool)
    if condition is sp.false:
        return np.zeros(shape, bool)
    relation = _RELATIONS.get(type(condition))
    if relation is None:
        raise InputError(f"cannot evaluate the condition {condition}")
    left, right = (_numeric(side, mesh, shape) for side in condition.args)
    return relation(left, right)


def _numeric(expr: sp.Expr, mesh: dict[str, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    used = sorted(s.name for s in expr.free_symbols)
    fn = sp.lambdify([sp.Symbol(v, real=True) for v in used], expr, modules="numpy")
    with np.errstate(all="ignore"):
        value = np.asarray(fn(*(mesh[v] for v in used)), dtype=float)
    return np.broadcast_to(value, shape)


def point_text(point: Sequence[float]) -> str:
    """A point as plain text for messages: ``[0.5, -1]``."""
    return "[" + ", ".join(f"{float(v):g}" for v in np.asarray(point, dtype=float).ravel()) + "]"


def target_mask(grid: Grid, boundaries: Boundaries, target: str | np.ndarray | None) -> np.ndarray:
    """Flat mask of the target cells; None means only the absorbing faces (then there must be one)."""
    if target is None:
        if boundaries.conserves_mass:
            raise InputError("no target: give target= (a region such as 'x >= 1') or make a boundary absorbing")
        return np.zeros(grid.size, bool)
    mask = region_mask(grid, target, "target")
    if mask.all():
        raise InputError("the target region covers the whole grid")
    return mask


def cell_index(grid: Grid, point: Sequence[float]) -> int:
    """Flat index of the cell containing ``point``."""
    return int(np.ravel_multi_index(grid.locate(point), grid.shape))


def start_cells(grid: Grid, start: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the cell centres around ``start`` and their multilinear interpolation weights."""
    point = np.asarray(start, dtype=float).ravel()
    if point.size != grid.ndim:
        raise InputError(f"start needs {grid.ndim} coordinate(s), one per axis {list(grid.names)}; got {point.tolist()}")
    grid.locate(point)  # raises when outside
    lower, fractions = [], []
    for ax, value in zip(grid, point):
        c = ax.centers
        k = int(np.clip(np.searchsorted(c, value) - 1, 0, ax.n - 2))
        lower.append(k)
        fractions.append(float(np.clip((value - c[k]) / (c[k + 1] - c[k]), 0.0, 1.0)))
    cells, weights = [], []
    for corner in np.ndindex(*(2,) * grid.ndim):
        w = float(np.prod([f if bit else 1.0 - f for f, bit in zip(fractions, corner)]))
        if w > 0:
            cells.append(int(np.ravel_multi_index(tuple(k + bit for k, bit in zip(lower, corner)), grid.shape)))
            weights.append(w)
    return np.array(cells, dtype=int), np.array(weights)


def interpolate_at(grid: Grid, values: np.ndarray, point: Sequence[float]) -> float:
    """Multilinear interpolation of a positive cell field at ``point``, in log space.

    Times and probabilities vary exponentially across a barrier (log-slope ΔL'/T), where
    linear interpolation between centres is off by O((h L'/T)^2) (measured 0.9 % at
    barrier/T = 70 on 1600 cells) and geometric interpolation is exact for an exponential.
    Falls back to linear interpolation where a corner value is zero (next to the target).
    """
    cells, weights = start_cells(grid, point)
    corner = np.asarray(values)[cells]
    if np.all(corner > 0) and np.all(np.isfinite(corner)):
        return float(np.exp(weights @ np.log(corner)))
    return float(weights @ corner)


def components(grid: Grid, boundaries: Boundaries, mask: np.ndarray) -> np.ndarray:
    """Labels (flat, 0 outside ``mask``) of the face-connected components of ``mask``, seams joined."""
    labels, count = ndimage.label(np.asarray(mask, bool).reshape(grid.shape))
    if count == 0:
        return labels.ravel()
    parent = np.arange(count + 1)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for axis in range(grid.ndim):
        if not boundaries.periodic(axis):
            continue
        first = labels.take(0, axis=axis).ravel()
        last = labels.take(-1, axis=axis).ravel()
        for a, b in set(zip(first[(first > 0) & (last > 0)].tolist(), last[(first > 0) & (last > 0)].tolist())):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(i) for i in range(count + 1)])
    return roots[labels.ravel()]


def component_of(grid: Grid, boundaries: Boundaries, mask: np.ndarray, cell: int) -> np.ndarray:
    """The face-connected component of ``mask`` (flat) that contains ``cell`` (empty if outside)."""
    labels = components(grid, boundaries, mask)
    if labels[cell] == 0:
        return np.zeros(grid.size, bool)
    return labels == labels[cell]
