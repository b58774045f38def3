"""Refuse fields that are not finite on a grid, naming the first bad cell.

A landscape such as ``sqrt(x)`` or ``log(x)`` on an axis that reaches x < 0, or
``exp(exp(100*x))``, evaluates to NaN or infinity at some cells; the operators
would silently treat those cells as flat or fail later with an unrelated
"singular matrix". Evaluating at the cell centres once, at build time, turns
that into an input error that says where.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .grid import Grid

__all__ = ["require_finite", "cell_label"]


def cell_label(grid: Grid, index: tuple[int, ...]) -> str:
    """The centre of cell ``index`` as ``"x=-1.99, y=0.5"``."""
    return ", ".join(f"{axis.name}={axis.centers[i]:.6g}" for axis, i in zip(grid, index))


def require_finite(grid: Grid, values: np.ndarray, what: str) -> None:
    """Raise :class:`InputError` unless ``values`` is finite at every cell.

    Parameters
    ----------
    grid
        The grid the values were evaluated on (at cell centres).
    values
        Array broadcastable to ``(..., *grid.shape)``: leading dimensions (gradient
        components, matrix entries) are reduced — a cell is bad if any component is.
    what
        Name of the field for the message (``"landscape"``, ``"landscape gradient"``, ...).
    """
    arr = np.asarray(values, dtype=float)
    lead = max(arr.ndim - grid.ndim, 0)
    arr = np.broadcast_to(arr, arr.shape[:lead] + grid.shape)
    bad = ~np.isfinite(arr).reshape((-1,) + grid.shape).all(axis=0)
    if not bad.any():
        return
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), grid.shape))
    sample = arr.reshape((-1,) + grid.shape)[(slice(None),) + index]
    shown = sample[~np.isfinite(sample)][0]
    others = int(bad.sum()) - 1
    more = f" (and at {others} more of the {grid.size} cells)" if others else ""
    raise InputError(f"{what} is not finite ({shown}) at {cell_label(grid, index)}{more}")
