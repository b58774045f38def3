r"""Landscapes known only as values on a rectilinear table, e.g. a network's loss on a 2-D slice.

A :class:`TabulatedLandscape` holds :math:`L` at the nodes of a tensor grid (uniform or not).
Its derivatives at the nodes come from findiff's fourth-order finite-difference stencils
(central inside, one-sided at the edges), and value, gradient and Hessian anywhere inside the
table are tensor-product cubic (not-a-knot) splines through the nodal tables. Both steps are fourth order
in the node spacing h for smooth L, so every quantity the solvers use is :math:`O(h^4)`
accurate; ``tests/test_tabulated.py`` measures the order.

The nodal derivative tables are computed once. Outside the table the landscape is undefined:
evaluating there raises :class:`~fpsolver.errors.InputError` naming the table's range, so a
solver grid must lie inside it (a node spacing finer than the solver's grid costs nothing
later).

A symbolic term (:meth:`TabulatedLandscape.plus`, e.g. weight decay) is added exactly, and
:meth:`~fpsolver.landscapes.Landscape.with_sharpness` rescales the table's coordinates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import sympy as sp
from findiff import Diff
from scipy.interpolate import NdBSpline, make_interp_spline

from .errors import InputError
from .expressions import lambdify
from .landscapes import Landscape

__all__ = ["TabulatedLandscape", "read_table"]

#: findiff accuracy order of the nodal derivative stencils.
STENCIL_ORDER = 4


class TabulatedLandscape(Landscape):
    r"""A loss given by its values on a rectilinear table of nodes.

    Parameters
    ----------
    coords
        Node coordinates per variable, by name and in variable order; each strictly
        increasing with at least 6 nodes (the fourth-order one-sided stencils need them).
    values
        :math:`L` at the nodes, shape ``(len(coords[v0]), len(coords[v1]), ...)``; finite.
    description
        Human-readable description (output metadata).
    term
        An exact symbolic term in the variables added to the table (default 0).
    """

    MIN_NODES = 6

    def __init__(self, coords: Mapping[str, Sequence[float]], values: np.ndarray, description: str | None = None, term: sp.Expr = sp.Integer(0)):
        nodes = {str(k): np.asarray(v, dtype=float) for k, v in coords.items()}
        table = np.asarray(values, dtype=float)
        _check_table(nodes, table)
        super().__init__(term, tuple(nodes), description or f"table of {table.size} values over {list(nodes)}")
        self.nodes, self.table = nodes, table

    # Composition: act on the table's coordinates or on the exact term ------------------------
    def with_sharpness(self, k: float) -> Landscape:
        r""":math:`L(\sqrt{k}\,\theta)`: the same values at nodes :math:`\theta/\sqrt{k}`."""
        sharp = super().with_sharpness(k)  # validates k and rescales the exact term
        root = float(np.sqrt(k))
        return TabulatedLandscape({v: c / root for v, c in self.nodes.items()}, self.table, sharp.description, sharp.expr)

    def plus(self, term: sp.Expr, description: str) -> Landscape:
        return TabulatedLandscape(self.nodes, self.table, description, self.expr + term)

    def cross_derivatives_vanish(self) -> bool:
        """True when every mixed second derivative is zero (to 1e-12 of the largest second derivative)."""
        n = len(self.variables)
        scale = max(float(np.abs(self._nodal_hessian[i][i]).max()) for i in range(n)) or 1.0
        mixed = [np.abs(self._nodal_hessian[i][j]).max() for i in range(n) for j in range(i + 1, n)]
        return super().cross_derivatives_vanish() and all(m <= 1e-12 * scale for m in mixed)

    # Evaluation ---------------------------------------------------------------------------------
    @cached_property
    def _nodal_gradient(self) -> list[np.ndarray]:
        return [self._stencil(i)(self.table) for i in range(len(self.variables))]

    @cached_property
    def _nodal_hessian(self) -> list[list[np.ndarray]]:
        n = len(self.variables)
        return [[(self._stencil(i) ** 2 if i == j else self._stencil(i) * self._stencil(j))(self.table) for j in range(n)] for i in range(n)]

    def _stencil(self, axis: int) -> Diff:
        return Diff(axis, self.nodes[self.variables[axis]], acc=STENCIL_ORDER)

    def _interpolant(self, table: np.ndarray, exact: sp.Expr) -> Callable[..., np.ndarray]:
        return _TablePlusTerm(_cubic_spline(self.nodes, table), lambdify(exact, self.variables), self.nodes)

    @cached_property
    def _value(self) -> Callable[..., np.ndarray]:
        return self._interpolant(self.table, self.expr)

    @cached_property
    def _gradient(self) -> list[Callable[..., np.ndarray]]:
        syms = [sp.Symbol(v, real=True) for v in self.variables]
        return [self._interpolant(g, sp.diff(self.expr, s)) for g, s in zip(self._nodal_gradient, syms)]

    @cached_property
    def _hessian(self) -> list[list[Callable[..., np.ndarray]]]:
        syms = [sp.Symbol(v, real=True) for v in self.variables]
        return [[self._interpolant(h, sp.diff(self.expr, a, b)) for h, b in zip(row, syms)] for row, a in zip(self._nodal_hessian, syms)]

    def __repr__(self) -> str:
        shape = "x".join(str(c.size) for c in self.nodes.values())
        return f"TabulatedLandscape({shape} nodes over {list(self.variables)})"


def _cubic_spline(nodes: Mapping[str, np.ndarray], table: np.ndarray) -> NdBSpline:
    """The tensor-product cubic (not-a-knot) spline through a nodal table, by exact banded solves
    along one axis after the other (scipy's RegularGridInterpolator 'cubic' solves iteratively to
    a loose tolerance and measured O(h) here)."""
    coefficients, knots = table, []
    for axis, c in enumerate(nodes.values()):
        spline = make_interp_spline(c, coefficients, k=3, axis=axis)
        coefficients = np.moveaxis(spline.c, 0, axis)
        knots.append(spline.t)
    return NdBSpline(tuple(knots), coefficients, 3)


class _TablePlusTerm:
    """A cubic interpolant of a nodal table plus a compiled exact term, refusing points outside the table."""

    def __init__(self, interpolant: NdBSpline, term: Callable[..., np.ndarray], nodes: Mapping[str, np.ndarray]):
        self.interpolant, self.term, self.nodes = interpolant, term, nodes

    def __call__(self, *theta: np.ndarray) -> np.ndarray:
        shape = np.broadcast_shapes(*(np.shape(t) for t in theta))
        points = np.stack([np.broadcast_to(np.asarray(t, dtype=float), shape).ravel() for t in theta], axis=-1)
        for k, (name, c) in enumerate(self.nodes.items()):
            outside = (points[:, k] < c[0]) | (points[:, k] > c[-1])
            if outside.any():
                raise InputError(f"the tabulated landscape is defined for {name} in [{c[0]:g}, {c[-1]:g}]; it was evaluated at {name}={points[outside, k][0]:g}")
        return self.interpolant(points).reshape(shape) + self.term(*theta)


def _check_table(nodes: Mapping[str, np.ndarray], table: np.ndarray) -> None:
    if not nodes:
        raise InputError("a tabulated landscape needs at least one coordinate array")
    for name, c in nodes.items():
        if c.ndim != 1 or c.size < TabulatedLandscape.MIN_NODES:
            raise InputError(f"table coordinates {name!r} must be a 1-D array of at least {TabulatedLandscape.MIN_NODES} nodes, got shape {c.shape}")
        if not np.all(np.isfinite(c)) or not np.all(np.diff(c) > 0):
            raise InputError(f"table coordinates {name!r} must be finite and strictly increasing")
    expected = tuple(c.size for c in nodes.values())
    if table.shape != expected:
        raise InputError(f"the table's values have shape {table.shape}; the coordinates {list(nodes)} need {expected}")
    bad = ~np.isfinite(table)
    if bad.any():
        first = np.argwhere(bad)[0]
        at = ", ".join(f"{n}={c[i]:g}" for (n, c), i in zip(nodes.items(), first))
        raise InputError(f"the table's values are not finite at {at} (and at {int(bad.sum()) - 1} more nodes)")


def read_table(path: str | Path, variables: Sequence[str], values: str = "loss") -> TabulatedLandscape:
    """A tabulated landscape from a ``.npz`` file: one coordinate array per variable and the values.

    Parameters
    ----------
    path
        The ``.npz`` file.
    variables
        Names of the coordinate arrays, in variable order (they become the landscape's variables).
    values
        Name of the array of values, shape ``(len(coords[v0]), len(coords[v1]), ...)``.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise InputError(f"table file {str(path)!r}: use a .npz file (one array per coordinate and one of values)")
    if not path.is_file():
        raise InputError(f"table file {str(path)!r} does not exist")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"table file {str(path)!r} cannot be read: {exc}") from None
    with archive:
        missing = [k for k in (*variables, values) if k not in archive.files]
        if missing:
            raise InputError(f"table file {str(path)!r} has no arrays {missing}; it has {sorted(archive.files)}")
        coords = {v: archive[v] for v in variables}
        table = archive[values]
    return TabulatedLandscape(coords, table, description=f"table {values!r} of {path.name}")
