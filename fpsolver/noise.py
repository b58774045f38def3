r"""Gradient-noise models: the per-sample covariance :math:`\Sigma(\theta)` of a stochastic gradient.

A minibatch of size :math:`B` averages :math:`B` independent per-sample gradients, so the
minibatch gradient :math:`g = \nabla L + \xi` has noise covariance

.. math::

    C(\theta) = \operatorname{Cov}[\xi] = \Sigma(\theta) / B .

Every noise model here gives :math:`\Sigma`; :meth:`NoiseModel.covariance` divides by the
batch size, which belongs to the optimizer (:mod:`fpsolver.optimizers`).

========================  ===============================================================
model                     per-sample covariance :math:`\Sigma(\theta)`
========================  ===============================================================
:class:`WhiteNoise`       :math:`\sigma^2 I`
:class:`HessianNoise`     :math:`|H(\theta)| + \delta I`, :math:`|H| = V|\Lambda|V^\top`
:class:`CovarianceNoise`  a symmetric matrix of expressions in θ
:class:`EmpiricalNoise`   :math:`\overline{\nabla\ell\nabla\ell^\top} - \nabla L\nabla L^\top` from a per-sample loss and data
========================  ===============================================================

:class:`HessianNoise` is the near-minimum approximation :math:`C \approx H/B` (Xie, Sato,
Sugiyama, ICLR 2021) extended to the whole landscape with :math:`|H|` (positive
semi-definite) and regularised by :math:`\delta > 0`: :math:`|L''|` vanishes at inflection
points, where the diffusion would otherwise vanish; escape exponents depend on δ, so it is
recorded in :meth:`NoiseModel.describe`.

Covariances are arrays of shape ``(n, n, *points_shape)`` over the landscape's variables
in their order; :func:`field_spec` turns one into a spec for
:class:`fpsolver.fields.MatrixField`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp

from .errors import InputError
from .expressions import lambdify, parse_expression
from .landscapes import Landscape

__all__ = ["NoiseModel", "WhiteNoise", "HessianNoise", "CovarianceNoise", "EmpiricalNoise", "NOISES", "field_spec"]

Points = Mapping[str, np.ndarray]
CovarianceFunction = Callable[[Points], np.ndarray]


def _positive_number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
        raise InputError(f"{what} must be a positive number, got {value!r}")
    return float(value)


def _batch(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return int(batch_size)


def _points_shape(landscape: Landscape, points: Points) -> tuple[int, ...]:
    missing = [v for v in landscape.variables if v not in points]
    if missing:
        raise InputError(f"noise: landscape variables {missing} are not among the coordinates {list(points)}")
    return np.broadcast_shapes(*(np.shape(points[v]) for v in landscape.variables))


class NoiseModel(ABC):
    """A per-sample gradient-noise covariance :math:`\\Sigma(\\theta)` (see the module docstring)."""

    @abstractmethod
    def per_sample(self, landscape: Landscape, points: Points) -> np.ndarray:
        r""":math:`\Sigma(\theta)` at ``points`` (axis name -> coordinates), shape ``(n, n, *shape)``."""

    @abstractmethod
    def is_diagonal(self, landscape: Landscape) -> bool:
        """True when :math:`\\Sigma` is diagonal everywhere for this landscape."""

    @abstractmethod
    def describe(self) -> dict[str, object]:
        """Plain metadata for output files."""

    def covariance(self, landscape: Landscape, points: Points, batch_size: int = 1) -> np.ndarray:
        r"""Minibatch covariance :math:`C = \Sigma / B`, shape ``(n, n, *shape)``."""
        return self.per_sample(landscape, points) / _batch(batch_size)

    def variances(self, landscape: Landscape, points: Points, batch_size: int = 1) -> np.ndarray:
        r"""The diagonal :math:`C_{ii} = \Sigma_{ii}/B`, shape ``(n, *shape)`` (what a diagonal Σ's sampler needs)."""
        return np.einsum("ii...->i...", self.covariance(landscape, points, batch_size))


class WhiteNoise(NoiseModel):
    r"""Isotropic, θ-independent noise :math:`\Sigma = \sigma^2 I`.

    Parameters
    ----------
    sigma
        Standard deviation :math:`\sigma > 0` of each per-sample gradient component.
    """

    def __init__(self, sigma: float):
        self.sigma = _positive_number(sigma, "WhiteNoise sigma")

    def per_sample(self, landscape: Landscape, points: Points) -> np.ndarray:
        shape = _points_shape(landscape, points)
        n = len(landscape.variables)
        return np.broadcast_to(self.sigma**2 * np.eye(n).reshape((n, n) + (1,) * len(shape)), (n, n) + shape).copy()

    def is_diagonal(self, landscape: Landscape) -> bool:
        return True

    def describe(self) -> dict[str, object]:
        return {"kind": "white", "sigma": self.sigma}

    def __repr__(self) -> str:
        return f"WhiteNoise(sigma={self.sigma})"


class HessianNoise(NoiseModel):
    r"""Hessian-shaped noise :math:`\Sigma = |H(\theta)| + \delta I`, :math:`|H| = V|\Lambda|V^\top`.

    Near a minimum of a loss that is a mean of per-sample losses, the gradient-noise
    covariance is approximately the Hessian (Fisher ≈ Hessian), so :math:`C \approx H/B`.
    The absolute value keeps Σ positive semi-definite away from minima (at saddles and
    barriers, where H has negative eigenvalues), and :math:`\delta > 0` keeps it definite
    at inflection points.

    Parameters
    ----------
    delta
        Regularisation :math:`\delta > 0`, in units of the Hessian.
    """

    def __init__(self, delta: float = 1e-3):
        self.delta = _positive_number(delta, "HessianNoise delta")

    def per_sample(self, landscape: Landscape, points: Points) -> np.ndarray:
        _points_shape(landscape, points)
        hess = landscape.hessian(**{v: points[v] for v in landscape.variables})
        n = hess.shape[0]
        if self.is_diagonal(landscape):
            out = np.zeros_like(hess)
            for i in range(n):
                out[i, i] = np.abs(hess[i, i]) + self.delta
            return out
        stack = np.moveaxis(hess.reshape(n, n, -1), -1, 0)
        w, v = np.linalg.eigh(stack)
        absolute = np.einsum("mij,mj,mkj->mik", v, np.abs(w) + self.delta, v)
        return np.moveaxis(absolute, 0, -1).reshape(hess.shape)

    def variances(self, landscape: Landscape, points: Points, batch_size: int = 1) -> np.ndarray:
        if not self.is_diagonal(landscape):
            return super().variances(landscape, points, batch_size)
        _points_shape(landscape, points)
        return (np.abs(landscape.hessian_diagonal(**{v: points[v] for v in landscape.variables})) + self.delta) / _batch(batch_size)

    def is_diagonal(self, landscape: Landscape) -> bool:
        return landscape.cross_derivatives_vanish()

    def describe(self) -> dict[str, object]:
        return {"kind": "hessian", "delta": self.delta}

    def __repr__(self) -> str:
        return f"HessianNoise(delta={self.delta})"


class CovarianceNoise(NoiseModel):
    r"""A given per-sample covariance :math:`\Sigma(\theta)`: a symmetric matrix of expressions.

    Parameters
    ----------
    matrix
        ``n``-by-``n`` nested list of numbers or expression strings in the landscape's
        variables (parsed safely), e.g. ``[["1 + x**2", "0.1"], ["0.1", "2"]]``; or a
        length-``n`` list for a diagonal matrix. Checked for symmetry here and for
        positive definiteness wherever it is evaluated.
    """

    def __init__(self, matrix: Sequence[Any]):
        arr = np.asarray(matrix, dtype=object)
        if arr.ndim == 1:
            n = arr.shape[0]
            full = np.full((n, n), "0", dtype=object)
            for i in range(n):
                full[i, i] = arr[i]
            arr = full
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
            raise InputError(f"CovarianceNoise needs a square matrix (or a diagonal list) of expressions, got {matrix!r}")
        self.matrix = [[str(e) for e in row] for row in arr]
        n = arr.shape[0]
        try:
            self._exprs = [[parse_expression(self.matrix[i][j]) for j in range(n)] for i in range(n)]
        except InputError as exc:
            raise InputError(f"CovarianceNoise: {exc}") from None
        for i in range(n):
            for j in range(i):
                if sp.simplify(self._exprs[i][j] - self._exprs[j][i]) != 0:
                    raise InputError(f"CovarianceNoise must be symmetric; entries [{i}][{j}] and [{j}][{i}] differ")
        self._functions: dict[tuple[str, ...], list[list[Callable[..., np.ndarray]]]] = {}

    @property
    def n(self) -> int:
        return len(self.matrix)

    def _check(self, landscape: Landscape) -> None:
        if self.n != len(landscape.variables):
            raise InputError(f"CovarianceNoise is {self.n}x{self.n} but the landscape has variables {list(landscape.variables)}")
        names = set(landscape.variables)
        for row in self._exprs:
            for e in row:
                extra = {s.name for s in e.free_symbols} - names
                if extra:
                    raise InputError(f"CovarianceNoise uses names {sorted(extra)} that are not landscape variables {list(landscape.variables)}")

    def per_sample(self, landscape: Landscape, points: Points) -> np.ndarray:
        self._check(landscape)
        shape = _points_shape(landscape, points)
        out = np.zeros((self.n, self.n) + shape)
        args = [np.asarray(points[v], dtype=float) for v in landscape.variables]
        functions = self._compiled(landscape.variables)
        for i in range(self.n):
            for j in range(self.n):
                out[i, j] = np.broadcast_to(functions[i][j](*args), shape)
        if not np.all(np.isfinite(out)):
            raise InputError("CovarianceNoise is not finite at some point")
        return out

    def _compiled(self, variables: tuple[str, ...]) -> list[list[Callable[..., np.ndarray]]]:
        if variables not in self._functions:
            self._functions[variables] = [[lambdify(e, variables) for e in row] for row in self._exprs]
        return self._functions[variables]

    def is_diagonal(self, landscape: Landscape) -> bool:
        return all(self._exprs[i][j] == 0 for i in range(self.n) for j in range(self.n) if i != j)

    def describe(self) -> dict[str, object]:
        return {"kind": "covariance", "matrix": self.matrix}

    def __repr__(self) -> str:
        return f"CovarianceNoise({self.matrix!r})"


class EmpiricalNoise(NoiseModel):
    r"""Gradient noise, and the loss itself, from a per-sample loss and a data set.

    With a per-sample loss :math:`\ell(\theta; z)` and data rows :math:`z_1, \dots, z_N`,

    .. math::

        L(\theta) = \frac1N\sum_r \ell(\theta; z_r), \qquad
        \Sigma(\theta) = \frac1N\sum_r \nabla\ell_r\nabla\ell_r^\top - \nabla L\,\nabla L^\top,

    so :math:`C = \Sigma/B` is the covariance of a minibatch of B samples drawn with
    replacement. Gradients of ℓ are exact (symbolic); :attr:`landscape` is L as a
    :class:`~fpsolver.landscapes.Landscape` (the mean written out symbolically, so keep N
    to a few thousand rows).

    Parameters
    ----------
    loss
        ℓ as an expression in the parameters and data column names, e.g.
        ``"log(1 + exp(-y*(w*x + b)))"``.
    data
        A ``.csv`` file with a header row, a ``.npz`` file (one array per column), or a
        mapping of column name -> 1-D array.
    parameters
        The parameter names (the landscape's variables, in order); every other name in
        ``loss`` must be a data column.
    """

    #: Rows × points evaluated at once (bounds the memory of one gradient evaluation).
    CHUNK = 2_000_000

    def __init__(self, loss: str, data: str | Path | Mapping[str, Sequence[float]], parameters: Sequence[str]):
        self.parameters = tuple(parameters)
        if not self.parameters:
            raise InputError("EmpiricalNoise needs at least one parameter name")
        try:
            expr = parse_expression(loss)
        except InputError as exc:
            raise InputError(f"EmpiricalNoise loss: {exc}") from None
        names = sorted(s.name for s in expr.free_symbols)
        unused = [p for p in self.parameters if p not in names]
        if unused:
            raise InputError(f"EmpiricalNoise: the loss does not depend on the parameters {unused}")
        self.source = str(data) if not isinstance(data, Mapping) else "<mapping>"
        table = _read_columns(data)
        self.columns = tuple(n for n in names if n not in self.parameters)
        missing = [c for c in self.columns if c not in table]
        if missing:
            raise InputError(f"EmpiricalNoise: the loss uses {missing}, which are not parameters {list(self.parameters)} nor columns {sorted(table)} of {self.source}")
        self.loss = loss
        description = f"mean over the rows of {self.source} of {loss}"
        try:
            self.landscape = Landscape(expr, self.parameters, description=description, data={c: table[c] for c in self.columns})
        except InputError as exc:
            raise InputError(f"EmpiricalNoise: {exc} in {self.source}") from None
        self.rows = np.stack([self.landscape.data[c] for c in self.columns]) if self.columns else np.zeros((0, 1))
        syms = [sp.Symbol(p, real=True) for p in self.parameters]
        self._gradient = [lambdify(sp.diff(expr, s), self.parameters + self.columns) for s in syms]

    def per_sample(self, landscape: Landscape, points: Points) -> np.ndarray:
        if tuple(landscape.variables) != self.parameters:
            raise InputError(f"EmpiricalNoise over {list(self.parameters)} used with a landscape of {list(landscape.variables)}")
        shape = _points_shape(landscape, points)
        theta = [np.broadcast_to(np.asarray(points[p], dtype=float), shape).reshape(-1, 1) for p in self.parameters]
        n, count = len(self.parameters), self.rows.shape[1]
        first = np.zeros((n,) + theta[0].shape[:1])
        second = np.zeros((n, n) + theta[0].shape[:1])
        step = max(1, self.CHUNK // max(theta[0].shape[0], 1))
        for start in range(0, count, step):
            cols = [r[None, start : start + step] for r in self.rows]
            grads = np.stack([np.broadcast_to(g(*theta, *cols), (theta[0].shape[0], cols[0].shape[1] if cols else 1)) for g in self._gradient])
            first += grads.sum(axis=-1)
            second += np.einsum("ipr,jpr->ijp", grads, grads)
        first /= count
        cov = second / count - first[:, None] * first[None, :]
        return cov.reshape((n, n) + shape)

    def is_diagonal(self, landscape: Landscape) -> bool:
        return len(self.parameters) == 1

    def describe(self) -> dict[str, object]:
        return {"kind": "empirical", "loss": self.loss, "data": self.source, "rows": int(self.rows.shape[1])}

    def __repr__(self) -> str:
        return f"EmpiricalNoise({self.loss!r}, {self.source!r}, parameters={list(self.parameters)})"


def _read_columns(data: str | Path | Mapping[str, Sequence[float]]) -> Mapping[str, Any]:
    """Columns of a .csv (header row) or .npz file, or a mapping, by name."""
    if isinstance(data, Mapping):
        return data
    path = Path(data)
    if not path.is_file():
        raise InputError(f"data file {str(path)!r} does not exist")
    if path.suffix == ".npz":
        with np.load(path) as archive:
            return {k: archive[k] for k in archive.files}
    if path.suffix == ".csv":
        try:
            table = np.genfromtxt(path, delimiter=",", names=True, dtype=float, encoding="utf-8")
        except ValueError as exc:
            raise InputError(f"data file {str(path)!r}: {exc}") from None
        if table.dtype.names is None:
            raise InputError(f"data file {str(path)!r} needs a header row of column names")
        return {k: np.atleast_1d(table[k]) for k in table.dtype.names}
    raise InputError(f"data file {str(path)!r}: use a .csv (with a header row) or a .npz file")


#: Noise kinds by name, for scenarios.
NOISES: dict[str, type[NoiseModel]] = {"white": WhiteNoise, "hessian": HessianNoise, "covariance": CovarianceNoise, "empirical": EmpiricalNoise}


class _LastCall:
    """A matrix function that remembers its last evaluation: the entries of one matrix field are
    requested one at a time on the same coordinate arrays, and each call computes every entry."""

    def __init__(self, function: CovarianceFunction):
        self.function = function
        self.coords: tuple[np.ndarray, ...] = ()
        self.value: np.ndarray | None = None

    def __call__(self, coords: Points) -> np.ndarray:
        arrays = tuple(coords.values())
        if self.value is None or len(arrays) != len(self.coords) or any(a is not b for a, b in zip(arrays, self.coords)):
            self.value, self.coords = self.function(coords), arrays  # holding the arrays keeps their identity unique
        return self.value


class _Entry:
    """One entry (i, j) of a matrix function, called with the axis coordinates by name."""

    def __init__(self, function: CovarianceFunction, variables: tuple[str, ...], i: int, j: int, label: str):
        self.function, self.variables, self.i, self.j, self.label = function, variables, i, j, label

    def __call__(self, **coords: np.ndarray) -> np.ndarray:
        if tuple(coords) != self.variables:
            raise InputError(f"the grid's position axes {list(coords)} must be the landscape variables {list(self.variables)}, in this order")
        return self.function(coords)[self.i, self.j]

    def __repr__(self) -> str:
        return f"{self.label}[{self.i}][{self.j}]"


def field_spec(function: CovarianceFunction, variables: Sequence[str], diagonal: bool, label: str = "field") -> list[Any]:
    r"""A :class:`~fpsolver.fields.MatrixField` spec for a matrix function of θ.

    Parameters
    ----------
    function
        Maps points (axis name -> coordinates) to matrices of shape ``(n, n, *shape)``
        indexed by ``variables`` in order.
    variables
        The landscape's variables; the grid's position axes must be exactly these, in
        this order (checked on every call, since a reordering would permute entries).
    diagonal
        Give a diagonal spec (length-``n`` list) instead of an ``n``-by-``n`` one.
    label
        Name shown for each entry in model descriptions (output metadata).

    Returns
    -------
    list
        Callables of the axis coordinates (by name), one per entry; symmetric entries
        share one callable, as MatrixField's symmetry check requires.
    """
    variables = tuple(variables)
    n = len(variables)
    function = _LastCall(function)
    if diagonal:
        return [_Entry(function, variables, i, i, label) for i in range(n)]
    shared = {(i, j): _Entry(function, variables, i, j, label) for i in range(n) for j in range(i, n)}
    return [[shared[(min(i, j), max(i, j))] for j in range(n)] for i in range(n)]
