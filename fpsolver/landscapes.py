r"""Loss landscapes :math:`L(\theta)` with exact gradients and Hessians.

Every landscape is a sympy expression in named variables; value, gradient and
Hessian are compiled to vectorised numpy functions. Landscapes come from a safe
expression string (:meth:`Landscape.from_expression`) or from the library
(:func:`library` / the classmethods), all of which build their formula
symbolically, so derivatives are exact.

Library
-------
quadratic
    :math:`L = \tfrac12 (\theta - c)^\top H (\theta - c)`.
double_well
    :math:`L = h\,((x/w)^2 - 1)^2 + \tau x` (minima near :math:`\pm w`, barrier
    :math:`h` at 0 when the tilt :math:`\tau = 0`).
cubic_well
    :math:`L = h\,(3u^2 - 2u^3)`, :math:`u = x/w`: metastable minimum at 0,
    barrier :math:`h` at :math:`x = w`, :math:`L'' = \pm 6h/w^2` there.
styblinski_tang
    :math:`L = \tfrac12 \sum_i (\theta_i^4 - 16\theta_i^2 + 5\theta_i)`.

Any landscape can be made sharper by :meth:`Landscape.with_sharpness`,
:math:`L_k(\theta) = L(\sqrt{k}\,\theta)` (every Hessian times k, barrier fixed).

Data-driven landscapes
----------------------
A landscape may also be the mean of a per-sample loss over the rows of a data set,
:math:`L(\theta) = \frac1N\sum_r \ell(\theta; z_r)` (``data=`` columns by name). The
expression is then the per-sample loss :math:`\ell`: derivatives stay exact (they are taken
of ℓ and averaged, since the mean is linear), sharpening and added terms act on ℓ, and
evaluation averages the compiled ℓ over the rows in chunks, so N can be large without a
symbolic sum of N terms.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import sympy as sp

from .errors import InputError
from .expressions import lambdify, parse_expression

__all__ = ["Landscape", "library", "LIBRARY"]


class Landscape:
    """A loss function of named variables, with exact derivatives.

    Parameters
    ----------
    expr
        sympy expression of the loss.
    variables
        Variable names, in the order used by :meth:`gradient` and :meth:`hessian`.
    description
        Human-readable description (kept in output metadata).
    data
        Optional data columns by name (equal-length 1-D arrays): ``expr`` is then a
        per-sample loss in the variables and these columns, and the landscape is its mean
        over the rows.
    """

    #: Points × data rows compiled at once when averaging over data (bounds temporary memory).
    CHUNK = 2_000_000

    def __init__(self, expr: sp.Expr, variables: Sequence[str], description: str | None = None, data: Mapping[str, np.ndarray] | None = None):
        variables = tuple(variables)
        if not variables:
            raise InputError("a landscape needs at least one variable")
        if not isinstance(expr, sp.Expr):
            raise InputError(f"a landscape needs a sympy expression, got {type(expr).__name__}")
        self.data = _data_columns(data, variables)
        free = {s.name for s in expr.free_symbols}
        extra = free - set(variables) - set(self.data)
        if extra:
            raise InputError(f"landscape uses names {sorted(extra)} that are not among its variables {list(variables)}" + (f" nor its data columns {sorted(self.data)}" if self.data else ""))
        # Derivatives are taken with respect to Symbol(name, real=True); a user's plain
        # Symbol("x") is a different symbol to sympy, so normalise every symbol by its name.
        expr = expr.xreplace({s: sp.Symbol(s.name, real=True) for s in expr.free_symbols if isinstance(s, sp.Symbol)})
        self.expr = expr
        self.variables = variables
        self.description = description or str(expr)

    # Constructors -------------------------------------------------------------
    @classmethod
    def from_expression(cls, text: str, variables: Sequence[str] | None = None) -> Landscape:
        """Landscape from a formula string, parsed safely (never evaluated).

        Parameters
        ----------
        text
            Formula in Python syntax, e.g. ``"x**4/4 - x**2/2"``.
        variables
            Variable names. By default the names used in ``text``, sorted.
        """
        expr = parse_expression(text, variables)
        if variables is None:
            variables = sorted(s.name for s in expr.free_symbols) or ["x"]
        return cls(expr, variables, description=text.strip())

    @classmethod
    def quadratic(
        cls,
        hessian: float | Sequence[float] | Sequence[Sequence[float]],
        center: Sequence[float] | None = None,
        variables: Sequence[str] | None = None,
    ) -> Landscape:
        r""":math:`\tfrac12(\theta-c)^\top H(\theta-c)`; ``hessian`` may be a scalar, a diagonal or a matrix."""
        h = np.asarray(hessian, dtype=float)
        if h.ndim == 0:
            n = len(variables) if variables is not None else 1
            h = h * np.eye(n)
        elif h.ndim == 1:
            h = np.diag(h)
        if h.ndim != 2 or h.shape[0] != h.shape[1]:
            raise InputError(f"quadratic: hessian must be a scalar, a vector or a square matrix, got shape {h.shape}")
        if not np.allclose(h, h.T):
            raise InputError("quadratic: hessian must be symmetric")
        n = h.shape[0]
        names = tuple(variables) if variables is not None else _default_names(n)
        if len(names) != n:
            raise InputError(f"quadratic: {len(names)} variables for a {n}x{n} hessian")
        c = np.zeros(n) if center is None else np.asarray(center, dtype=float)
        if c.shape != (n,):
            raise InputError(f"quadratic: center needs {n} values, got {c.size}")
        d = sp.Matrix([sp.Symbol(v, real=True) - sp.nsimplify(ci) for v, ci in zip(names, c)])
        hm = sp.Matrix(n, n, lambda i, j: sp.nsimplify(h[i, j]))
        expr = sp.expand((d.T * hm * d)[0, 0] / 2)
        return cls(expr, names, description=f"quadratic(hessian={h.tolist()}, center={c.tolist()})")

    @classmethod
    def double_well(cls, height: float = 0.25, width: float = 1.0, tilt: float = 0.0, variable: str = "x") -> Landscape:
        r""":math:`h((x/w)^2-1)^2 + \tau x`; the default is :math:`x^4/4 - x^2/2 + 1/4` (minima at 0)."""
        _positive(height=height, width=width)
        x = sp.Symbol(variable, real=True)
        expr = _num(height) * ((x / _num(width)) ** 2 - 1) ** 2 + _num(tilt) * x
        return cls(expr, (variable,), description=f"double_well(height={height}, width={width}, tilt={tilt})")

    @classmethod
    def cubic_well(cls, height: float = 1.0, width: float = 1.0, variable: str = "x") -> Landscape:
        r""":math:`h(3u^2 - 2u^3)`, :math:`u = x/w`: minimum at 0, barrier :math:`h` at :math:`x = w`."""
        _positive(height=height, width=width)
        u = sp.Symbol(variable, real=True) / _num(width)
        return cls(_num(height) * (3 * u**2 - 2 * u**3), (variable,), description=f"cubic_well(height={height}, width={width})")

    @classmethod
    def styblinski_tang(cls, variables: Sequence[str] = ("x", "y")) -> Landscape:
        r""":math:`\tfrac12\sum_i(\theta_i^4 - 16\theta_i^2 + 5\theta_i)` in the given variables."""
        names = tuple(variables)
        syms = [sp.Symbol(v, real=True) for v in names]
        expr = sp.Rational(1, 2) * sum(s**4 - 16 * s**2 + 5 * s for s in syms)
        return cls(expr, names, description=f"styblinski_tang(variables={list(names)})")

    def with_sharpness(self, k: float) -> Landscape:
        r"""The landscape :math:`L_k(\theta) = L(\sqrt{k}\,\theta)`: Hessians times ``k``, barriers unchanged."""
        _positive(sharpness=k)
        root = sp.sqrt(_num(k))
        subs = {sp.Symbol(v, real=True): root * sp.Symbol(v, real=True) for v in self.variables}
        return Landscape(self.expr.xreplace(subs), self.variables, description=f"{self.description} with sharpness {k}", data=self.data)

    def plus(self, term: sp.Expr, description: str) -> Landscape:
        """This landscape plus a term in its variables (e.g. a weight-decay penalty), described as given."""
        return Landscape(self.expr + term, self.variables, description=description, data=self.data)

    def cross_derivatives_vanish(self) -> bool:
        """True when every mixed second derivative is identically zero (a separable landscape).

        Decided symbolically on the expression (for data landscapes on the per-sample loss,
        which is sufficient: a zero mixed derivative of every row has a zero mean).
        """
        return self._separable

    @cached_property
    def _separable(self) -> bool:
        syms = [sp.Symbol(v, real=True) for v in self.variables]
        return all(sp.diff(self.expr, a, b) == 0 for i, a in enumerate(syms) for b in syms[i + 1 :])

    # Evaluation -----------------------------------------------------------------
    def _compile(self, expr: sp.Expr) -> Callable[..., np.ndarray]:
        """A numpy function of the variables: ``expr`` itself, or its mean over the data rows."""
        if not self.data:
            return lambdify(expr, self.variables)
        return _RowMean(lambdify(expr, self.variables + tuple(self.data)), list(self.data.values()), self.CHUNK)

    @cached_property
    def _value(self) -> Callable[..., np.ndarray]:
        return self._compile(self.expr)

    @cached_property
    def _gradient(self) -> list[Callable[..., np.ndarray]]:
        return [self._compile(sp.diff(self.expr, sp.Symbol(v, real=True))) for v in self.variables]

    @cached_property
    def _hessian(self) -> list[list[Callable[..., np.ndarray]]]:
        syms = [sp.Symbol(v, real=True) for v in self.variables]
        return [[self._compile(sp.diff(self.expr, a, b)) for b in syms] for a in syms]

    def _args(self, coords: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> list[np.ndarray]:
        if isinstance(coords, Mapping):
            missing = [v for v in self.variables if v not in coords]
            if missing:
                raise InputError(f"landscape variables {missing} are not among the coordinates {list(coords)}")
            return [np.asarray(coords[v], dtype=float) for v in self.variables]
        if len(coords) != len(self.variables):
            raise InputError(f"landscape of {list(self.variables)} called with {len(coords)} coordinates")
        return [np.asarray(c, dtype=float) for c in coords]

    def value(self, *coords: np.ndarray, **named: np.ndarray) -> np.ndarray:
        """L at the given coordinates (positional in variable order, or by name)."""
        args = self._args(named if named else coords)
        shape = np.broadcast_shapes(*(a.shape for a in args))
        return np.broadcast_to(self._value(*args), shape)

    __call__ = value

    def gradient(self, *coords: np.ndarray, **named: np.ndarray) -> np.ndarray:
        """∇L, shape ``(nvar, *broadcast shape)``."""
        args = self._args(named if named else coords)
        shape = np.broadcast_shapes(*(a.shape for a in args))
        return np.stack([np.broadcast_to(g(*args), shape) for g in self._gradient])

    def hessian(self, *coords: np.ndarray, **named: np.ndarray) -> np.ndarray:
        """∇²L, shape ``(nvar, nvar, *broadcast shape)``."""
        args = self._args(named if named else coords)
        shape = np.broadcast_shapes(*(a.shape for a in args))
        return np.stack([np.stack([np.broadcast_to(h(*args), shape) for h in row]) for row in self._hessian])

    def hessian_diagonal(self, *coords: np.ndarray, **named: np.ndarray) -> np.ndarray:
        """The diagonal of ∇²L, shape ``(nvar, *broadcast shape)`` (n evaluations instead of n²)."""
        args = self._args(named if named else coords)
        shape = np.broadcast_shapes(*(a.shape for a in args))
        return np.stack([np.broadcast_to(row[i](*args), shape) for i, row in enumerate(self._hessian)])

    def __repr__(self) -> str:
        return f"Landscape({self.description!r}, variables={list(self.variables)})"


class _RowMean:
    """The mean over data rows of a compiled per-sample function ``f(*theta, *columns)``."""

    def __init__(self, function: Callable[..., np.ndarray], columns: list[np.ndarray], chunk: int):
        self.function, self.columns, self.chunk = function, columns, chunk

    def __call__(self, *theta: np.ndarray) -> np.ndarray:
        shape = np.broadcast_shapes(*(np.shape(t) for t in theta))
        flat = [np.broadcast_to(np.asarray(t, dtype=float), shape).reshape(-1, 1) for t in theta]
        points, rows = flat[0].shape[0], self.columns[0].size
        total = np.zeros(points)
        step = max(1, self.chunk // max(points, 1))
        for start in range(0, rows, step):
            block = [c[None, start : start + step] for c in self.columns]
            total += np.broadcast_to(self.function(*flat, *block), (points, block[0].shape[1])).sum(axis=1)
        return (total / rows).reshape(shape)


def _data_columns(data: Mapping[str, Any] | None, variables: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Validated data columns: finite, 1-D, of one non-zero length, not named like a variable."""
    if not data:
        return {}
    columns = {str(k): np.asarray(v, dtype=float) for k, v in data.items()}
    clash = sorted(set(columns) & set(variables))
    if clash:
        raise InputError(f"data columns {clash} have the names of landscape variables")
    if any(c.ndim != 1 for c in columns.values()) or len({c.size for c in columns.values()}) != 1:
        raise InputError(f"data columns {sorted(columns)} must be 1-D and of one length")
    if next(iter(columns.values())).size == 0:
        raise InputError("the data have no rows")
    bad = sorted(k for k, c in columns.items() if not np.all(np.isfinite(c)))
    if bad:
        raise InputError(f"data columns {bad} contain NaN or infinite values")
    return columns


def _default_names(n: int) -> tuple[str, ...]:
    return ("x", "y", "z")[:n] if n <= 3 else tuple(f"x{i}" for i in range(n))


def _num(value: float) -> sp.Expr:
    """Exact sympy number for a float (keeps derivatives free of round-off)."""
    return sp.nsimplify(value, rational=True) if float(value) == round(float(value), 12) else sp.Float(value)


def _positive(**values: float) -> None:
    for key, value in values.items():
        if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
            raise InputError(f"{key} must be a positive number, got {value!r}")


#: Library landscapes by YAML ``kind``.
LIBRARY: dict[str, Callable[..., Landscape]] = {
    "quadratic": Landscape.quadratic,
    "double_well": Landscape.double_well,
    "cubic_well": Landscape.cubic_well,
    "styblinski_tang": Landscape.styblinski_tang,
}


def library(kind: str, **params: Any) -> Landscape:
    """Build a library landscape by name (see the module docstring for the list)."""
    try:
        factory = LIBRARY[kind]
    except KeyError:
        raise InputError(f"unknown landscape kind {kind!r}; choose one of {', '.join(LIBRARY)}") from None
    try:
        return factory(**params)
    except TypeError as exc:
        raise InputError(f"landscape {kind}: {exc}") from None
