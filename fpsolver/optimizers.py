r"""Optimizers as diffusions: discrete update rules and their continuous-time Fokker–Planck maps.

Every optimizer here is a heavy-ball method with a diagonal preconditioner :math:`P` (THEORY.md §3),

.. math::

    m_k = \beta_1 m_{k-1} + \beta_3 g_k, \qquad \theta_{k+1} = \theta_k - \eta P m_k,

with the minibatch gradient :math:`g = \nabla L + \xi`, :math:`\operatorname{Cov}\xi = C(\theta)`
(:mod:`fpsolver.noise`). In continuous *SGD time* :math:`t = k\eta` it is the inertial model

.. math::

    d\theta = r\,dt, \quad M\,dr = -\gamma M r\,dt - \nabla L\,dt + \sqrt{2D}\,dW, \qquad
    M = \eta P^{-1}/\beta_3,\ \gamma = (1-\beta_1)/\eta,\ D = \tfrac{\eta}{2} C,

per direction. Its large-damping (overdamped) limit drops :math:`M\ddot\theta`:
:math:`\gamma M\,d\theta = -\nabla L\,dt + \sqrt{2D}\,dW`, i.e. the overdamped model with

.. math::

    A = (\gamma M)^{-1} = \frac{\beta_3}{1-\beta_1} P, \qquad D_\theta = A D A^\top .

It is valid when the damping time :math:`1/\gamma` is short against the slowest drift
time, per direction :math:`4\eta\beta_3 P_i |H_i| \ll (1-\beta_1)^2`. For SGD
(:math:`\beta_1 = 0`, :math:`\beta_3 = 1`, :math:`P = I`) the overdamped model is the
first-order (small-η) limit itself.

Adaptive preconditioners (Adam, SAdam, AdaMomentum, Adai's inertia) use the *frozen*
second moment :math:`\hat v(\theta) = \operatorname{diag} C(\theta) + (\nabla L)^2`, its
stationary value at fixed θ (β₂ → 1: v adapts slowly against θ's fluctuations but
fast against its drift). Time is SGD time :math:`t = k\eta`; a time τ is τ/η iterations.
The Itô convention is the default (the small-η limit of the discrete chain).

The discrete rules are implemented too (:meth:`Optimizer.step`, vectorised over an
ensemble of particles), for :mod:`fpsolver.simulate`.
"""

from __future__ import annotations

import inspect
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import sympy as sp

from .errors import FPSolverWarning, InputError
from .landscapes import Landscape
from .models import CONVENTIONS, Convention, Inertial, Overdamped
from .noise import HessianNoise, NoiseModel, WhiteNoise, field_spec

__all__ = [
    "Optimizer",
    "GDNoise",
    "SGD",
    "Momentum",
    "Adam",
    "AdamW",
    "Adai",
    "AdaiW",
    "SAdam",
    "SAMSGrad",
    "AdaMomentum",
    "OPTIMIZERS",
    "Dynamics",
    "AUTO_OVERDAMPED_LIMIT",
]

Dynamics = Literal["overdamped", "inertial"]

#: ``dynamics="auto"`` (:meth:`Optimizer.choose_dynamics`) keeps the overdamped model while
#: :math:`4\eta\beta_3 P|H|/(1-\beta_1)^2` stays below this at the minima and saddles: the
#: overdamped Kramers prefactor then differs from the moderate-damping one by about a quarter
#: of it (2.5 %), within the simulator's usual confidence interval.
AUTO_OVERDAMPED_LIMIT = 0.1
Points = Mapping[str, np.ndarray]
State = dict[str, Any]


# Validation ---------------------------------------------------------------------------
def _real(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not np.isfinite(value):
        raise InputError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _positive(value: Any, what: str) -> float:
    value = _real(value, what)
    if value <= 0:
        raise InputError(f"{what} must be > 0, got {value!r}")
    return value


def _nonnegative(value: Any, what: str) -> float:
    value = _real(value, what)
    if value < 0:
        raise InputError(f"{what} must be >= 0, got {value!r}")
    return value


def _beta(value: Any, what: str) -> float:
    value = _real(value, what)
    if not 0.0 <= value < 1.0:
        raise InputError(f"{what} must lie in [0, 1), got {value!r}")
    return value


def _batch(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"batch_size must be an integer >= 1, got {value!r}")
    return int(value)


def _bounded_update_check(beta1: float, beta2: float, name: str) -> None:
    """Warn outside Gould & Tanaka's bounded-update region of Adam, β₁² < β₂."""
    if not beta1**2 < beta2:
        warnings.warn(
            f"{name}: beta1**2 = {beta1**2:g} >= beta2 = {beta2:g}: outside the bounded-update region "
            "beta1**2 < beta2 (Gould & Tanaka, arXiv 2411.05746); updates can grow without bound",
            FPSolverWarning,
            stacklevel=3,
        )


def _diagonal_matrix(values: np.ndarray) -> np.ndarray:
    """Stack per-direction values (n, *shape) into diagonal matrices (n, n, *shape)."""
    out = np.zeros((values.shape[0],) + values.shape)
    for i in range(values.shape[0]):
        out[i, i] = values[i]
    return out


def _origin(variables: Sequence[str]) -> dict[str, np.ndarray]:
    return {v: np.zeros(1) for v in variables}


def _softplus(x: np.ndarray, sharpness: float) -> np.ndarray:
    r""":math:`\mathrm{softplus}_s(x) = \ln(1 + e^{s x})/s`, overflow-free."""
    return np.logaddexp(0.0, sharpness * x) / sharpness


# Base class -----------------------------------------------------------------------------
class Optimizer(ABC):
    """A stochastic optimizer: its discrete update rule and its continuous-time map.

    Subclasses give the heavy-ball coefficients (:meth:`heavy_ball`) and the discrete rule
    (:meth:`init_state`, :meth:`step`); the maps to models live here.
    """

    name: ClassVar[str]
    #: True when the continuous model's preconditioner or inertia depends on θ through v̂.
    adaptive: ClassVar[bool] = False
    #: True when weight decay is decoupled (θ *= 1 − ηλ) rather than added to the gradient.
    decoupled: ClassVar[bool] = False

    def __init__(self, lr: float, batch_size: int = 1, weight_decay: float = 0.0):
        self.lr = _positive(lr, f"{self.name}: lr")
        self.batch_size = _batch(batch_size)
        self.weight_decay = _nonnegative(weight_decay, f"{self.name}: weight_decay")

    # Continuous map -------------------------------------------------------------------
    def resolve_noise(self, noise: NoiseModel | None) -> NoiseModel:
        """The gradient noise to use: ``noise``, or by default Hessian noise with the default δ (1e-3)."""
        if noise is None:
            return HessianNoise()
        if not isinstance(noise, NoiseModel):
            raise InputError(f"{self.name}: noise must be a fpsolver.noise model, got {type(noise).__name__}")
        return noise

    def training_landscape(self, landscape: Landscape) -> Landscape:
        r"""The loss whose gradient drives the continuous model: :math:`L + \tfrac{\lambda}{2}|\theta|^2` with weight decay λ.

        Decoupled decay (θ ← (1 − ηλ)θ) gives the drift :math:`-\lambda\theta` *outside* the
        preconditioner; it is a gradient of the same term only when the mobility is 1.
        """
        if self.weight_decay == 0.0:
            return landscape
        if self.decoupled and self.adaptive_mobility:
            raise InputError(
                f"{self.name}: with decoupled weight decay the drift -P grad L - lambda theta is not a gradient flow "
                "under a theta-dependent preconditioner, so it has no Overdamped/Inertial model here; "
                "use weight_decay=0, the coupled variant, or fpsolver.simulate"
            )
        syms = [sp.Symbol(v, real=True) for v in landscape.variables]
        decay = sp.nsimplify(self.weight_decay) * sum(s**2 for s in syms) / 2
        return landscape.plus(decay, f"{landscape.description} + {self.weight_decay}/2 |theta|^2")

    @property
    def adaptive_mobility(self) -> bool:
        """True when the overdamped mobility A depends on θ (an adaptive preconditioner P)."""
        return self.adaptive

    def second_moment(self, landscape: Landscape, noise: NoiseModel, points: Points) -> np.ndarray:
        r"""Frozen :math:`\hat v(\theta) = \operatorname{diag}C(\theta) + (\nabla L)^2`, shape ``(n, *shape)``.

        The gradient is that of the loss the optimizer's v sees: with decoupled decay, the
        raw loss; with coupled decay, the decayed one (the caller passes the right one).
        """
        cov = noise.covariance(landscape, points, self.batch_size)
        grad = landscape.gradient(**{v: points[v] for v in landscape.variables})
        return np.einsum("ii...->i...", cov) + grad**2

    @abstractmethod
    def heavy_ball(self, landscape: Landscape, noise: NoiseModel, points: Points) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""Per-direction :math:`(\beta_1, \beta_3, P)` at ``points``, each broadcastable to ``(n, *shape)``."""

    def _coefficients(self, landscape: Landscape, noise: NoiseModel, points: Points, freeze_at: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(β₁, β₃, P) broadcast to ``(n, *shape)``; with ``freeze_at``, their values at that point."""
        shape = np.broadcast_shapes(*(np.shape(points[v]) for v in landscape.variables))
        n = len(landscape.variables)
        if freeze_at is None:
            values = self.heavy_ball(landscape, noise, points)
        else:
            at = {v: np.asarray([c]) for v, c in zip(landscape.variables, freeze_at)}
            values = tuple(np.broadcast_to(c, (n, 1)).reshape((n,) + (1,) * len(shape)) for c in self.heavy_ball(landscape, noise, at))
        b1, b3, p = (np.broadcast_to(c, (n,) + shape) for c in values)
        return b1, b3, p

    def mobility(self, landscape: Landscape, noise: NoiseModel, points: Points, freeze_at: np.ndarray | None = None) -> np.ndarray:
        r"""Overdamped mobility :math:`A_i = \beta_{3,i} P_i/(1-\beta_{1,i})` (diagonal), shape ``(n, *shape)``."""
        b1, b3, p = self._coefficients(landscape, noise, points, freeze_at)
        return b3 * p / (1.0 - b1)

    def overdamped_parameter(self, landscape: Landscape, noise: NoiseModel, points: Points, freeze_at: np.ndarray | None = None) -> np.ndarray:
        r"""Per direction :math:`4\eta\beta_3 P_i |H_{ii}|/(1-\beta_{1,i})^2`, shape ``(n, *shape)``.

        The overdamped model needs it ≪ 1: the damping time 1/γ (momentum) and the step η
        (discrete time) short against the drift time 1/(A|H|). For SGD it is 4η|H|.
        """
        b1, b3, p = self._coefficients(landscape, noise, points, freeze_at)
        hess = self.training_landscape(landscape).hessian(**{v: points[v] for v in landscape.variables})
        return 4 * self.lr * b3 * p * np.abs(np.einsum("ii...->i...", hess)) / (1.0 - b1) ** 2

    def check_overdamped(self, landscape: Landscape, noise: NoiseModel | None, points: Points, limit: float = 0.5, freeze_at: Sequence[float] | None = None) -> float:
        """Warn (:class:`~fpsolver.errors.FPSolverWarning`) where :meth:`overdamped_parameter` exceeds ``limit``; return its maximum."""
        frozen = None if freeze_at is None else np.asarray(freeze_at, dtype=float)
        worst = float(np.max(self.overdamped_parameter(landscape, self.resolve_noise(noise), points, frozen)))
        if worst > limit:
            warnings.warn(
                f"{self.name}: the overdamped model needs 4*lr*beta3*P*|H|/(1-beta1)**2 << 1, but it reaches {worst:.3g} "
                "at the points checked: discrete-time and inertial effects are not small there (rates and saddle escape are "
                "off; stationary variances of a quadratic are not); lower lr or use dynamics='inertial'",
                FPSolverWarning,
                stacklevel=2,
            )
        return worst

    def choose_dynamics(self, landscape: Landscape, noise: NoiseModel | None, points: Points, freeze_at: Sequence[float] | None = None) -> Dynamics:
        r"""The model ``dynamics="auto"`` stands for: ``"inertial"`` where the overdamped limit fails at ``points``.

        Methods without momentum (β₁ ≡ 0: SGD, GD + noise) are always ``"overdamped"``: that is
        their small-η limit, and their O(η) corrections are discrete-time effects, not inertia.
        Others are ``"inertial"`` when :meth:`overdamped_parameter`
        :math:`4\eta\beta_3 P_i|H_{ii}|/(1-\beta_{1,i})^2` exceeds :data:`AUTO_OVERDAMPED_LIMIT`
        at any of ``points`` (the minima and saddles that set the rates).
        """
        noise = self.resolve_noise(noise)
        frozen = None if freeze_at is None else np.asarray(freeze_at, dtype=float)
        beta1, _, _ = self._coefficients(landscape, noise, points, frozen)
        if not np.any(beta1):
            return "overdamped"
        worst = float(np.max(self.overdamped_parameter(landscape, noise, points, frozen)))
        return "inertial" if worst > AUTO_OVERDAMPED_LIMIT else "overdamped"

    def model(
        self,
        landscape: Landscape,
        noise: NoiseModel | None = None,
        dynamics: Dynamics = "overdamped",
        convention: Convention = "ito",
        freeze_at: Sequence[float] | None = None,
    ) -> Overdamped | Inertial:
        r"""The continuous-time model of this optimizer on ``landscape``, in SGD time t = kη.

        Parameters
        ----------
        landscape
            The training loss L(θ) (weight decay is added here, see :meth:`training_landscape`).
        noise
            Per-sample gradient noise; default :class:`~fpsolver.noise.HessianNoise` (δ = 1e-3).
        dynamics
            ``"overdamped"``: :class:`~fpsolver.models.Overdamped` with mobility
            :math:`A = \beta_3 P/(1-\beta_1)` and diffusion :math:`A D A^\top`,
            :math:`D = (\eta/2)C` (the large-damping limit for momentum methods).
            ``"inertial"``: :class:`~fpsolver.models.Inertial` with per-direction
            :math:`M = \eta/(\beta_3 P)`, :math:`\gamma = (1-\beta_1)/\eta`,
            :math:`D = (\eta/2)\operatorname{diag}C` (needs diagonal noise; grid axes are the
            variables, then one velocity axis each).
        convention
            Stochastic calculus for θ-dependent D in the overdamped model; Itô (default) is
            the small-η limit. The phase-space model has no such choice.
        freeze_at
            Evaluate the adaptive coefficients (P, β₁) at this fixed θ* instead of at θ
            (the linearisation about a minimum; C(θ) stays θ-dependent).
        """
        try:
            build = self._BUILDERS[dynamics]
        except (KeyError, TypeError):
            raise InputError(f"{self.name}: dynamics must be one of {', '.join(self._BUILDERS)}, got {dynamics!r}") from None
        if convention not in CONVENTIONS:
            raise InputError(f"unknown convention {convention!r}; choose one of {', '.join(CONVENTIONS)}")
        noise = self.resolve_noise(noise)
        if not isinstance(landscape, Landscape):
            raise InputError(f"{self.name}: model needs a Landscape, got {type(landscape).__name__}")
        frozen = None
        if freeze_at is not None:
            frozen = np.asarray(freeze_at, dtype=float)
            if frozen.shape != (len(landscape.variables),) or not np.all(np.isfinite(frozen)):
                raise InputError(f"freeze_at needs {len(landscape.variables)} finite numbers, got {freeze_at!r}")
        return getattr(self, build)(landscape, noise, convention, frozen)

    def _overdamped_model(self, landscape: Landscape, noise: NoiseModel, convention: Convention, frozen: np.ndarray | None) -> Overdamped:
        loss = self.training_landscape(landscape)
        variables = landscape.variables
        eta = self.lr

        def mobility(points: Points) -> np.ndarray:
            return _diagonal_matrix(self.mobility(landscape, noise, points, frozen))

        def diffusion(points: Points) -> np.ndarray:
            a = self.mobility(landscape, noise, points, frozen)
            c = noise.covariance(landscape, points, self.batch_size)
            return 0.5 * eta * a[:, None] * c * a[None, :]

        if self.adaptive_mobility:
            mobility_spec: Any = field_spec(mobility, variables, diagonal=True, label=f"{self!r} mobility")
        else:
            mobility_spec = float(self.mobility(landscape, noise, _origin(variables))[0, 0])
        diffusion_spec = field_spec(diffusion, variables, noise.is_diagonal(landscape), label=f"{self!r} with {noise!r}: diffusion")
        return Overdamped(loss, diffusion=diffusion_spec, mobility=mobility_spec, convention=convention, iteration_time=eta)

    def _inertial_model(self, landscape: Landscape, noise: NoiseModel, convention: Convention, frozen: np.ndarray | None) -> Inertial:
        if not noise.is_diagonal(landscape):
            raise InputError(f"{self.name}: the inertial model takes one diffusion per direction; {noise!r} has off-diagonal covariance here")
        loss = self.training_landscape(landscape)
        variables = landscape.variables
        eta = self.lr

        def mass(points: Points) -> np.ndarray:
            _, b3, p = self._coefficients(landscape, noise, points, frozen)
            return _diagonal_matrix(eta / (b3 * p))

        def damping(points: Points) -> np.ndarray:
            b1, _, _ = self._coefficients(landscape, noise, points, frozen)
            return _diagonal_matrix((1.0 - b1) / eta)

        def diffusion(points: Points) -> np.ndarray:
            return 0.5 * eta * noise.covariance(landscape, points, self.batch_size)

        if self.adaptive and frozen is None:
            mass_spec: Any = field_spec(mass, variables, diagonal=True, label=f"{self!r} mass")
            damping_spec: Any = field_spec(damping, variables, diagonal=True, label=f"{self!r} damping")
        else:
            origin = _origin(variables)
            mass_spec = [float(m) for m in np.diagonal(mass(origin)[..., 0])]
            damping_spec = [float(g) for g in np.diagonal(damping(origin)[..., 0])]
        diffusion_spec = field_spec(diffusion, variables, diagonal=True, label=f"{self!r} with {noise!r}: diffusion")
        return Inertial(loss, mass=mass_spec, damping=damping_spec, diffusion=diffusion_spec, iteration_time=eta)

    _BUILDERS: ClassVar[dict[str, str]] = {"overdamped": "_overdamped_model", "inertial": "_inertial_model"}

    # Discrete rule ----------------------------------------------------------------------
    def init_state(self, theta: np.ndarray) -> State:
        """Optimizer state for an ensemble ``theta`` of shape ``(n, particles)`` (all zeros, step 0)."""
        return {"step": 0}

    @abstractmethod
    def update(self, theta: np.ndarray, grad: np.ndarray, state: State) -> np.ndarray:
        """The parameter change for the (weight-decay-adjusted) minibatch gradient ``grad``."""

    def step(self, theta: np.ndarray, grad: np.ndarray, state: State) -> np.ndarray:
        """One iteration on an ensemble: ``theta`` and the noisy loss gradient ``grad`` of shape ``(n, particles)``.

        Weight decay is applied here (coupled: added to the gradient; decoupled: θ ← (1 − ηλ)θ
        before the update, as PyTorch's AdamW). Returns the new θ; ``state`` is updated in place.
        """
        state["step"] += 1
        if self.weight_decay:
            if self.decoupled:
                theta = theta * (1.0 - self.lr * self.weight_decay)
            else:
                grad = grad + self.weight_decay * theta
        return theta - self.update(theta, grad, state)

    def hyperparameters(self) -> dict[str, object]:
        """The constructor arguments, by name (each is stored as the attribute of that name)."""
        return {name: getattr(self, name) for name in inspect.signature(type(self)).parameters}

    def describe(self) -> dict[str, object]:
        """Plain metadata for output files."""
        return {"kind": self.name, **self.hyperparameters()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"


# Plain SGD --------------------------------------------------------------------------------
class SGD(Optimizer):
    r"""Minibatch SGD.

    Update: :math:`\theta_{k+1} = \theta_k - \eta g_k`, :math:`\operatorname{Cov} g = C = \Sigma/B`.

    Continuous map (overdamped, the small-η limit): :math:`A = I`,
    :math:`D = (\eta/2)C \approx (\eta/2B)H` near a minimum; temperature
    :math:`T_i = \eta H_i/(2B)`, stationary covariance :math:`(\eta/2B) I` on a quadratic.

    Parameters
    ----------
    lr
        Learning rate η > 0.
    batch_size
        B ≥ 1.
    """

    name = "sgd"

    def __init__(self, lr: float, batch_size: int = 1):
        super().__init__(lr, batch_size)

    def heavy_ball(self, landscape, noise, points):
        return np.zeros(1), np.ones(1), np.ones(1)

    def update(self, theta, grad, state):
        return self.lr * grad


class GDNoise(SGD):
    r"""Gradient descent with additive white gradient noise of standard deviation σ.

    Update: :math:`\theta_{k+1} = \theta_k - \eta(\nabla L + \xi_k)`, :math:`\xi \sim N(0, \sigma^2 I)`.

    Continuous map: :math:`A = I`, :math:`D = (\eta\sigma^2/2) I`, a uniform temperature
    :math:`T = \eta\sigma^2/2` (escape exponent independent of the Hessian).

    Parameters
    ----------
    lr
        η > 0.
    sigma
        σ > 0.
    """

    name = "gd_noise"

    def __init__(self, lr: float, sigma: float):
        super().__init__(lr, 1)
        self.noise = WhiteNoise(sigma)
        self.sigma = self.noise.sigma

    def resolve_noise(self, noise: NoiseModel | None) -> NoiseModel:
        if noise is not None:
            raise InputError("gd_noise: the noise is WhiteNoise(sigma); do not pass noise=")
        return self.noise


# Momentum ----------------------------------------------------------------------------------
class Momentum(Optimizer):
    r"""Heavy-ball SGD with momentum, PyTorch or EMA form.

    Update: ``form="pytorch"`` (dampening 0): :math:`m_k = \beta_1 m_{k-1} + g_k`;
    ``form="ema"``: :math:`m_k = \beta_1 m_{k-1} + (1-\beta_1) g_k`; then
    :math:`\theta_{k+1} = \theta_k - \eta m_k` (m₀ = 0).

    Continuous map: inertial with :math:`M = \eta/\beta_3`, :math:`\gamma = (1-\beta_1)/\eta`
    (β₃ = 1 PyTorch, 1 − β₁ EMA). Overdamped limit (large damping,
    :math:`4\eta\beta_3 |H_i| \ll (1-\beta_1)^2`): :math:`A = \beta_3/(1-\beta_1)`
    (:math:`1/(1-\beta_1)` PyTorch, 1 EMA), :math:`D_\theta = A^2 (\eta/2) C`;
    temperature :math:`\eta H_i/(2B(1-\beta_1))` (PyTorch), :math:`\eta H_i/(2B)` (EMA).

    Parameters
    ----------
    lr, batch_size
        η > 0, B ≥ 1.
    beta1
        Momentum β₁ ∈ [0, 1) (default 0.9).
    form
        ``"pytorch"`` (default) or ``"ema"``.
    """

    name = "momentum"
    FORMS: ClassVar[tuple[str, ...]] = ("pytorch", "ema")

    def __init__(self, lr: float, batch_size: int = 1, beta1: float = 0.9, form: Literal["pytorch", "ema"] = "pytorch"):
        super().__init__(lr, batch_size)
        self.beta1 = _beta(beta1, "momentum: beta1")
        if form not in self.FORMS:
            raise InputError(f"momentum: form must be one of {', '.join(self.FORMS)}, got {form!r}")
        self.form = form

    @property
    def beta3(self) -> float:
        return 1.0 if self.form == "pytorch" else 1.0 - self.beta1

    def heavy_ball(self, landscape, noise, points):
        return np.full(1, self.beta1), np.full(1, self.beta3), np.ones(1)

    def init_state(self, theta):
        return {"step": 0, "m": np.zeros_like(theta)}

    def update(self, theta, grad, state):
        state["m"] = self.beta1 * state["m"] + self.beta3 * grad
        return self.lr * state["m"]


# Adam family ----------------------------------------------------------------------------------
class Adam(Optimizer):
    r"""Adam (Kingma & Ba), PyTorch's form, with coupled L2 weight decay.

    Update (k = 1, 2, …; :math:`g \leftarrow g + \lambda\theta` when λ > 0):

    .. math::

        m_k = \beta_1 m_{k-1} + (1-\beta_1) g_k,\quad v_k = \beta_2 v_{k-1} + (1-\beta_2) g_k^2,\quad
        \theta_{k+1} = \theta_k - \eta\,\frac{m_k/(1-\beta_1^k)}{\sqrt{v_k/(1-\beta_2^k)} + \epsilon}.

    Continuous map: :math:`P = \operatorname{diag}(1/(\sqrt{\hat v}+\epsilon))` with the frozen
    :math:`\hat v(\theta) = \operatorname{diag}C(\theta) + (\nabla L)^2`; inertial
    :math:`M = \eta P^{-1}/(1-\beta_1)`, :math:`\gamma = (1-\beta_1)/\eta`; overdamped
    limit :math:`A = P`, :math:`D_\theta = (\eta/2) P C P`. Near a minimum
    (:math:`\hat v \approx H/B`) the temperature is :math:`(\eta/2\sqrt B)\sqrt{H_i}` and
    :math:`\operatorname{Var}\theta_i = \eta/(2\sqrt{B H_i})`.

    Parameters
    ----------
    lr, batch_size
        η > 0, B ≥ 1.
    beta1, beta2
        In [0, 1) (defaults 0.9, 0.999). A warning is issued outside the bounded-update
        region β₁² < β₂ (Gould & Tanaka, arXiv 2411.05746).
    eps
        ε ≥ 0 (default 1e-8).
    weight_decay
        λ ≥ 0 (default 0).
    """

    name = "adam"
    adaptive = True

    def __init__(self, lr: float, batch_size: int = 1, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(lr, batch_size, weight_decay)
        self.beta1 = _beta(beta1, f"{self.name}: beta1")
        self.beta2 = _beta(beta2, f"{self.name}: beta2")
        self.eps = _nonnegative(eps, f"{self.name}: eps")
        self._check_bounded()

    def _check_bounded(self) -> None:
        _bounded_update_check(self.beta1, self.beta2, self.name)

    def preconditioner(self, vhat: np.ndarray) -> np.ndarray:
        """P as a function of the frozen second moment v̂."""
        return 1.0 / (np.sqrt(vhat) + self.eps)

    def heavy_ball(self, landscape, noise, points):
        moment_landscape = landscape if self.decoupled else self.training_landscape(landscape)
        vhat = self.second_moment(moment_landscape, noise, points)
        return np.full(1, self.beta1), np.full(1, 1.0 - self.beta1), self.preconditioner(vhat)

    def init_state(self, theta):
        return {"step": 0, "m": np.zeros_like(theta), "v": np.zeros_like(theta)}

    def _moments(self, grad: np.ndarray, state: State) -> tuple[np.ndarray, np.ndarray]:
        """Update m and v in place; return the bias-corrected m̂ and v̂."""
        k = state["step"]
        state["m"] = self.beta1 * state["m"] + (1.0 - self.beta1) * grad
        state["v"] = self.beta2 * state["v"] + (1.0 - self.beta2) * grad**2
        return state["m"] / (1.0 - self.beta1**k), state["v"] / (1.0 - self.beta2**k)

    def update(self, theta, grad, state):
        mhat, vhat = self._moments(grad, state)
        return self.lr * mhat / (np.sqrt(vhat) + self.eps)


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, θ ← (1 − ηλ)θ before the Adam step.

    Continuous map: as :class:`Adam` for λ = 0. For λ > 0 the drift
    :math:`-P\nabla L - \lambda\theta` is not a gradient flow under the θ-dependent P, so
    :meth:`model` refuses it (the simulator runs it). PyTorch's default λ is 1e-2; here it
    is 0 as in fpsolver's interface, so pass it explicitly.
    """

    name = "adamw"
    decoupled = True


class SAdam(Adam):
    r"""SAdam (Tong, Liang, Bi; reference code neilliang90/Sadam): Adam with a softplus denominator.

    Update (no ε; :math:`\mathrm{softplus}_s(x) = \ln(1+e^{sx})/s`):

    .. math::

        \theta_{k+1} = \theta_k - \eta\frac{\sqrt{1-\beta_2^k}}{1-\beta_1^k}\,\frac{m_k}{\mathrm{softplus}_s(\sqrt{v_k})},

    m, v as in Adam. Continuous map: as Adam with :math:`P = 1/\mathrm{softplus}_s(\sqrt{\hat v})`:
    ∝ 1/√v̂ (Adam-like, T ∝ √H) where :math:`s\sqrt{\hat v} \gg 1` (sharp), → s/ln 2 (SGD-like,
    T ∝ H) where it is ≪ 1 (flat).

    Parameters
    ----------
    lr, batch_size, beta1, beta2, weight_decay
        As :class:`Adam` (coupled decay).
    softplus
        Sharpness s > 0 (default 50).
    """

    name = "sadam"

    def __init__(self, lr: float, batch_size: int = 1, beta1: float = 0.9, beta2: float = 0.999, softplus: float = 50.0, weight_decay: float = 0.0):
        super().__init__(lr, batch_size, beta1, beta2, 0.0, weight_decay)
        self.softplus = _positive(softplus, f"{self.name}: softplus")

    def preconditioner(self, vhat):
        return 1.0 / _softplus(np.sqrt(vhat), self.softplus)

    def _denominator(self, state: State) -> np.ndarray:
        return state["v"]

    def update(self, theta, grad, state):
        k = state["step"]
        self._moments(grad, state)
        size = self.lr * np.sqrt(1.0 - self.beta2**k) / (1.0 - self.beta1**k)
        return size * state["m"] / _softplus(np.sqrt(self._denominator(state)), self.softplus)


class SAMSGrad(SAdam):
    r"""SAMSGrad: SAdam with AMSGrad's running maximum, denominator :math:`\mathrm{softplus}_s(\sqrt{\max_{j\le k} v_j})`.

    Continuous map: none. The running maximum of v has no frozen-v̂ limit (it keeps
    growing with the largest noise excursion), so :meth:`model` refuses; use
    :mod:`fpsolver.simulate`.
    """

    name = "samsgrad"

    def model(self, landscape, noise=None, dynamics="overdamped", convention="ito", freeze_at=None):
        raise InputError("samsgrad: no continuous-time model (the running max of v has no frozen limit); use fpsolver.simulate")

    def init_state(self, theta):
        return {**super().init_state(theta), "vmax": np.zeros_like(theta)}

    def _denominator(self, state):
        state["vmax"] = np.maximum(state["vmax"], state["v"])
        return state["vmax"]


class AdaMomentum(Adam):
    r"""AdaMomentum (Wang et al., arXiv 2106.11514): the second moment tracks the momentum, not the gradient.

    Update: :math:`m_k = \beta_1 m_{k-1} + (1-\beta_1) g_k`,
    :math:`v_k = \beta_2 v_{k-1} + (1-\beta_2) m_k^2 + \epsilon`,
    :math:`\theta_{k+1} = \theta_k - \eta\,\hat m_k/\sqrt{\hat v_k}` (bias corrections as Adam).

    Continuous map: as Adam with :math:`P = \hat v^{-1/2}`, frozen
    :math:`\hat v = \tfrac{1-\beta_1}{1+\beta_1}\operatorname{diag}C + (\nabla L)^2 + \epsilon/(1-\beta_2)`
    (the stationary :math:`E[m^2]` of an EMA of independent noise, plus the accumulated ε).
    Temperature near a minimum :math:`\sqrt{(1+\beta_1)/(1-\beta_1)}\,(\eta/2\sqrt B)\sqrt{H_i}`.
    """

    name = "adamomentum"

    def _check_bounded(self) -> None:
        """v tracks m², so |m̂|/√v̂ stays bounded for all β₁, β₂: no region to check."""

    def second_moment(self, landscape, noise, points):
        cov = noise.covariance(landscape, points, self.batch_size)
        grad = landscape.gradient(**{v: points[v] for v in landscape.variables})
        shrink = (1.0 - self.beta1) / (1.0 + self.beta1)
        return shrink * np.einsum("ii...->i...", cov) + grad**2 + self.eps / (1.0 - self.beta2)

    def preconditioner(self, vhat):
        return 1.0 / np.sqrt(vhat)

    def update(self, theta, grad, state):
        k = state["step"]
        state["m"] = self.beta1 * state["m"] + (1.0 - self.beta1) * grad
        state["v"] = self.beta2 * state["v"] + (1.0 - self.beta2) * state["m"] ** 2 + self.eps
        mhat = state["m"] / (1.0 - self.beta1**k)
        return self.lr * mhat / np.sqrt(state["v"] / (1.0 - self.beta2**k))


# Adai ---------------------------------------------------------------------------------------
class Adai(Optimizer):
    r"""Adai, adaptive inertia (Xie et al., ICML 2022; reference code zeke-xie/adaptive-inertia-adai).

    Update (k = 1, 2, …; coupled decay :math:`g \leftarrow g + \lambda\theta`):

    .. math::

        v_k &= \beta_2 v_{k-1} + (1-\beta_2) g_k^2, \quad \hat v_k = v_k/(1-\beta_2^k),
        \quad \bar v_k = \text{mean of } \hat v_k \text{ over all parameters},\\
        \beta_{1,k} &= \operatorname{clip}(1 - \beta_0 \hat v_k/\bar v_k,\ 0,\ 1-\epsilon),\\
        m_k &= \beta_{1,k} m_{k-1} + (1-\beta_{1,k}) g_k, \quad
        \theta_{k+1} = \theta_k - \eta\, m_k\big/\big(1 - \textstyle\prod_{j\le k}\beta_{1,j}\big).

    Continuous map: inertial with :math:`M_i = \eta/(1-\beta_{1,i})`,
    :math:`\gamma_i = (1-\beta_{1,i})/\eta` (:math:`\gamma M = 1`), β₁ from the frozen
    :math:`\hat v(\theta) = \operatorname{diag}C + (\nabla L)^2`. Its overdamped limit is
    SGD's: :math:`A = I`, :math:`D = (\eta/2)C` (the adaptive inertia only acts through
    the inertial dynamics). With one parameter v̂/v̄ ≡ 1 and β₁ ≡ 1 − β₀.

    Parameters
    ----------
    lr, batch_size
        η > 0, B ≥ 1.
    beta0
        Inertia scale β₀ ∈ [0, 1) (default 0.1).
    beta2
        In [0, 1) (default 0.99).
    eps
        Inertia bound ε ∈ (0, 1] (default 1e-3): β₁ ≤ 1 − ε. Not Adam's ε.
    weight_decay
        λ ≥ 0 (default 0).
    """

    name = "adai"
    adaptive = True

    def __init__(self, lr: float, batch_size: int = 1, beta0: float = 0.1, beta2: float = 0.99, eps: float = 1e-3, weight_decay: float = 0.0):
        super().__init__(lr, batch_size, weight_decay)
        self.beta0 = _beta(beta0, f"{self.name}: beta0")
        self.beta2 = _beta(beta2, f"{self.name}: beta2")
        self.eps = _positive(eps, f"{self.name}: eps")
        if self.eps > 1:
            raise InputError(f"{self.name}: eps bounds beta1 <= 1 - eps and must lie in (0, 1], got {eps!r}")

    @property
    def adaptive_mobility(self) -> bool:
        return False

    def inertia(self, vhat: np.ndarray) -> np.ndarray:
        r"""β₁ from v̂ of shape ``(n, ...)``: :math:`\operatorname{clip}(1 - \beta_0\hat v/\bar v, 0, 1-\epsilon)`, v̄ the mean over axis 0."""
        mean = vhat.mean(axis=0, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(mean > 0, vhat / np.where(mean > 0, mean, 1.0), 1.0)
        return np.clip(1.0 - self.beta0 * ratio, 0.0, 1.0 - self.eps)

    def heavy_ball(self, landscape, noise, points):
        moment_landscape = landscape if self.decoupled else self.training_landscape(landscape)
        beta1 = self.inertia(self.second_moment(moment_landscape, noise, points))
        return beta1, 1.0 - beta1, np.ones(1)

    def init_state(self, theta):
        return {"step": 0, "m": np.zeros_like(theta), "v": np.zeros_like(theta), "beta1_prod": np.ones_like(theta)}

    def update(self, theta, grad, state):
        k = state["step"]
        state["v"] = self.beta2 * state["v"] + (1.0 - self.beta2) * grad**2
        beta1 = self.inertia(state["v"] / (1.0 - self.beta2**k))
        state["beta1"] = beta1
        state["beta1_prod"] = state["beta1_prod"] * beta1
        state["m"] = beta1 * state["m"] + (1.0 - beta1) * grad
        return self.lr * state["m"] / (1.0 - state["beta1_prod"])


class AdaiW(Adai):
    r"""AdaiW: Adai with decoupled weight decay, θ ← (1 − ηλ)θ before the step.

    Continuous map: as :class:`Adai`; the mobility is 1, so the decay drift −λθ is the
    gradient of :math:`\tfrac{\lambda}{2}|\theta|^2` (v̂ uses the raw loss gradient).
    """

    name = "adaiw"
    decoupled = True


#: Optimizer kinds by name, for scenarios.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (GDNoise, SGD, Momentum, Adam, AdamW, Adai, AdaiW, SAdam, SAMSGrad, AdaMomentum)
}
