r"""Continuous-time models: coefficient fields, no solving.

Overdamped model
----------------
.. math::

    d\theta = -A(\theta)\nabla L\,dt + \sqrt{2D(\theta)}\,dW,

with mobility :math:`A` and diffusion :math:`D`. Given a temperature
:math:`T` instead of :math:`D`, the Einstein relation :math:`D = T A` is used.
When :math:`D` depends on θ the stochastic calculus matters; the probability
current of each ``convention`` is

=================  ================================================================
``ito``            :math:`J_i = b_i P - \sum_j \partial_j (D_{ij} P)`
``stratonovich``   :math:`J_i = b_i P - \sum_{jk} \sigma_{ik}\partial_j(\sigma_{jk} P)`, :math:`\sigma\sigma^\top = D`
``isothermal``     :math:`J_i = b_i P - \sum_j D_{ij}\partial_j P`
=================  ================================================================

with :math:`b = -A\nabla L`. All three are written as
:math:`J = (b - \alpha)P - D\nabla P` with the convention's *spurious drift*
:math:`\alpha` (Itô :math:`\alpha_i = \sum_j\partial_j D_{ij}`; Stratonovich
:math:`\alpha_i = \sum_{jk}\sigma_{ik}\partial_j\sigma_{jk}`; isothermal 0), which
is what the operator discretises.

Inertial model
--------------
.. math::

    d\theta = r\,dt,\qquad M\,dr = -\gamma M r\,dt - \nabla L\,dt + \sqrt{2D}\,dW,

per direction (mass :math:`M`, damping :math:`\gamma` and noise :math:`D` are
diagonal, possibly θ-dependent). Its density :math:`P(\theta, r, t)` obeys the
Klein–Kramers equation

.. math::

    \partial_t P = -r\cdot\nabla_\theta P + \nabla_r\cdot\big[(\gamma r + M^{-1}\nabla L)P\big]
                  + \nabla_r\cdot\big(M^{-2} D\,\nabla_r P\big).

Fluctuation–dissipation: :math:`T = D/(\gamma M)` per direction; with one
constant :math:`T` and constant :math:`M` the stationary density is the
Maxwell–Boltzmann :math:`\exp(-(L + \tfrac12 M r^2)/T)`. Noise acts on r only
and its amplitude depends on θ only, so there is no convention ambiguity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from .errors import InputError
from .fields import FieldSpec, MatrixField
from .grid import Axis, Grid
from .landscapes import Landscape

#: Gauss–Legendre nodes and weights on [-1, 1] for the escape exponent between positions.
_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(8)

__all__ = [
    "Model",
    "Overdamped",
    "OverdampedCoefficients",
    "Inertial",
    "InertialCoefficients",
    "VELOCITY_WIDTH",
    "VELOCITY_OVERFLOW",
    "VELOCITY_CELLS",
    "CONVENTIONS",
    "Convention",
]

Convention = Literal["ito", "stratonovich", "isothermal"]
CONVENTIONS: dict[str, float] = {"ito": 1.0, "stratonovich": 0.5, "isothermal": 0.0}
"""Convention name -> exponent s: the stationary density in 1-D is :math:`\\propto D^{-s} e^{-\\int A L'/D}`."""

Points = Mapping[str, np.ndarray]


@runtime_checkable
class Model(Protocol):
    """What :class:`~fpsolver.problem.FokkerPlanck` needs of a model kind.

    ``on(grid)`` checks the grid and returns the model's coefficients bound to it; the
    coefficients object carries the (possibly re-labelled) ``grid`` it was bound to, and
    its type selects the generator in :mod:`fpsolver.operators.registry`.
    """

    landscape: Landscape
    temperature: float | None

    def on(self, grid: Grid) -> Any: ...

    def describe(self) -> dict[str, object]: ...


class Overdamped:
    r"""Overdamped Langevin model :math:`d\theta = -A\nabla L\,dt + \sqrt{2D}\,dW`.

    Parameters
    ----------
    landscape
        The loss :math:`L`.
    temperature
        :math:`T > 0`; sets :math:`D = T A` (fluctuation–dissipation). Give this or ``diffusion``.
    diffusion
        :math:`D(\theta)`: scalar, diagonal, full matrix or θ-dependent (see :mod:`fpsolver.fields`).
    mobility
        :math:`A(\theta)`, same forms; default 1 (plain gradient flow).
    convention
        ``"ito"`` (default), ``"stratonovich"`` or ``"isothermal"``; matters only when :math:`D` depends on θ.
    iteration_time
        For optimizer-derived models: the model time of one optimizer iteration (the learning
        rate η in SGD time t = kη); outputs then also give times and rates in iterations.

    Examples
    --------
    >>> land = Landscape.from_expression("x**4/4 - x**2/2")
    >>> model = Overdamped(land, temperature=0.05)
    """

    def __init__(
        self,
        landscape: Landscape,
        temperature: float | None = None,
        *,
        diffusion: FieldSpec | None = None,
        mobility: FieldSpec = 1.0,
        convention: Convention = "ito",
        iteration_time: float | None = None,
    ):
        if not isinstance(landscape, Landscape):
            raise InputError(f"Overdamped needs a Landscape, got {type(landscape).__name__}")
        self.iteration_time = _iteration_time(iteration_time)
        if (temperature is None) == (diffusion is None):
            raise InputError("give exactly one of temperature (D = T * mobility) or diffusion")
        if temperature is not None:
            temperature = _positive_number(temperature, "temperature")
        if convention not in CONVENTIONS:
            raise InputError(f"unknown convention {convention!r}; choose one of {', '.join(CONVENTIONS)}")
        self.landscape = landscape
        self.temperature = temperature
        self.diffusion_spec = diffusion
        self.mobility_spec = mobility
        self.convention: Convention = convention
        # Early checks of constant coefficients, before any grid is known.
        dims = landscape.variables
        for spec, what in ((mobility, "mobility"), (diffusion, "diffusion")):
            if spec is not None and _dimension_free(spec):
                MatrixField(spec, dims, what)

    @property
    def convention_exponent(self) -> float:
        """s = 1 (Itô), 1/2 (Stratonovich), 0 (isothermal)."""
        return CONVENTIONS[self.convention]

    def on(self, grid: Grid) -> OverdampedCoefficients:
        """Bind the model to the position axes of ``grid`` (checks names and coefficients)."""
        if any(a.kind != "position" for a in grid):
            raise InputError("the overdamped model needs a grid of position axes only (no velocity axes)")
        dims = grid.position_names
        missing = [v for v in self.landscape.variables if v not in dims]
        if missing:
            raise InputError(f"landscape variables {missing} are not axes of the grid {list(dims)}")
        mobility = MatrixField(self.mobility_spec, dims, "mobility")
        diffusion = MatrixField(self.diffusion_spec, dims, "diffusion") if self.diffusion_spec is not None else None
        coeffs = OverdampedCoefficients(self, dims, mobility, diffusion, grid)
        centres = dict(zip(grid.names, grid.mesh()))
        for field in (mobility, diffusion):
            if field is not None and not field.constant:
                field.check_positive(field(centres), " at some cell of the grid")
        return coeffs

    def describe(self) -> dict[str, object]:
        """Plain metadata for output files."""
        return {
            "kind": "overdamped",
            "landscape": self.landscape.description,
            "temperature": self.temperature if self.temperature is not None else "n/a",
            "diffusion": str(self.diffusion_spec) if self.diffusion_spec is not None else "temperature * mobility",
            "mobility": str(self.mobility_spec),
            "convention": self.convention,
            "iteration_time": self.iteration_time if self.iteration_time is not None else "n/a",
        }

    def __repr__(self) -> str:
        noise = f"temperature={self.temperature}" if self.temperature is not None else f"diffusion={self.diffusion_spec!r}"
        return f"Overdamped({self.landscape!r}, {noise}, mobility={self.mobility_spec!r}, convention={self.convention!r})"


def _positive_number(value: object, what: str) -> float:
    """``value`` as a float, or InputError unless it is a finite positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value) or value <= 0:
        raise InputError(f"{what} must be a positive number, got {value!r}")
    return float(value)


def _iteration_time(value: float | None) -> float | None:
    """Check the model time of one optimizer iteration (None: not an optimizer model)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value <= 0:
        raise InputError(f"iteration_time must be a positive number (the learning rate), got {value!r}")
    return float(value)


def _dimension_free(spec: FieldSpec) -> bool:
    """True when a spec can be checked without knowing the grid (a constant)."""
    return isinstance(spec, (int, float)) and not isinstance(spec, bool)


@dataclass(frozen=True)
class OverdampedCoefficients:
    """Pointwise coefficients of an :class:`Overdamped` model on the axes ``dims``."""

    model: Overdamped
    dims: tuple[str, ...]
    mobility: MatrixField
    diffusion_field: MatrixField | None
    grid: Grid

    @property
    def ndim(self) -> int:
        return len(self.dims)

    @property
    def constant_diffusion(self) -> bool:
        """True when D does not depend on θ (then all conventions coincide)."""
        field = self.diffusion_field if self.diffusion_field is not None else self.mobility
        return field.constant

    @property
    def diagonal_diffusion(self) -> bool:
        field = self.diffusion_field if self.diffusion_field is not None else self.mobility
        return field.is_diagonal

    def _landscape_args(self, points: Points) -> dict[str, np.ndarray]:
        return {v: points[v] for v in self.model.landscape.variables}

    def gradient(self, points: Points) -> np.ndarray:
        """∇L over all axes ``dims`` (zero along axes the landscape does not use), shape (n, *shape)."""
        shape = _shape(points, self.dims)
        grad = np.zeros((self.ndim,) + shape)
        land = self.model.landscape
        g = land.gradient(**self._landscape_args(points))
        for k, v in enumerate(land.variables):
            grad[self.dims.index(v)] = np.broadcast_to(g[k], shape)
        return grad

    def drift(self, points: Points) -> np.ndarray:
        r"""Physical drift :math:`b = -A\nabla L`, shape ``(n, *shape)``."""
        return -np.einsum("ij...,j...->i...", self.mobility(points), self.gradient(points))

    def diffusion(self, points: Points) -> np.ndarray:
        """D at the points, shape ``(n, n, *shape)``."""
        if self.diffusion_field is not None:
            return self.diffusion_field(points)
        return self.model.temperature * self.mobility(points)

    def thermal_energy(self, points: Points) -> np.ndarray:
        """Energy scale of the noise, tr D / tr A (the temperature when D = T A)."""
        return np.trace(self.diffusion(points)) / np.trace(self.mobility(points))

    def potential(self, points: Points) -> np.ndarray | None:
        r"""Reference potential :math:`\phi = L/T` for the Einstein case ``D = T A``, else None.

        When it exists the equilibrium density is :math:`e^{-\phi}` (isothermal
        convention, or any convention with constant A), and the operator uses it for
        exponential fitting so that this density is an exact discrete steady state.
        """
        if self.model.temperature is None:
            return None
        shape = _shape(points, self.dims)
        value = self.model.landscape.value(**self._landscape_args(points))
        return np.broadcast_to(value, shape) / self.model.temperature

    def spurious_drift(self, points: Points, steps: Sequence[float]) -> np.ndarray:
        r"""The convention's spurious drift :math:`\alpha`, shape ``(n, *shape)`` (see module docstring).

        Derivatives of D are central differences with the given per-axis ``steps``.
        """
        shape = _shape(points, self.dims)
        n = self.ndim
        alpha = np.zeros((n,) + shape)
        s = self.model.convention_exponent
        if s == 0.0 or self.constant_diffusion:
            return alpha
        if self.diagonal_diffusion:
            # sigma = sqrt(D) is diagonal too: alpha_i = s * d_i D_ii in both conventions.
            for i in range(n):
                alpha[i] = s * self.diffusion_derivative(points, i, steps[i])[i, i]
            return alpha
        if self.model.convention == "ito":
            for j in range(n):
                alpha += self.diffusion_derivative(points, j, steps[j])[:, j]
            return alpha
        sigma = _sqrtm(self.diffusion(points))
        for j in range(n):
            up, down = dict(points), dict(points)
            up[self.dims[j]] = points[self.dims[j]] + steps[j]
            down[self.dims[j]] = points[self.dims[j]] - steps[j]
            dsigma = (_sqrtm(self.diffusion(up)) - _sqrtm(self.diffusion(down))) / (2 * steps[j])
            alpha += np.einsum("ik...,k...->i...", sigma, dsigma[j])
        return alpha

    def diffusion_derivative(self, points: Points, axis: int, step: float) -> np.ndarray:
        """Central difference of D along axis number ``axis``, shape ``(n, n, *shape)``."""
        if self.diffusion_field is not None:
            return self.diffusion_field.derivative(points, axis, step)
        return self.model.temperature * self.mobility.derivative(points, axis, step)


def _shape(points: Points, dims: Sequence[str]) -> tuple[int, ...]:
    return np.broadcast_shapes(*(np.shape(points[d]) for d in dims))


def _sqrtm(mats: np.ndarray) -> np.ndarray:
    """Symmetric square root of a stack of SPD matrices of shape (n, n, *shape)."""
    n = mats.shape[0]
    flat = np.moveaxis(mats.reshape(n, n, -1), -1, 0)
    w, v = np.linalg.eigh(flat)
    root = np.einsum("mij,mj,mkj->mik", v, np.sqrt(np.clip(w, 0, None)), v)
    return np.moveaxis(root, 0, -1).reshape(mats.shape)


#: Half-width of the velocity range, in Maxwellian standard deviations :math:`\sqrt{T/M}`, that a grid must cover.
#: The zero-flux truncation at :math:`|r| = c\sqrt{T/M}` removes the Maxwellian tail mass
#: :math:`\operatorname{erfc}(c/\sqrt2)`, which for c = 6 is 2e-9: below every accuracy fpsolver
#: claims for phase-space rates (1e-3 .. 1e-5 relative), while c = 4 (6e-5) would not be.
VELOCITY_WIDTH = 6.0

#: Largest velocity, in local Maxwellian standard deviations :math:`\sqrt{T/M}`, that a velocity
#: axis may reach at any position cell. The phase-space operator works with the weights
#: :math:`e^{\pm M r^2/2T}`, which overflow float64 beyond :math:`|r| \approx 37.6\sqrt{T/M}`
#: (e^709); a wider axis gave NaN entries and a "singular" backward equation (an Adai run on
#: ±125 where √(T/M) was 0.6). 30 leaves a margin.
VELOCITY_OVERFLOW = 30.0

#: Cells per velocity axis when :meth:`Inertial.phase_grid` chooses the axes.
VELOCITY_CELLS = 64


def _diagonal_values(field: MatrixField, points: Points) -> np.ndarray:
    """The diagonal of a diagonal field at the points, shape ``(n, *shape)``, broadcast to the points' shape."""
    values = field(points)
    shape = _shape(points, list(points))
    return np.stack([np.broadcast_to(values[i, i], shape) for i in range(values.shape[0])])


class Inertial:
    r"""Inertial (underdamped) Langevin model :math:`d\theta = r\,dt`, :math:`M\,dr = -\gamma M r\,dt - \nabla L\,dt + \sqrt{2D}\,dW`.

    Parameters
    ----------
    landscape
        The loss :math:`L`.
    mass
        :math:`M > 0`: a number, one entry per direction, or a θ-dependent expression/callable
        (see :mod:`fpsolver.fields`; diagonal only).
    damping
        :math:`\gamma > 0` (required), same forms as ``mass`` (Adai's damping depends on θ).
    temperature
        :math:`T > 0`; sets :math:`D = \gamma M T` per direction (fluctuation–dissipation).
        Give this or ``diffusion``.
    diffusion
        :math:`D > 0` per direction, same forms as ``mass``; then :math:`T = D/(\gamma M)`.
    iteration_time
        For optimizer-derived models: the model time of one iteration (the learning rate).

    Examples
    --------
    >>> land = Landscape.from_expression("x**4/4 - x**2/2")
    >>> model = Inertial(land, mass=1.0, damping=0.5, temperature=0.05)
    >>> coeffs = model.on(Grid.uniform(x=(-2.0, 2.0, 100), r=(-1.5, 1.5, 60)))
    >>> [a.kind for a in coeffs.grid]
    ['position', 'velocity']
    """

    def __init__(
        self,
        landscape: Landscape,
        mass: FieldSpec = 1.0,
        damping: FieldSpec | None = None,
        temperature: float | None = None,
        *,
        diffusion: FieldSpec | None = None,
        iteration_time: float | None = None,
    ):
        if not isinstance(landscape, Landscape):
            raise InputError(f"Inertial needs a Landscape, got {type(landscape).__name__}")
        self.iteration_time = _iteration_time(iteration_time)
        if damping is None:
            raise InputError("Inertial needs a damping (the friction rate gamma > 0)")
        if (temperature is None) == (diffusion is None):
            raise InputError("give exactly one of temperature (D = damping * mass * T) or diffusion")
        if temperature is not None:
            temperature = _positive_number(temperature, "temperature")
        self.landscape = landscape
        self.temperature = temperature
        self.mass_spec = mass
        self.damping_spec = damping
        self.diffusion_spec = diffusion
        self._fields(landscape.variables)  # checks forms and constant values before any grid is known

    def _fields(self, dims: Sequence[str]) -> tuple[MatrixField, MatrixField, MatrixField | None]:
        """Mass, damping and (if given) diffusion as diagonal fields over the position axes ``dims``."""
        specs = (("mass", self.mass_spec), ("damping", self.damping_spec), ("diffusion", self.diffusion_spec))
        fields = []
        for what, spec in specs:
            if spec is None:
                fields.append(None)
                continue
            field = MatrixField(spec, dims, what)
            if not field.is_diagonal:
                raise InputError(f"{what} must be a number, an expression or one entry per direction; matrices are not supported")
            fields.append(field)
        return fields[0], fields[1], fields[2]

    def on(self, grid: Grid) -> InertialCoefficients:
        """Bind the model to ``grid``: the landscape's variables in order, then one velocity axis per position.

        Returns coefficients whose ``grid`` has the velocity axes labelled ``kind="velocity"``.
        """
        positions = tuple(self.landscape.variables)
        n = len(positions)
        names = list(grid.names)
        if len(grid) != 2 * n:
            raise InputError(
                f"the inertial model on landscape variables {list(positions)} needs {2 * n} grid axes "
                f"(the positions {list(positions)} in this order, then one velocity axis per position); the grid has {names}"
            )
        if tuple(names[:n]) != positions:
            raise InputError(
                f"the first {n} grid axes must be the landscape variables {list(positions)} in this order, got {names[:n]}"
            )
        if any(a.kind != "position" for a in grid[:n]):
            raise InputError(f"the position axes {list(positions)} must have kind 'position'")
        bound = Grid(list(grid[:n]) + [Axis(a.name, a.faces, "velocity") for a in grid[n:]])
        mass, damping, diffusion = self._fields(positions)
        coeffs = InertialCoefficients(self, positions, tuple(names[n:]), mass, damping, diffusion, bound)
        centres = {d: c for d, c in zip(bound.names[:n], np.meshgrid(*(a.centers for a in bound[:n]), indexing="ij"))}
        for field in (mass, damping, diffusion):
            if field is not None and not field.constant:
                field.check_positive(field(centres), " at some cell of the grid")
        coeffs.check_velocity_range(centres)
        return coeffs

    def phase_grid(self, positions: Grid, cells: int = VELOCITY_CELLS) -> Grid:
        r"""``positions`` with one velocity axis ``r_<variable>`` per direction appended, chosen from the temperature.

        Each velocity axis spans :math:`\pm` :data:`VELOCITY_WIDTH` :math:`\max_\theta\sqrt{T_i(\theta)/M_i(\theta)}`
        over the position cells (the narrowest range :meth:`on` accepts, widened by 1e-9 against
        round-off) with ``cells`` cells. Velocities are in model time per unit θ: for an
        optimizer, SGD time t = kη, so r is the step per iteration divided by η.
        """
        positions_names = tuple(self.landscape.variables)
        if tuple(positions.names) != positions_names or any(a.kind != "position" for a in positions):
            raise InputError(f"phase_grid needs the position axes {list(positions_names)} in this order, got {list(positions.names)}")
        mass, damping, diffusion = self._fields(positions_names)
        centres = dict(zip(positions_names, positions.mesh()))
        m = _diagonal_values(mass, centres)
        if diffusion is None:
            temperature = np.full(m.shape, self.temperature)
        else:
            temperature = _diagonal_values(diffusion, centres) / (_diagonal_values(damping, centres) * m)
        spread = np.sqrt(temperature / m).reshape(len(positions_names), -1).max(axis=1)
        axes = [Axis.uniform(f"r_{name}", -VELOCITY_WIDTH * s * (1 + 1e-9), VELOCITY_WIDTH * s * (1 + 1e-9), cells, "velocity") for name, s in zip(positions_names, spread)]
        return Grid(list(positions) + axes)

    def describe(self) -> dict[str, object]:
        """Plain metadata for output files."""
        return {
            "kind": "inertial",
            "landscape": self.landscape.description,
            "mass": str(self.mass_spec),
            "damping": str(self.damping_spec),
            "temperature": self.temperature if self.temperature is not None else "n/a",
            "diffusion": str(self.diffusion_spec) if self.diffusion_spec is not None else "damping * mass * temperature",
            "iteration_time": self.iteration_time if self.iteration_time is not None else "n/a",
        }

    def __repr__(self) -> str:
        noise = f"temperature={self.temperature}" if self.temperature is not None else f"diffusion={self.diffusion_spec!r}"
        return f"Inertial({self.landscape!r}, mass={self.mass_spec!r}, damping={self.damping_spec!r}, {noise})"


@dataclass(frozen=True)
class InertialCoefficients:
    """Pointwise coefficients of an :class:`Inertial` model; per-direction arrays have shape ``(n, *shape)``."""

    model: Inertial
    positions: tuple[str, ...]
    velocities: tuple[str, ...]
    mass_field: MatrixField
    damping_field: MatrixField
    diffusion_field: MatrixField | None
    grid: Grid

    @property
    def ndim(self) -> int:
        """Number of positions (the phase space has twice as many axes)."""
        return len(self.positions)

    @staticmethod
    def _diagonal(field: MatrixField, points: Points) -> np.ndarray:
        values = field(points)
        return np.stack([values[i, i] for i in range(values.shape[0])])

    def mass(self, points: Points) -> np.ndarray:
        """:math:`M_i` at the points."""
        return self._diagonal(self.mass_field, points)

    def damping(self, points: Points) -> np.ndarray:
        r""":math:`\gamma_i` at the points."""
        return self._diagonal(self.damping_field, points)

    def diffusion(self, points: Points) -> np.ndarray:
        r""":math:`D_i` at the points (:math:`\gamma_i M_i T` when a temperature is given)."""
        if self.diffusion_field is not None:
            return self._diagonal(self.diffusion_field, points)
        return self.model.temperature * self.damping(points) * self.mass(points)

    def temperature(self, points: Points) -> np.ndarray:
        r"""Local temperature :math:`T_i = D_i/(\gamma_i M_i)` at the points."""
        if self.diffusion_field is None:
            return np.full(self.mass(points).shape, self.model.temperature)
        return self.diffusion(points) / (self.damping(points) * self.mass(points))

    @property
    def constant_mass(self) -> bool:
        """True when M does not depend on θ."""
        return self.mass_field.constant

    @property
    def equilibrium_temperature(self) -> float | None:
        r"""The one temperature :math:`T` of the Maxwell–Boltzmann state :math:`e^{-(L + \frac12 M r^2)/T}`, or None.

        It exists when M is constant and :math:`T_i = D_i/(\gamma_i M_i)` is the same constant in
        every direction (always so when ``temperature`` was given and M is constant).
        """
        if not self.constant_mass:
            return None
        if self.model.temperature is not None:
            return self.model.temperature
        if not (self.damping_field.constant and self.diffusion_field.constant):
            return None
        temps = self.temperature({d: np.zeros(1) for d in self.positions})
        return float(temps.flat[0]) if np.allclose(temps, temps.flat[0], rtol=1e-12, atol=0.0) else None

    def log_density_reference(self, points: Points) -> np.ndarray:
        r"""A reference log-density at phase-space points, close to the stationary one.

        With one temperature :math:`T` (and constant masses) it is the Maxwell–Boltzmann density
        :math:`-(L + \tfrac12\sum_iM_ir_i^2)/T`, an exact discrete steady state of the scheme.
        With a θ-dependent temperature (optimizer-derived models: Hessian noise, Adam's or Adai's
        θ-dependent mass) and one position, it is the local equilibrium

        .. math::

            -\Phi(\theta) - \frac{M(\theta)\,r^2}{2T(\theta)} - \frac12\ln\frac{T(\theta)}{M(\theta)},
            \qquad \Phi(\theta) = \int^\theta\frac{L'(s)}{T(s)}\,ds,

        whose θ-marginal carries the exact escape exponent :math:`\Phi` of the theory
        (:func:`fpsolver.theory.optimizer_escape_time`); :math:`\Phi` is integrated between
        consecutive distinct positions by 8-point Gauss–Legendre. The rate layer's potential-theory
        identities hold for any positive weights, but their terms stay O(1) — digits at any
        barrier — only for weights this close to stationary: with :math:`-(L + \frac12Mr^2)/T(\theta)`
        taken pointwise, Adam in the flat-minima well at lr 0.01 (τ ≈ 7e14) had no digits left.
        With several positions, where :math:`\int\nabla L/T` depends on the path, the pointwise
        form is kept: a field whose maxima still mark the wells.
        """
        shape = np.broadcast_shapes(*(np.shape(points[d]) for d in self.positions + self.velocities))
        if self.equilibrium_temperature is None and self.ndim == 1:
            return self._local_equilibrium(points, shape)
        mass = self.mass(points)
        kinetic = sum(0.5 * mass[i] * np.asarray(points[v]) ** 2 for i, v in enumerate(self.velocities))
        energy = self.model.landscape.value(**{v: points[v] for v in self.model.landscape.variables}) + kinetic
        temperature = self.equilibrium_temperature
        if temperature is None:
            temperature = np.mean(self.temperature(points), axis=0)
        return np.broadcast_to(-energy / temperature, shape)

    def _local_equilibrium(self, points: Points, shape: tuple[int, ...]) -> np.ndarray:
        """The one-position local-equilibrium reference of :meth:`log_density_reference`."""
        (x_name,), (r_name,) = self.positions, self.velocities
        x = np.broadcast_to(np.asarray(points[x_name], dtype=float), shape)
        positions, where = np.unique(x, return_inverse=True)
        lower, upper = positions[:-1, None], positions[1:, None]
        nodes = 0.5 * (lower + upper) + 0.5 * (upper - lower) * _GAUSS_NODES
        at_nodes = {x_name: nodes, r_name: np.zeros_like(nodes)}
        slope = self.gradient(at_nodes)[0] / self.temperature(at_nodes)[0]
        phi = np.concatenate([[0.0], np.cumsum(0.5 * (upper - lower)[:, 0] * (slope @ _GAUSS_WEIGHTS))])
        at_positions = {x_name: positions, r_name: np.zeros_like(positions)}
        temperature, mass = self.temperature(at_positions)[0], self.mass(at_positions)[0]
        spread = temperature / mass
        log_density = -phi - 0.5 * np.log(spread)
        r = np.broadcast_to(np.asarray(points[r_name], dtype=float), shape)
        where = where.reshape(shape)
        return log_density[where] - 0.5 * r**2 / spread[where]

    def thermal_energy(self, points: Points) -> np.ndarray:
        """Mean local temperature over the directions at the points."""
        return np.mean(self.temperature(points), axis=0)

    def gradient(self, points: Points) -> np.ndarray:
        """∇L with respect to the positions at the points."""
        shape = _shape(points, self.positions)
        return np.stack([np.broadcast_to(g, shape) for g in self.model.landscape.gradient(**{v: points[v] for v in self.positions})])

    def check_velocity_range(self, centres: Points) -> None:
        r"""Raise unless every velocity axis covers :math:`\pm` :data:`VELOCITY_WIDTH` :math:`\sqrt{T_i/M_i}` (max over the position cells)."""
        spread = np.sqrt(self.temperature(centres) / self.mass(centres))
        for i, name in enumerate(self.velocities):
            need = VELOCITY_WIDTH * float(np.max(spread[i]))
            axis = self.grid[name]
            narrowest = float(np.min(spread[i]))
            reach = max(abs(axis.lo), abs(axis.hi))
            if reach > VELOCITY_OVERFLOW * narrowest:
                raise InputError(
                    f"velocity axis {name!r} reaches |r| = {reach:g}, {reach / narrowest:.3g} times the narrowest Maxwellian "
                    f"width sqrt(T/M) = {narrowest:.4g} on the grid: the weights exp(M r**2 / 2T) overflow beyond "
                    f"{VELOCITY_OVERFLOW:g} widths; span about [{-need:.4g}, {need:.4g}] ({VELOCITY_WIDTH:g} * the widest width) "
                    "or let a scenario choose the velocity axes (leave them out of the grid)"
                )
            slack = 1e-12 * need  # round-off in sqrt(T/M)
            if axis.lo > -need + slack or axis.hi < need - slack:
                raise InputError(
                    f"velocity axis {name!r} spans [{axis.lo:g}, {axis.hi:g}] but must cover at least "
                    f"[{-need:.4g}, {need:.4g}] ({VELOCITY_WIDTH:g} * sqrt(T/M) = {VELOCITY_WIDTH:g} * {np.max(spread[i]):.4g}, "
                    f"so that the truncated Maxwellian tail is below 1e-8)"
                )
