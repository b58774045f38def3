r"""Simulator against PDE: one escape problem per optimizer, self-similar in the effective step.

Every optimizer runs on the same family of double wells,

.. math::

    L_\varepsilon(x) = h\big((x/w)^2 - 1\big)^2,\qquad h = \tfrac98\varepsilon,\quad w = 3\sqrt\varepsilon,

with :math:`H_a = 8h/w^2 = 1` at the minima :math:`\pm w`, :math:`H_b = -\tfrac12` at the barrier
:math:`x = 0` and :math:`\Delta L = h`, from the left minimum to the target :math:`x \ge w`
(the other minimum: the discrete walk's overshoot there costs ~e^{-ΔL/T} of the time). The
learning rate is chosen so that the **effective step** :math:`\varepsilon = \eta A_a H_a`
(:math:`A_a` the optimizer's overdamped mobility at the minimum) is the same for all
optimizers. Substituting :math:`u = x/w` and :math:`s = A t` shows that the continuous
(overdamped) model is then one fixed process for every ε: the PDE's escape time
:math:`A\tau` does not change as ε → 0 while the discrete chain approaches it, so the
simulator's bias is a pure discrete-time error, measured against ε. (The inertial model's
inertia :math:`\omega_b^2/\gamma^2 = \varepsilon|H_b|/(1-\beta_1)` also vanishes with ε.)

Noise: :class:`~fpsolver.noise.HessianNoise` with δ = ½ (so D varies by 1.5× between the
minimum and the barrier and the three conventions differ by 20–50 %) for the methods
whose continuous model does not depend on v̂ in 1-D (SGD, Momentum, Adai); white noise
σ = 0.8 (ΔL/T = 3.5) for the adaptive ones (Adam, SAdam, AdaMomentum), with v̂ frozen at
the minimum, ``freeze_at = [-w]``: v averages g² over 1/(1−β₂) iterations, far longer than
the well's relaxation, and with white noise its well average is :math:`\sigma^2/B +
\langle L'^2\rangle = \sigma^2/B\,(1 + O(\varepsilon))`. With Hessian noise the well average
of :math:`|L''|` differs from :math:`H_a` by O(T/ΔL), an error that does not vanish with ε.

Time is SGD time t = kη throughout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from scipy.integrate import quad

from .errors import InputError
from .grid import Grid
from .landscapes import Landscape
from .models import VELOCITY_WIDTH, Inertial, Overdamped
from .noise import HessianNoise, NoiseModel, WhiteNoise
from .optimizers import OPTIMIZERS, Dynamics, Optimizer
from .problem import FokkerPlanck
from .simulate import escape_times
from .theory import optimizer_escape_time

__all__ = ["EscapeCase", "escape_case", "compare_escape", "exact_exponent", "theory_escape_time", "NOISE_DELTA", "WHITE_SIGMA"]

#: δ of the Hessian noise (in units of H_a = 1) for the non-adaptive optimizers.
NOISE_DELTA = 0.5
#: σ of the white noise for the adaptive optimizers (T = εσ²/2, ΔL/T = 3.5 with B = 1).
WHITE_SIGMA = 0.8
#: Cells per unit of w along x, and along the velocity axis in total (phase space).
_CELLS_X, _CELLS_R = 200, 100


@dataclass(frozen=True)
class EscapeCase:
    """One optimizer on the double well :math:`L_\\varepsilon` at effective step ε (see the module docstring).

    Attributes
    ----------
    optimizer, landscape, noise
        What the simulator runs.
    model
        The continuous-time model the PDE solves.
    grid
        The PDE's grid (x, and r for the inertial model).
    start, target
        Left minimum and the escape region ``x >= w``.
    step
        ε = η A_a H_a.
    convention, dynamics, frozen
        How the model was built (``frozen``: adaptive coefficients at the minimum).
    extra
        The inertial model's ``mass`` and ``damping`` at the minimum.
    """

    optimizer: Optimizer
    landscape: Landscape
    noise: NoiseModel
    model: Overdamped | Inertial
    grid: Grid
    start: list[float]
    target: str
    step: float
    dynamics: str
    convention: str
    frozen: bool
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def width(self) -> float:
        """w: the minima are at ±w, the barrier at 0."""
        return -self.start[0]


def _well(step: float) -> tuple[Landscape, float]:
    width = 3.0 * float(np.sqrt(step))
    return Landscape.double_well(height=9.0 * step / 8.0, width=width), width


def _noise_for(optimizer: Optimizer, sigma: float, white: bool | None) -> NoiseModel:
    """White noise where the mobility depends on v̂ (Adam-like), Hessian noise otherwise, unless ``white`` says."""
    if white is None:
        white = optimizer.adaptive_mobility
    return WhiteNoise(sigma) if white else HessianNoise(NOISE_DELTA)


def escape_case(
    kind: str,
    step: float,
    dynamics: Dynamics = "overdamped",
    convention: str = "ito",
    freeze: bool = True,
    batch_size: int = 1,
    sigma: float = WHITE_SIGMA,
    white: bool | None = None,
    **hyperparameters: Any,
) -> EscapeCase:
    r"""The escape problem of optimizer ``kind`` at effective step ε = ``step``.

    Parameters
    ----------
    kind
        A key of :data:`fpsolver.optimizers.OPTIMIZERS` (not ``gd_noise``, ``samsgrad``).
    step
        ε = η A_a H_a ∈ (0, 0.2].
    dynamics, convention
        Passed to :meth:`Optimizer.model`.
    freeze
        Adaptive coefficients frozen at the minimum (default), or θ-dependent.
    batch_size, sigma
        B and the white noise's σ: the exponent grows as B (Hessian noise) or as B/σ² (white).
    white
        White noise (True) or Hessian noise (False); default white for Adam-like kinds only.
    hyperparameters
        Other optimizer keywords (``beta1``, ``form``, …); ``lr`` is set from ε.
    """
    if kind not in OPTIMIZERS or kind in ("gd_noise", "samsgrad"):
        raise InputError(f"escape_case: optimizer kind must be one of {sorted(set(OPTIMIZERS) - {'gd_noise', 'samsgrad'})}, got {kind!r}")
    if not isinstance(step, (int, float)) or not 0 < step <= 0.2:
        raise InputError(f"escape_case: the effective step must lie in (0, 0.2], got {step!r}")
    cls = OPTIMIZERS[kind]
    landscape, width = _well(step)
    minimum = {"x": np.array([-width])}
    probe = cls(1.0, batch_size, **hyperparameters)
    noise = _noise_for(probe, sigma, white)
    mobility = float(probe.mobility(landscape, noise, minimum)[0, 0])
    optimizer = cls(step / mobility, batch_size, **hyperparameters)
    freeze_at = [-width] if freeze and cls.adaptive else None
    model = optimizer.model(landscape, noise, dynamics=dynamics, convention=convention, freeze_at=freeze_at)
    x_axis = (-2.0 * width, 1.1 * width, int(round(3.1 * _CELLS_X)))
    if dynamics == "inertial":
        b1, b3, p = (float(np.ravel(c)[0]) for c in optimizer.heavy_ball(landscape, noise, minimum))  # at the minimum (= freeze_at)
        mass, damping = optimizer.lr / (b3 * p), (1.0 - b1) / optimizer.lr
        xs = {"x": np.linspace(-1.5 * width, width, 201)}
        diffusion = 0.5 * optimizer.lr * np.einsum("ii...->i...", noise.covariance(landscape, xs, 1))[0]
        spread = np.sqrt(np.max(diffusion) / (damping * mass) / mass)
        r_max = (VELOCITY_WIDTH + 2.0) * spread
        grid = Grid.uniform(x=x_axis, r=(-r_max, r_max, _CELLS_R))
        extra = {"mass": mass, "damping": damping}
    else:
        grid = Grid.uniform(x=x_axis)
        extra = {}
    return EscapeCase(optimizer, landscape, noise, model, grid, [-width], f"x >= {width!r}", float(step), dynamics, convention, freeze, extra)


def exact_exponent(case: EscapeCase) -> float:
    r""":math:`\Delta\Phi = \int_a^b 2L'/(\eta A C)\,dx` from the minimum to the barrier, by adaptive quadrature
    (the overdamped model's exponent; also the inertial one's in its Smoluchowski limit)."""
    frozen = np.array(case.start) if case.frozen and case.optimizer.adaptive else None

    def integrand(x: float) -> float:
        at = {"x": np.array([x])}
        a = float(case.optimizer.mobility(case.landscape, case.noise, at, frozen)[0, 0])
        c = float(case.noise.covariance(case.landscape, at, case.optimizer.batch_size)[0, 0, 0])
        return float(2 * case.landscape.gradient(np.array([x]))[0, 0] / (case.optimizer.lr * a * c))

    value, _ = quad(integrand, -case.width, 0.0, epsabs=0.0, epsrel=1e-10, limit=200, points=[-case.width / np.sqrt(3)])
    return float(value)


def theory_escape_time(case: EscapeCase, exponent: float | None = None) -> float:
    """:func:`fpsolver.theory.optimizer_escape_time` for ``case`` (H_a = 1, H_b = −½, its noise at a and b),
    with the exact exponent (:func:`exact_exponent`) unless ``exponent`` is given."""
    hyper = {k: v for k, v in case.optimizer.hyperparameters().items() if k not in ("lr", "batch_size", "weight_decay")}
    at = {"x": np.array([-case.width, 0.0])}
    sigma = case.noise.per_sample(case.landscape, at)[0, 0]
    return optimizer_escape_time(
        case.optimizer.name,
        case.landscape.value(np.array([0.0]))[0] - case.landscape.value(np.array([-case.width]))[0],
        1.0,
        -0.5,
        case.optimizer.lr,
        case.optimizer.batch_size,
        variances=(float(sigma[0]), float(sigma[1])),
        convention=case.convention,
        dynamics=case.dynamics,
        frozen=case.frozen,
        exponent=exact_exponent(case) if exponent is None else exponent,
        **hyper,
    )


def _pde_start(case: EscapeCase) -> list[float]:
    return case.start + [0.0] * (case.grid.ndim - 1)


def compare_escape(
    case: EscapeCase,
    particles: int = 4000,
    seed: int = 0,
    max_iterations: int = 2_000_000,
    pde: Callable[[EscapeCase], float] | None = None,
) -> xr.Dataset:
    r"""Mean escape time from the simulator (with its 95 % interval) and from the PDE, in SGD time.

    Returns
    -------
    xarray.Dataset
        Scalars ``simulated``, ``ci_low``, ``ci_high``, ``pde`` (mean first-passage time of
        the continuous model from the minimum, at rest in phase space), ``bias`` =
        simulated/pde − 1 and ``half_width`` (relative); attributes describe the case.
    """
    ds = escape_times(case.optimizer, case.landscape, case.start, case.target, noise=case.noise, particles=particles, max_iterations=max_iterations, seed=seed)
    tau = pde(case) if pde is not None else float(FokkerPlanck(case.model, case.grid).mfpt(start=_pde_start(case), target=case.target))
    mean = float(ds.mean_escape_time)
    low, high = (float(v) for v in ds.mean_escape_time_ci.values)
    return xr.Dataset(
        {
            "simulated": ((), mean),
            "ci_low": ((), low),
            "ci_high": ((), high),
            "pde": ((), tau),
            "bias": ((), mean / tau - 1.0),
            "half_width": ((), (high - low) / 2 / mean),
            "mean_escape_iterations": ((), float(ds.mean_escape_iterations)),
        },
        attrs={
            "optimizer": repr(case.optimizer),
            "noise": repr(case.noise),
            "step": case.step,
            "dynamics": case.dynamics,
            "convention": case.convention,
            "particles": particles,
            "seed": seed,
            "time_unit": "SGD time t = iteration * lr",
        },
    )
