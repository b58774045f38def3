r"""Safe parsing of formula strings from scenario files and the Python API.

Expressions such as ``"x**4/4 - x**2/2"`` are parsed with :mod:`ast` and
translated node by node into a sympy expression. Only numbers, the allowed
variable names, the constants ``pi`` and ``e``, arithmetic operators and a fixed
list of functions are accepted; everything else (attribute access, subscripts,
strings, calls of anything not listed, lambdas, comprehensions...) is rejected
with an :class:`~fpsolver.errors.ExpressionError`. Nothing is ever passed to
``eval``; ``sympy.sympify`` is not used because it evaluates its input.

Boolean expressions (``"x >= 1 and y < 0"``) are parsed the same way into a
sympy relational, for target regions.

Constant folding is bounded: every constant sub-expression must be a finite real
number within double-precision range (:data:`FLOAT_MAX`). A power of two
constants is checked *before* sympy evaluates it, from
:math:`\log_{10}|a^b| = b\,\log_{10}|a|`, so a power tower such as
``9**9**9**9`` is refused in microseconds instead of computing a number with
hundreds of millions of digits. Division by zero, ``log(0)``, ``sqrt(-1)`` and
the like are refused with the column of the offending operation.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence

import numpy as np
import sympy as sp
from sympy.codegen.rewriting import create_expand_pow_optimization, optimize

from .errors import ExpressionError

__all__ = ["parse_expression", "parse_condition", "lambdify", "FUNCTIONS", "MAX_LENGTH", "FLOAT_MAX"]

#: Longest accepted expression (characters); longer input is rejected before parsing.
MAX_LENGTH = 2000

#: Largest magnitude a constant (sub-)expression may have: the largest double.
FLOAT_MAX = float(np.finfo(float).max)

#: Functions an expression may call, by name.
FUNCTIONS: dict[str, Callable[..., sp.Expr]] = {
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "sin": sp.sin,
    "cos": sp.cos,
    "tan": sp.tan,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "tanh": sp.tanh,
    "arctan": sp.atan,
    "atan": sp.atan,
    "abs": sp.Abs,
    "sign": sp.sign,
    "min": sp.Min,
    "max": sp.Max,
    "erf": sp.erf,
}

_CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "e": sp.E}

_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}

_COMPARE = {
    ast.Lt: sp.StrictLessThan,
    ast.LtE: sp.LessThan,
    ast.Gt: sp.StrictGreaterThan,
    ast.GtE: sp.GreaterThan,
}


class _Translator:
    """Translate a whitelisted Python AST into sympy."""

    def __init__(self, text: str, variables: Sequence[str] | None, boolean: bool):
        self.text = text
        self.variables = None if variables is None else tuple(variables)
        self.boolean = boolean

    def fail(self, message: str, node: ast.AST | None = None) -> ExpressionError:
        column = getattr(node, "col_offset", None)
        return ExpressionError(message, self.text, column)

    def __call__(self, node: ast.AST) -> sp.Basic:
        if isinstance(node, ast.Expression):
            return self(node.body)
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.fail(f"only numbers are allowed as constants, not {value!r}", node)
            if isinstance(value, int) and value.bit_length() > 1024 or not math.isfinite(value):
                raise self.fail(f"the number is beyond the double-precision range (±{FLOAT_MAX:.3g})", node)
            return sp.Integer(value) if isinstance(value, int) else sp.Float(value)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp):
            op = _BINARY.get(type(node.op))
            if op is None:
                hints = {ast.BitXor: " (use ** for powers)", ast.BitOr: " (combine conditions with 'or')", ast.BitAnd: " (combine conditions with 'and')"}
                hint = hints.get(type(node.op), "")
                raise self.fail(f"operator {type(node.op).__name__} is not allowed{hint}", node)
            left, right = self.number(node.left), self.number(node.right)
            if isinstance(node.op, ast.Div) and right.is_zero:
                raise self.fail("division by zero", node)
            if isinstance(node.op, ast.Pow):
                self.check_power(left, right, node)
            return self.bounded(op(left, right), node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return -self.number(node.operand)  # bounded already: negation keeps the magnitude
            if isinstance(node.op, ast.UAdd):
                return self.number(node.operand)
            if isinstance(node.op, ast.Not) and self.boolean:
                return sp.Not(self.logical(node.operand))
            hint = " (negate a condition with 'not')" if isinstance(node.op, ast.Invert) else ""
            raise self.fail(f"unary operator {type(node.op).__name__} is not allowed{hint}", node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if self.boolean and isinstance(node, ast.Compare):
            return self.compare(node)
        if self.boolean and isinstance(node, ast.BoolOp):
            combine = sp.And if isinstance(node.op, ast.And) else sp.Or
            return combine(*(self.logical(v) for v in node.values))
        raise self.fail(f"{type(node).__name__} is not allowed in an expression", node)

    def check_power(self, base: sp.Expr, exponent: sp.Expr, node: ast.AST) -> None:
        r"""Refuse a constant power :math:`a^b` outside float range before sympy evaluates it.

        Both operands are already bounded constants, so :math:`b\log_{10}|a|` is a cheap
        float estimate of the result's decimal exponent.
        """
        if base.free_symbols or exponent.free_symbols:
            return
        a, b = complex(base), complex(exponent)
        if a.imag or b.imag:
            return  # a complex operand is refused by bounded()
        if a.real == 0.0:
            if b.real < 0:
                raise self.fail("division by zero (zero to a negative power)", node)
            return
        magnitude = b.real * math.log10(abs(a.real))
        if magnitude > math.log10(FLOAT_MAX):
            raise self.fail(f"the power is about 10**{magnitude:.3g}, beyond the double-precision range", node)

    def bounded(self, value: sp.Expr, node: ast.AST) -> sp.Expr:
        """Refuse constants that are infinite, undefined, complex or beyond float range."""
        if value.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
            raise self.fail("the value is infinite or undefined (division by zero?)", node)
        if not value.free_symbols:
            try:
                number = complex(value)
            except (TypeError, OverflowError):
                number = complex(math.inf)
            if number.imag:
                raise self.fail(f"the value {value} is not a real number", node)
            if not math.isfinite(number.real):
                raise self.fail(f"the value {value} is beyond the double-precision range (±{FLOAT_MAX:.3g})", node)
        return value

    def number(self, node: ast.AST) -> sp.Expr:
        value = self(node)
        if not isinstance(value, sp.Expr):
            raise self.fail("a comparison cannot be used as a number", node)
        return value

    def logical(self, node: ast.AST) -> sp.Basic:
        value = self(node)
        if isinstance(value, sp.Expr):
            raise self.fail("expected a comparison such as 'x >= 1'", node)
        return value

    def name(self, node: ast.Name) -> sp.Expr:
        ident = node.id
        if self.variables is not None and ident in self.variables:
            return sp.Symbol(ident, real=True)
        if ident in _CONSTANTS:
            return _CONSTANTS[ident]
        if self.variables is None and not ident.startswith("_") and ident not in FUNCTIONS:
            return sp.Symbol(ident, real=True)
        allowed = ", ".join(self.variables or ())
        raise self.fail(f"unknown name {ident!r} (variables: {allowed or 'none'}; constants: pi, e)", node)

    def call(self, node: ast.Call) -> sp.Expr:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise self.fail(f"only these functions may be called: {', '.join(sorted(FUNCTIONS))}", node)
        if node.keywords:
            raise self.fail("keyword arguments are not allowed", node)
        args = [self.number(a) for a in node.args]
        if not args:
            raise self.fail(f"{node.func.id}() needs an argument", node)
        try:
            value = FUNCTIONS[node.func.id](*args)
        except (TypeError, ValueError) as exc:
            raise self.fail(f"bad call of {node.func.id}: {exc}", node) from None
        return self.bounded(value, node)

    def compare(self, node: ast.Compare) -> sp.Basic:
        terms = [self.number(node.left)] + [self.number(c) for c in node.comparators]
        parts = []
        for op, left, right in zip(node.ops, terms[:-1], terms[1:]):
            rel = _COMPARE.get(type(op))
            if rel is None:
                raise self.fail(f"comparison {type(op).__name__} is not allowed (use <, <=, >, >=)", node)
            parts.append(rel(left, right))
        return sp.And(*parts) if len(parts) > 1 else parts[0]


def _parse(text: str, variables: Sequence[str] | None, boolean: bool) -> sp.Basic:
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise ExpressionError("expression is empty")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        column = exc.offset - 1 if exc.offset else None
        raise ExpressionError(f"syntax error ({exc.msg})", text, column) from None
    except ValueError as exc:  # e.g. a NUL character, which Python's parser refuses outright
        raise ExpressionError(f"not a formula ({exc})", text.replace("\x00", "\\x00")) from None
    return _Translator(text, variables, boolean)(tree)


def parse_expression(text: str, variables: Sequence[str] | None = None) -> sp.Expr:
    """Parse an arithmetic expression into sympy without evaluating any code.

    Parameters
    ----------
    text
        The formula, in Python syntax (``**`` for powers).
    variables
        Allowed variable names. ``None`` accepts any plain identifier as a variable.

    Returns
    -------
    sympy.Expr
        The expression; variables are real sympy symbols.
    """
    result = _parse(text, variables, boolean=False)
    if not isinstance(result, sp.Expr):
        raise ExpressionError("expected a number-valued expression, got a condition", text)
    return result


def parse_condition(text: str, variables: Sequence[str] | None = None) -> sp.Basic:
    """Parse a boolean condition such as ``"x >= 1 and y < 0"`` into sympy."""
    result = _parse(text, variables, boolean=True)
    if isinstance(result, sp.Expr):
        raise ExpressionError("expected a condition such as 'x >= 1'", text)
    return result


#: Integer powers up to this exponent are compiled as products (``x*x*x``, see :func:`lambdify`).
EXPANDED_POWER = 8

_EXPAND_POWERS = create_expand_pow_optimization(EXPANDED_POWER, base_req=lambda base: True)


def lambdify(expr: sp.Basic, variables: Sequence[str]) -> Callable[..., np.ndarray]:
    """Compile a sympy expression into a numpy function of ``variables``.

    The returned function broadcasts its arguments and always returns an array
    of their broadcast shape (constants are expanded). Integer powers
    :math:`b^n`, :math:`2 \\le |n| \\le` :data:`EXPANDED_POWER`, are computed as
    products: numpy's ``x**3`` calls ``pow`` (only ``**2`` has a fast path) and
    costs 35x a product of three on 20000 doubles (measured; benchmarks/README.md),
    while the product's rounding error, at most :math:`(n-1)` units in the last
    place, stays at round-off.
    """
    symbols = [sp.Symbol(v, real=True) for v in variables]
    raw = sp.lambdify(symbols, optimize(expr, [_EXPAND_POWERS]) if isinstance(expr, sp.Expr) else expr, modules="numpy")

    def evaluate(*coords: np.ndarray) -> np.ndarray:
        arrays = [np.asarray(c, dtype=float) for c in coords]
        shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
        with np.errstate(all="ignore"):
            value = np.asarray(raw(*arrays), dtype=float)
        return np.broadcast_to(value, shape).copy() if value.shape != shape else value

    return evaluate
