r"""Matrix-valued coefficient fields such as the mobility :math:`A(\theta)` and diffusion :math:`D(\theta)`.

A field is given by the user in one of these forms (``n`` = number of position axes):

=====================================  ==========================================
form                                   meaning
=====================================  ==========================================
number ``c``                           :math:`c\,I`
string ``"1 + x**2"``                  :math:`f(\theta)\,I`, parsed safely
callable ``f(x, y)``                   :math:`f(\theta)\,I` (keyword arguments by axis name)
length-``n`` list of the above         diagonal matrix, entry by entry
``n``-by-``n`` nested list of numbers  full constant matrix (symmetrised check)
or strings
=====================================  ==========================================

Fields are evaluated at arbitrary points (cell centres, faces) given as a
mapping from axis name to coordinate arrays and return arrays of shape
``(n, n, *points_shape)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Union

import numpy as np
import sympy as sp

from .errors import InputError
from .expressions import lambdify, parse_expression

__all__ = ["MatrixField", "FieldSpec"]

FieldSpec = Union[float, str, Callable[..., Any], Sequence[Any], np.ndarray]

Points = Mapping[str, np.ndarray]


class MatrixField:
    """A symmetric matrix field over the position axes ``dims``.

    Parameters
    ----------
    spec
        See the module docstring.
    dims
        Names of the position axes (matrix rows and columns, in order).
    what
        Name used in error messages (``"diffusion"``, ``"mobility"``).
    """

    def __init__(self, spec: FieldSpec, dims: Sequence[str], what: str):
        self.dims = tuple(dims)
        self.what = what
        n = len(self.dims)
        entries, self.structure = _entries(spec, n, what)
        self._functions: dict[tuple[int, int], Callable[[Points], np.ndarray]] = {}
        self.constant = True
        for (i, j), entry in entries.items():
            fn, const = _entry_function(entry, self.dims, f"{what}[{i}][{j}]" if self.structure == "full" else what)
            self._functions[(i, j)] = fn
            self.constant &= const
        if self.structure == "full":
            for i in range(n):
                for j in range(i):
                    if not _same_entry(entries[(i, j)], entries[(j, i)]):
                        raise InputError(f"{what} must be a symmetric matrix; entries [{i}][{j}] and [{j}][{i}] differ")
        if self.constant:
            self.check_positive(self(_origin(self.dims)))

    @property
    def is_diagonal(self) -> bool:
        """True for scalar and diagonal fields."""
        return self.structure != "full"

    def __call__(self, points: Points) -> np.ndarray:
        """The matrix at ``points``: shape ``(n, n, *shape)``."""
        shape = np.broadcast_shapes(*(np.shape(points[d]) for d in self.dims if d in points))
        n = len(self.dims)
        out = np.zeros((n, n) + shape)
        for (i, j), fn in self._functions.items():
            out[i, j] = np.broadcast_to(fn(points), shape)
            if self.structure == "scalar":
                for k in range(1, n):
                    out[k, k] = out[0, 0]
        if self.structure == "full":
            out = 0.5 * (out + np.swapaxes(out, 0, 1))
        return out

    def check_positive(self, values: np.ndarray, where: str = "") -> None:
        """Raise unless every matrix in ``values`` (shape ``(n, n, ...)``) is finite and positive definite."""
        if not np.all(np.isfinite(values)):
            raise InputError(f"{self.what} is not finite{where}")
        n = values.shape[0]
        if self.is_diagonal:
            smallest = np.min([values[i, i] for i in range(n)]) if n else 1.0
        else:
            mats = np.moveaxis(values.reshape(n, n, -1), -1, 0)
            smallest = np.min(np.linalg.eigvalsh(mats)[:, 0])
        if not smallest > 0:
            raise InputError(f"{self.what} must be positive definite{where}; its smallest eigenvalue is {smallest:g}")

    def derivative(self, points: Points, axis: int, step: np.ndarray | float) -> np.ndarray:
        r"""Central difference :math:`\partial_{\theta_{axis}}` of the field, shape ``(n, n, *shape)``."""
        if self.constant:
            shape = np.broadcast_shapes(*(np.shape(points[d]) for d in self.dims if d in points))
            return np.zeros((len(self.dims),) * 2 + shape)
        name = self.dims[axis]
        up = dict(points)
        down = dict(points)
        up[name] = points[name] + step
        down[name] = points[name] - step
        return (self(up) - self(down)) / (2.0 * step)


def _origin(dims: Sequence[str]) -> dict[str, np.ndarray]:
    return {d: np.zeros(1) for d in dims}


def _is_entry(value: Any) -> bool:
    return isinstance(value, (int, float, str, np.floating, np.integer)) or callable(value)


def _entries(spec: FieldSpec, n: int, what: str) -> tuple[dict[tuple[int, int], Any], Literal["scalar", "diagonal", "full"]]:
    if isinstance(spec, bool):
        raise InputError(f"{what} must be a number, an expression or a matrix, got {spec!r}")
    if _is_entry(spec):
        return {(0, 0): spec}, "scalar"
    arr = np.asarray(spec, dtype=object)
    if arr.ndim == 1 and arr.shape == (n,) and all(_is_entry(v) for v in arr):
        return {(i, i): arr[i] for i in range(n)}, "diagonal"
    if arr.ndim == 2 and arr.shape == (n, n) and all(_is_entry(v) for v in arr.ravel()):
        return {(i, j): arr[i, j] for i in range(n) for j in range(n)}, "full"
    raise InputError(
        f"{what} must be a number or expression, a list of {n} diagonal entries, or a {n}x{n} matrix "
        f"(one row/column per position axis); got {spec!r}"
    )


def _same_entry(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return str(a).replace(" ", "") == str(b).replace(" ", "")
    if callable(a) or callable(b):
        return a is b
    return bool(np.isclose(float(a), float(b), rtol=1e-12, atol=0.0))


def _entry_function(entry: Any, dims: tuple[str, ...], what: str) -> tuple[Callable[[Points], np.ndarray], bool]:
    """A function of the points for one matrix entry, and whether it is constant."""
    if isinstance(entry, str):
        try:
            expr = parse_expression(entry, dims)
        except InputError as exc:
            raise InputError(f"{what}: {exc}") from None
        if not expr.free_symbols:
            value = float(sp.N(expr))
            return (lambda points: np.asarray(value)), True
        used = tuple(sorted(s.name for s in expr.free_symbols))
        compiled = lambdify(expr, used)
        return (lambda points: compiled(*(points[d] for d in used))), False
    if callable(entry):
        def call(points: Points) -> np.ndarray:
            return np.asarray(entry(**{d: points[d] for d in dims}), dtype=float)
        return call, False
    try:
        value = float(entry)
    except (TypeError, ValueError):
        raise InputError(f"{what}: expected a number or an expression, got {entry!r}") from None
    return (lambda points: np.asarray(value)), True
