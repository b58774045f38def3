r"""Immutable rectilinear cell-centred grids.

A grid is the tensor product of 1-D axes. Each :class:`Axis` is a partition of
an interval :math:`[a, b]` into ``n`` cells by faces
:math:`a = f_0 < f_1 < \dots < f_n = b`; the unknowns live at cell centres
:math:`x_i = (f_i + f_{i+1})/2`. Fields on a :class:`Grid` are numpy arrays of
shape ``grid.shape`` (axis order = construction order) and are flattened in C
order when they enter a sparse operator.

Axes carry a ``kind``: ``"position"`` for parameters θ (the variables of a loss
landscape) and ``"velocity"`` for momenta of phase-space models, so that
phase-space operators can tell transport from diffusion directions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from .errors import InputError

__all__ = ["Axis", "Grid", "MIN_CELLS", "broadcast_along"]

#: Fewest cells an axis may have (a flux scheme needs interior faces).
MIN_CELLS = 3

AxisKind = Literal["position", "velocity"]


@dataclass(frozen=True, eq=False)
class Axis:
    """One axis of a rectilinear grid, given by its cell faces.

    Parameters
    ----------
    name
        Axis name; becomes the xarray dimension (``"x"``, ``"y"``, ``"r"``...).
    faces
        Strictly increasing face positions, ``n + 1`` values for ``n`` cells.
    kind
        ``"position"`` (a parameter θ) or ``"velocity"`` (a momentum r).
    """

    name: str
    faces: np.ndarray = field(repr=False)
    kind: AxisKind = "position"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise InputError(f"axis name {self.name!r} must be a valid identifier such as 'x'")
        if self.kind not in ("position", "velocity"):
            raise InputError(f"axis {self.name!r}: kind must be 'position' or 'velocity', not {self.kind!r}")
        faces = np.asarray(self.faces, dtype=float)
        if faces.ndim != 1 or faces.size < MIN_CELLS + 1:
            raise InputError(f"axis {self.name!r} needs at least {MIN_CELLS} cells, got {max(faces.size - 1, 0)}")
        if not np.all(np.isfinite(faces)):
            raise InputError(f"axis {self.name!r}: face positions must be finite")
        if np.any(np.diff(faces) <= 0):
            raise InputError(f"axis {self.name!r}: faces must be strictly increasing (min < max)")
        faces.setflags(write=False)
        object.__setattr__(self, "faces", faces)

    @classmethod
    def uniform(cls, name: str, lo: float, hi: float, n: int, kind: AxisKind = "position") -> Axis:
        """Axis of ``n`` equal cells on ``[lo, hi]``."""
        if isinstance(n, bool) or int(n) != n:
            raise InputError(f"axis {name!r}: number of cells must be an integer, got {n!r}")
        n = int(n)
        if n < MIN_CELLS:
            raise InputError(f"axis {name!r} needs at least {MIN_CELLS} cells, got {n}")
        lo, hi = float(lo), float(hi)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise InputError(f"axis {name!r}: bounds must be finite, got ({lo}, {hi})")
        if not lo < hi:
            raise InputError(f"axis {name!r}: min must be smaller than max, got min={lo}, max={hi}")
        return cls(name, np.linspace(lo, hi, n + 1), kind)

    @property
    def n(self) -> int:
        """Number of cells."""
        return self.faces.size - 1

    @property
    def lo(self) -> float:
        """Lower end of the axis."""
        return float(self.faces[0])

    @property
    def hi(self) -> float:
        """Upper end of the axis."""
        return float(self.faces[-1])

    @property
    def length(self) -> float:
        """``hi - lo``."""
        return self.hi - self.lo

    @cached_property
    def centers(self) -> np.ndarray:
        """Cell centres :math:`x_i = (f_i + f_{i+1})/2`."""
        c = 0.5 * (self.faces[1:] + self.faces[:-1])
        c.setflags(write=False)
        return c

    @cached_property
    def widths(self) -> np.ndarray:
        """Cell widths :math:`f_{i+1} - f_i`."""
        w = np.diff(self.faces)
        w.setflags(write=False)
        return w

    @property
    def is_uniform(self) -> bool:
        """True when all cells have the same width (to 1e-12 relative)."""
        return bool(np.allclose(self.widths, self.widths[0], rtol=1e-12, atol=0.0))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Axis):
            return NotImplemented
        return (self.name, self.kind) == (other.name, other.kind) and np.array_equal(self.faces, other.faces)

    def __hash__(self) -> int:
        return hash((self.name, self.kind, self.faces.tobytes()))

    def __repr__(self) -> str:
        spacing = "uniform" if self.is_uniform else "nonuniform"
        return f"Axis({self.name!r}, [{self.lo:g}, {self.hi:g}], n={self.n}, {spacing}, kind={self.kind!r})"


class Grid(Sequence[Axis]):
    """Tensor-product grid of named axes (immutable).

    Parameters
    ----------
    axes
        The axes, in storage order (the first axis varies slowest).

    Examples
    --------
    >>> grid = Grid.uniform(x=(-3.0, 3.0, 600), y=(-2.0, 2.0, 400))
    >>> grid.shape
    (600, 400)
    """

    def __init__(self, axes: Sequence[Axis]):
        axes = tuple(axes)
        if not axes:
            raise InputError("a grid needs at least one axis")
        if not all(isinstance(a, Axis) for a in axes):
            raise InputError("Grid takes Axis objects; use Grid.uniform(x=(min, max, n)) for uniform axes")
        names = [a.name for a in axes]
        if len(set(names)) != len(names):
            raise InputError(f"axis names must be unique, got {names}")
        self._axes = axes

    @classmethod
    def uniform(cls, **axes: tuple[float, float, int]) -> Grid:
        """Grid of uniform position axes, given as ``name=(min, max, n)``.

        Keyword order is axis order.
        """
        built = []
        for name, spec in axes.items():
            try:
                lo, hi, n = spec
            except (TypeError, ValueError):
                raise InputError(f"axis {name!r} must be given as (min, max, n), got {spec!r}") from None
            built.append(Axis.uniform(name, lo, hi, n))
        return cls(built)

    # Sequence protocol -------------------------------------------------------
    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            return self.axis(key)
        return self._axes[key]

    def __len__(self) -> int:
        return len(self._axes)

    def __iter__(self) -> Iterator[Axis]:
        return iter(self._axes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Grid) and self._axes == other._axes

    def __hash__(self) -> int:
        return hash(self._axes)

    def __repr__(self) -> str:
        return "Grid(" + ", ".join(repr(a) for a in self._axes) + ")"

    # Geometry ---------------------------------------------------------------
    def axis(self, name: str) -> Axis:
        """The axis called ``name``."""
        for a in self._axes:
            if a.name == name:
                return a
        raise InputError(f"grid has no axis {name!r}; axes are {list(self.names)}")

    def index(self, name: str) -> int:
        """Position of axis ``name`` in the storage order."""
        return self.names.index(self.axis(name).name)

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self._axes)

    @property
    def names(self) -> tuple[str, ...]:
        """Axis names in storage order."""
        return tuple(a.name for a in self._axes)

    @property
    def position_names(self) -> tuple[str, ...]:
        """Names of the position (θ) axes."""
        return tuple(a.name for a in self._axes if a.kind == "position")

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of cells per axis."""
        return tuple(a.n for a in self._axes)

    @property
    def size(self) -> int:
        """Total number of cells."""
        return int(np.prod(self.shape))

    @property
    def coords(self) -> dict[str, np.ndarray]:
        """Cell centres per axis name (for xarray coordinates)."""
        return {a.name: a.centers for a in self._axes}

    def mesh(self) -> tuple[np.ndarray, ...]:
        """Cell-centre coordinates as broadcastable arrays (sparse meshgrid)."""
        return tuple(np.meshgrid(*(a.centers for a in self._axes), indexing="ij", sparse=True))

    @cached_property
    def cell_volumes(self) -> np.ndarray:
        """Cell volumes as an array of shape ``grid.shape``."""
        vol = np.ones(self.shape)
        for i, a in enumerate(self._axes):
            vol = vol * broadcast_along(a.widths, i, self.ndim)
        vol.setflags(write=False)
        return vol

    def integrate(self, field: np.ndarray) -> float | np.ndarray:
        """Integral of a cell field (midpoint rule); leading extra dims are kept."""
        field = np.asarray(field)
        axes = tuple(range(field.ndim - self.ndim, field.ndim))
        return np.sum(field * self.cell_volumes, axis=axes)

    def check_field(self, values: np.ndarray, what: str = "field") -> np.ndarray:
        """Return ``values`` as a float array of shape ``grid.shape`` or raise."""
        arr = np.asarray(values, dtype=float)
        if arr.shape == (self.size,):
            arr = arr.reshape(self.shape)
        if arr.shape != self.shape:
            raise InputError(f"{what} has shape {arr.shape}, expected the grid shape {self.shape}")
        return arr

    def locate(self, point: Sequence[float] | Mapping[str, float]) -> tuple[int, ...]:
        """Index of the cell containing ``point`` (a sequence in axis order or a name mapping)."""
        values = [point[a.name] for a in self._axes] if isinstance(point, Mapping) else list(point)
        if len(values) != self.ndim:
            raise InputError(f"point {list(values)} has {len(values)} coordinates, the grid has {self.ndim} axes")
        idx = []
        for a, v in zip(self._axes, values):
            if not a.lo <= v <= a.hi:
                raise InputError(f"point {a.name}={v} lies outside the grid [{a.lo}, {a.hi}]")
            idx.append(int(np.clip(np.searchsorted(a.faces, v, side="right") - 1, 0, a.n - 1)))
        return tuple(idx)


def broadcast_along(values: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """Reshape a 1-D array so that it broadcasts along ``axis`` of an ``ndim`` array."""
    shape = [1] * ndim
    shape[axis] = values.size
    return values.reshape(shape)
