r"""Closed-form rate theory, and an independent 1-D mean first-passage time by quadrature.

Formulas follow Hänggi, Talkner & Borkovec, Rev. Mod. Phys. 62, 251 (1990) and Risken,
*The Fokker–Planck Equation*; temperatures with :math:`k_B = 1`; rates :math:`k = 1/\tau`.

=============================  ==================================================================
function                       formula
=============================  ==================================================================
:func:`xie_sgd_escape_time`    SGD escape time with gradient noise :math:`D = (\eta/2B)H` (Xie et al. 2021)
:func:`kramers_overdamped`     :math:`k = \frac{\mu}{2\pi}\sqrt{U''_a|U''_b|}\,e^{-\Delta U/T}`
:func:`eyring_kramers`         :math:`k = \frac{\lambda_+}{2\pi}\sqrt{\det H_a/|\det H_b|}\,e^{-\Delta U/T}`
:func:`kramers_moderate`       :math:`k = \frac{\omega_0}{2\pi}\frac{\sqrt{\gamma^2/4+\omega_b^2}-\gamma/2}{\omega_b}e^{-\Delta U/T}`
:func:`energy_diffusion`       :math:`k = \frac{\gamma S_b}{T}\frac{\omega_0}{2\pi}e^{-\Delta U/T}`
:func:`turnover_factor`        Mel'nikov–Meshkov :math:`A(\Delta)`
:func:`mfpt_1d`                exact 1-D MFPT by quadrature, in log space (any convention)
:func:`langer_inertial`        :math:`k = \frac{\lambda_+}{2\pi}\sqrt{\det H_a/|\det H_b|}\,e^{-\Delta U/T}`, :math:`\det(M\lambda^2 + \gamma M\lambda + H_b) = 0`
:func:`barrier_action`         :math:`S_b = \oint\sqrt{2M(E_b - U)}\,dx` of the barrier-energy orbit (1-D)
``optimizer_*``, ``saddle_*``  per-optimizer temperatures, variances, saddle MSD, escape exponents and times with prefactors (§3–§5)
``heavy_ball_*``, ``adam_*``   the exact discrete heavy-ball chain at a saddle; Adam's bounded-update region and step bound
=============================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.integrate as si
from scipy.linalg import expm

from .errors import InputError
from .models import CONVENTIONS

__all__ = [
    "kramers_overdamped",
    "eyring_kramers",
    "kramers_moderate",
    "energy_diffusion",
    "turnover_factor",
    "mfpt_1d",
    "log_mfpt_1d",
    "xie_sgd_escape_time",
    "langer_inertial",
    "barrier_action",
    "optimizer_temperature",
    "optimizer_stationary_variance",
    "sgd_discrete_stationary_variance",
    "adam_bounded_update",
    "saddle_msd_sgd",
    "saddle_msd_adam",
    "inertial_covariance",
    "inertial_instability_rate",
    "heavy_ball_saddle_growth_rate",
    "optimizer_escape_exponent",
    "adam_update_bound",
    "optimizer_heavy_ball",
    "optimizer_escape_time",
    "optimizer_saddle_msd",
    "heavy_ball_saddle_msd",
]


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not np.all(np.asarray(value) > 0):
            raise InputError(f"{name} must be positive, got {value!r}")


def kramers_overdamped(curvature_min: float, curvature_barrier: float, barrier: float, temperature: float, mobility: float = 1.0) -> float:
    r"""Overdamped 1-D Kramers rate past the barrier, :math:`\frac{\mu}{2\pi}\sqrt{U''_a|U''_b|}e^{-\Delta U/T}`.

    The mean first-passage time to the barrier *top* is about half of :math:`1/k`.
    """
    _positive(curvature_min=curvature_min, temperature=temperature, mobility=mobility)
    return mobility / (2 * np.pi) * np.sqrt(curvature_min * abs(curvature_barrier)) * np.exp(-barrier / temperature)


def eyring_kramers(hessian_min: np.ndarray, hessian_saddle: np.ndarray, barrier: float, temperature: float, mobility: np.ndarray | float = 1.0) -> float:
    r"""Eyring–Kramers (Langer) rate for overdamped dynamics :math:`\dot\theta = -\mu\nabla U + \text{noise}`, uniform T.

    :math:`\lambda_+` is minus the negative eigenvalue of :math:`\mu H_b`.
    """
    ha, hb = np.atleast_2d(hessian_min), np.atleast_2d(hessian_saddle)
    mu = np.asarray(mobility, dtype=float) * (np.eye(ha.shape[0]) if np.ndim(mobility) == 0 else 1.0)
    mu = np.diag(mu) if mu.ndim == 1 else mu
    growth = np.linalg.eigvals(mu @ hb).real
    if np.sum(growth < 0) != 1:
        raise InputError("the saddle Hessian (times the mobility) must have exactly one negative eigenvalue")
    lam = -growth.min()
    return lam / (2 * np.pi) * np.sqrt(np.linalg.det(ha) / abs(np.linalg.det(hb))) * np.exp(-barrier / temperature)


def kramers_moderate(omega_min: float, omega_barrier: float, damping: float, barrier: float, temperature: float) -> float:
    r"""Kramers rate at moderate-to-strong damping γ (Langevin :math:`m\ddot x = -U' - m\gamma\dot x + \text{noise}`)."""
    _positive(omega_min=omega_min, omega_barrier=omega_barrier, damping=damping, temperature=temperature)
    transmission = (np.sqrt(damping**2 / 4 + omega_barrier**2) - damping / 2) / omega_barrier
    return omega_min / (2 * np.pi) * transmission * np.exp(-barrier / temperature)


def energy_diffusion(omega_min: float, damping: float, action: float, barrier: float, temperature: float) -> float:
    r"""Weak-damping (energy-diffusion) rate :math:`\frac{\gamma S_b}{T}\frac{\omega_0}{2\pi}e^{-\Delta U/T}`,
    with :math:`S_b` the action of the orbit at the barrier energy."""
    _positive(omega_min=omega_min, damping=damping, action=action, temperature=temperature)
    return damping * action / temperature * omega_min / (2 * np.pi) * np.exp(-barrier / temperature)


def turnover_factor(delta: float) -> float:
    r"""Mel'nikov–Meshkov depopulation factor

    .. math:: A(\Delta) = \exp\left\{\frac1\pi\int_{-\infty}^{\infty}
              \frac{\ln\left[1 - e^{-\Delta(1+x^2)/4}\right]}{1+x^2}\,dx\right\},

    with :math:`A \approx \Delta` as :math:`\Delta\to0` and :math:`A\to1` as :math:`\Delta\to\infty`;
    the turnover rate is :math:`A(\Delta)\,k_{\rm Kramers}`, :math:`\Delta = \gamma S_b/T`.
    """
    _positive(delta=delta)

    def integrand(x: float) -> float:
        return float(np.log(-np.expm1(-delta * (1 + x * x) / 4)) / (1 + x * x))

    value, _ = si.quad(integrand, -np.inf, np.inf, limit=200, epsabs=1e-14, epsrel=1e-12)
    return float(np.exp(value / np.pi))


def xie_sgd_escape_time(
    barrier: float, curvature_min: float, curvature_barrier: float, learning_rate: float, batch_size: float, share: float | None = None
) -> float:
    r"""SGD escape time of Xie, Sato & Sugiyama (ICLR 2021), in SGD time :math:`t = k\eta`:

    .. math::

        \tau = \frac{2\pi}{|H_b|}\exp\left[\frac{2B\Delta L}{\eta}
                \left(\frac{s}{H_a} + \frac{1-s}{|H_b|}\right)\right],

    for gradient noise :math:`D = (\eta/2B)H` in the isothermal convention (its
    quasi-equilibrium ansatz). ``share`` is :math:`s`, the fraction of the barrier climbed in
    the minimum's quadratic region; by default :math:`|H_b|/(H_a + |H_b|)`, exact for a
    :math:`C^1` piecewise-quadratic loss. Divide by :math:`\eta` for iterations.
    """
    _positive(barrier=barrier, curvature_min=curvature_min, learning_rate=learning_rate, batch_size=batch_size)
    h_b = abs(curvature_barrier)
    s = h_b / (curvature_min + h_b) if share is None else share
    if not 0 <= s <= 1:
        raise InputError(f"the share s must lie in [0, 1], got {s}")
    exponent = 2 * batch_size * barrier / learning_rate * (s / curvature_min + (1 - s) / h_b)
    return float(2 * np.pi / h_b * np.exp(exponent))


def log_mfpt_1d(
    drift: Callable[[np.ndarray], np.ndarray],
    diffusion: Callable[[np.ndarray], np.ndarray],
    reflecting: float,
    absorbing: float,
    start: float,
    convention: str = "ito",
    points: int = 2**16,
    breakpoints: Sequence[float] = (),
) -> float:
    r"""Natural log of the exact mean first-passage time of a 1-D diffusion, by quadrature.

    For the Itô equation :math:`dx = a\,dt + \sqrt{2D}\,dW`, reflecting at ``reflecting``,
    absorbing at ``absorbing`` (either side),

    .. math::

        T(x_0) = \int_{x_0}^{x_b} dy\,\psi(y)\int_{x_L}^{y}\frac{dz}{D(z)\psi(z)},\qquad
        \psi = e^{-\Phi},\ \Phi' = \frac{a_{\rm eff}}{D},

    where :math:`a_{\rm eff}` is :math:`a` (Itô), :math:`a + D'/2` (Stratonovich) or
    :math:`a + D'` (isothermal). Everything is evaluated in log space (cumulative Simpson
    sums shifted by their maxima), so it works for barriers of hundreds of T. This is
    independent of fpsolver's operators and serves as their reference.

    Parameters
    ----------
    drift, diffusion
        Vectorised :math:`a(x)` (the physical drift, e.g. :math:`-AL'`) and :math:`D(x) > 0`.
    reflecting, absorbing
        Positions of the reflecting and the absorbing end.
    start
        Starting point, between the two ends.
    convention
        ``"ito"``, ``"stratonovich"`` or ``"isothermal"``.
    points
        Total quadrature points; ~1e-12 relative accuracy for smooth data.
    breakpoints
        Points where a or D is not smooth (kinks or jumps of D): the quadrature splits there,
        takes one-sided derivatives, adds the jump :math:`(1-s)\Delta\ln D` that a jump of D
        puts into :math:`\Phi` (the delta in D'), and keeps its fourth order. Without them a kink
        costs the quadrature its order (measured: 6e-4 error at 65k points for |L''|-type noise).
    """
    if convention not in CONVENTIONS:
        raise InputError(f"unknown convention {convention!r}")
    lo, hi = sorted((reflecting, absorbing))
    if not lo <= start <= hi:
        raise InputError(f"start {start} must lie between {lo} and {hi}")
    sign = 1.0 if absorbing > reflecting else -1.0
    # Work in u = sign * x, which runs from the reflecting to the absorbing end, split at breakpoints.
    ends = np.unique(np.concatenate([[lo, hi], [b for b in breakpoints if lo < b < hi]]))
    edges = sign * ends if sign > 0 else (sign * ends)[::-1]
    segments = []
    for left, right in zip(edges[:-1], edges[1:]):
        count = max(5, int(points * (right - left) / (edges[-1] - edges[0])) | 1)
        u = np.linspace(left, right, count)
        # Coefficients at a segment's end nodes are its own one-sided limits (D may jump there).
        nudge = 1e-12 * (edges[-1] - edges[0])
        x = sign * np.concatenate([[u[0] + nudge], u[1:-1], [u[-1] - nudge]])
        d = np.asarray(diffusion(x), dtype=float) * np.ones_like(u)
        if np.any(d <= 0):
            raise InputError("the diffusion must be positive on the interval")
        d_prime_u = np.gradient(d, u, edge_order=2)  # one-sided at the segment ends
        a_eff = sign * np.asarray(drift(x), dtype=float) + (1.0 - CONVENTIONS[convention]) * d_prime_u
        segments.append((u, d, a_eff / d))
    # Where D jumps at a breakpoint, D' holds a delta: Phi jumps by (1 - s) * (ln D+ - ln D-).
    jumps = [(1.0 - CONVENTIONS[convention]) * np.log(nxt[1][0] / prev[1][-1]) for prev, nxt in zip(segments[:-1], segments[1:])]
    phi = _chained([s[2] for s in segments], [s[0] for s in segments], jumps)
    shift = max(p.max() for p in phi)
    inner = _chained([np.exp(p - shift) / s[1] for p, s in zip(phi, segments)], [s[0] for s in segments])
    u_all = np.concatenate([s[0] for s in segments])
    with np.errstate(divide="ignore"):
        log_outer = np.concatenate([np.log(i) + shift - p for i, p in zip(inner, phi)])
    top = log_outer.max()
    # Integrate from the absorbing end backwards, then interpolate at the start.
    pieces, offsets = [], np.cumsum([0] + [s[0].size for s in segments])
    values = np.exp(log_outer - top)
    reversed_u = [-s[0][::-1] for s in segments[::-1]]
    reversed_v = [values[o:e][::-1] for o, e in zip(offsets[:-1][::-1], offsets[1:][::-1])]
    pieces = _chained(reversed_v, reversed_u)
    tail = np.concatenate(pieces)[::-1]
    value = float(np.interp(sign * start, u_all, tail))
    return float(np.log(value) + top) if value > 0 else -np.inf


def _chained(values: list[np.ndarray], nodes: list[np.ndarray], jumps: Sequence[float] = ()) -> list[np.ndarray]:
    """Cumulative Simpson integrals over consecutive segments, each continuing from the last
    (plus ``jumps[i]`` between segment i and i + 1)."""
    out, carry = [], 0.0
    steps = list(jumps) + [0.0] * len(values)
    for v, u, jump in zip(values, nodes, steps):
        piece = carry + si.cumulative_simpson(v, x=u, initial=0.0)
        out.append(piece)
        carry = float(piece[-1]) + jump
    return out


def mfpt_1d(*args, **kwargs) -> float:
    """:func:`log_mfpt_1d`, exponentiated (overflows to inf beyond ~1e308)."""
    return float(np.exp(log_mfpt_1d(*args, **kwargs)))


def langer_inertial(
    hessian_min: np.ndarray, hessian_saddle: np.ndarray, mass: np.ndarray, damping: np.ndarray, barrier: float, temperature: float
) -> float:
    r"""Langer's rate for inertial dynamics :math:`M\ddot\theta = -\nabla U - \gamma M\dot\theta + \text{noise}`
    (moderate-to-strong damping, uniform T), with diagonal mass and damping:

    .. math:: k = \frac{\lambda_+}{2\pi}\sqrt{\frac{\det H_a}{|\det H_b|}}\,e^{-\Delta U/T},

    :math:`\lambda_+` the positive root of :math:`\det(M\lambda^2 + \gamma M\lambda + H_b) = 0`
    (the kinetic parts of the phase-space Hessians cancel). In 1-D it is
    :func:`kramers_moderate` with :math:`\omega_0^2 = H_a/M`, :math:`\omega_b^2 = |H_b|/M`.
    """
    ha, hb = np.atleast_2d(hessian_min), np.atleast_2d(hessian_saddle)
    n = ha.shape[0]
    m = np.diag(np.broadcast_to(np.asarray(mass, dtype=float), (n,)))
    g = np.diag(np.broadcast_to(np.asarray(damping, dtype=float), (n,)))
    _positive(mass=np.diag(m), damping=np.diag(g), temperature=temperature)
    # Linearised dynamics at the saddle, z = (theta, r): dz/dt = [[0, I], [-M^-1 H_b, -gamma]] z.
    minv = np.linalg.inv(m)
    system = np.block([[np.zeros((n, n)), np.eye(n)], [-minv @ hb, -g]])
    growth = np.linalg.eigvals(system).real
    if np.sum(growth > 0) != 1:
        raise InputError("the saddle must have exactly one unstable direction")
    lam = float(growth.max())
    return lam / (2 * np.pi) * np.sqrt(np.linalg.det(ha) / abs(np.linalg.det(hb))) * np.exp(-barrier / temperature)


def barrier_action(potential: Callable[[np.ndarray], np.ndarray], minimum: float, saddle: float, mass: float, points: int = 20001) -> float:
    r"""Action :math:`S_b = \oint\sqrt{2M(E_b - U)}\,dx` of the orbit at the barrier energy :math:`E_b = U(\text{saddle})`
    in the well around ``minimum`` (1-D): twice the integral from the far turning point to the saddle.

    The far turning point is found by bisection on the other side of the minimum; the integrand
    has square-root zeros at both ends, handled by the substitution :math:`x = a + (b-a)(1-\cos u)/2`.
    """
    _positive(mass=mass)
    energy = float(potential(np.array([saddle]))[0])
    direction = -np.sign(saddle - minimum)
    step = abs(saddle - minimum)
    for _ in range(60):  # walk out until the potential exceeds the barrier energy
        far = minimum + direction * step
        if float(potential(np.array([far]))[0]) >= energy:
            break
        step *= 2
    else:
        raise InputError("the well around the minimum is not closed at the barrier energy")
    lo, hi = minimum, far
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float(potential(np.array([mid]))[0]) >= energy:
            hi = mid
        else:
            lo = mid
    turning = 0.5 * (lo + hi)
    a, b = sorted((turning, saddle))
    u = np.linspace(0.0, np.pi, points)
    x = a + (b - a) * (1 - np.cos(u)) / 2
    dx_du = (b - a) * np.sin(u) / 2
    integrand = np.sqrt(np.clip(2 * mass * (energy - potential(x)), 0.0, None)) * dx_du
    return float(2 * si.simpson(integrand, x=u))


# Optimizers (THEORY.md §3–§5) ---------------------------------------------------------------
# Per-direction temperature near a minimum, T_i = (A D)_i with D = (η/2B) H_i and the optimizer's
# overdamped mobility A_i (Adam-like: A = P with the frozen v̂ = H/B, ε → 0), as a function of
# (H_i, lr, batch_size, hyperparameters).
_TEMPERATURE: dict[str, Callable[..., np.ndarray]] = {
    "sgd": lambda h, lr, b, **_: lr * h / (2 * b),
    "momentum": lambda h, lr, b, beta1=0.9, form="pytorch", **_: lr * h / (2 * b) / ((1 - beta1) if form == "pytorch" else 1.0),
    "adam": lambda h, lr, b, **_: lr / (2 * np.sqrt(b)) * np.sqrt(h),
    "adai": lambda h, lr, b, **_: lr * h / (2 * b),
    "sadam": lambda h, lr, b, softplus=50.0, **_: lr * h / (2 * b) / (np.logaddexp(0.0, softplus * np.sqrt(h / b)) / softplus),
    "adamomentum": lambda h, lr, b, beta1=0.9, **_: np.sqrt((1 + beta1) / (1 - beta1)) * lr / (2 * np.sqrt(b)) * np.sqrt(h),
}
_TEMPERATURE["adamw"] = _TEMPERATURE["adam"]
_TEMPERATURE["adaiw"] = _TEMPERATURE["adai"]


def optimizer_temperature(kind: str, curvature: np.ndarray | float, lr: float, batch_size: int, **hyperparameters: float | str) -> np.ndarray:
    r"""Temperature :math:`T_i` of an optimizer near a minimum with Hessian eigenvalues :math:`H_i` (THEORY.md §3).

    ====================  ==========================================================
    kind                  :math:`T_i` (noise :math:`C = H/B`, Adam-like ε → 0)
    ====================  ==========================================================
    sgd, adai, adaiw      :math:`\eta H_i/(2B)`
    momentum              :math:`\eta H_i/(2B(1-\beta_1))` (``form="pytorch"``), :math:`\eta H_i/(2B)` (``"ema"``)
    adam, adamw           :math:`(\eta/2\sqrt B)\sqrt{H_i}`
    sadam                 :math:`(\eta H_i/2B)/\mathrm{softplus}_s(\sqrt{H_i/B})`
    adamomentum           :math:`\sqrt{(1+\beta_1)/(1-\beta_1)}\,(\eta/2\sqrt B)\sqrt{H_i}`
    ====================  ==========================================================

    Overdamped limit, SGD time; the stationary variance is :math:`T_i/H_i`
    (:func:`optimizer_stationary_variance`).
    """
    try:
        formula = _TEMPERATURE[kind]
    except KeyError:
        raise InputError(f"no temperature formula for optimizer {kind!r}; known: {', '.join(_TEMPERATURE)}") from None
    h = np.asarray(curvature, dtype=float)
    _positive(curvature=h, lr=lr, batch_size=batch_size)
    return np.asarray(formula(h, lr, batch_size, **hyperparameters), dtype=float)


def optimizer_stationary_variance(kind: str, curvature: np.ndarray | float, lr: float, batch_size: int, **hyperparameters: float | str) -> np.ndarray:
    r"""Stationary :math:`\operatorname{Var}\theta_i = T_i/H_i` near a minimum (overdamped, small η); see :func:`optimizer_temperature`.

    For SGD it is :math:`\eta/(2B)` in every direction: the covariance is isotropic for any H.
    """
    return optimizer_temperature(kind, curvature, lr, batch_size, **hyperparameters) / np.asarray(curvature, dtype=float)


def sgd_discrete_stationary_variance(curvature: float, lr: float, batch_size: int) -> float:
    r"""Exact stationary variance of *discrete* SGD on :math:`L = H\theta^2/2` with noise :math:`C = H/B`:

    :math:`\theta_{k+1} = (1-\eta H)\theta_k - \eta\xi_k` gives
    :math:`\operatorname{Var} = \eta/(B(2-\eta H))` for :math:`0 < \eta H < 2` (the continuous
    value η/2B is its η → 0 limit); NaN beyond the stability limit.
    """
    _positive(curvature=curvature, lr=lr, batch_size=batch_size)
    x = lr * curvature
    return float(lr / (batch_size * (2 - x))) if x < 2 else float("nan")


def adam_bounded_update(beta1: float, beta2: float) -> bool:
    r"""Whether Adam's :math:`(\beta_1, \beta_2)` lie in the bounded-update region :math:`\beta_1^2 < \beta_2` (Gould & Tanaka, arXiv 2411.05746)."""
    return bool(beta1**2 < beta2)


def saddle_msd_sgd(time: np.ndarray | float, curvature: float, lr: float, batch_size: int) -> np.ndarray:
    r"""SGD from rest at a saddle, direction with :math:`H = -h`: :math:`\langle\theta^2\rangle = (\eta/2B)(e^{2ht}-1)` (THEORY §4, SGD time)."""
    h = abs(curvature)
    _positive(curvature=h, lr=lr, batch_size=batch_size)
    return lr / (2 * batch_size) * np.expm1(2 * h * np.asarray(time, dtype=float))


def saddle_msd_adam(time: np.ndarray | float, curvature: float, lr: float, batch_size: int) -> np.ndarray:
    r"""Adam (β₁ → 0, frozen :math:`P = \sqrt{B/h}`) from rest at a saddle:
    :math:`\langle\theta^2\rangle = (\eta/2)(e^{2\sqrt{Bh}t}-1)/\sqrt{Bh} \approx \eta t` — independent of h at early times."""
    h = abs(curvature)
    _positive(curvature=h, lr=lr, batch_size=batch_size)
    rate = np.sqrt(batch_size * h)
    return lr / 2 * np.expm1(2 * rate * np.asarray(time, dtype=float)) / rate


def inertial_covariance(time: float, curvature: float, mass: float, damping: float, diffusion: float) -> np.ndarray:
    r"""Covariance of :math:`(\theta, r)` at ``time`` for the linear inertial model from rest at the origin,

    :math:`d\theta = r\,dt`, :math:`M\,dr = -\gamma M r\,dt - H\theta\,dt + \sqrt{2D}\,dW`:

    .. math::

        \Sigma(t) = \int_0^t e^{As} Q e^{A^\top s}\,ds, \quad A = \begin{pmatrix}0 & 1\\ -H/M & -\gamma\end{pmatrix},
        \quad Q = \operatorname{diag}(0, 2D/M^2)

    (THEORY §4; H < 0 at a saddle). The three moments :math:`y = (\Sigma_{\theta\theta}, \Sigma_{\theta r}, \Sigma_{rr})`
    obey :math:`\dot y = Ky + q` with :math:`K` = [[0, 2, 0], [−H/M, −γ, 1], [0, −2H/M, −2γ]],
    :math:`q = (0, 0, 2D/M^2)`, so :math:`y(t) = \int_0^t e^{Ks}q\,ds`, the last column of the
    exponential of the augmented matrix [[Kt, qt], [0, 0]]: exact also at critical damping
    (defective K), accurate at small t and stiff (large) damping. Returns
    [[Var θ, Cov], [Cov, Var r]].
    """
    _positive(mass=mass, diffusion=diffusion)
    if not damping >= 0:
        raise InputError(f"damping must be >= 0, got {damping!r}")
    if not time >= 0:
        raise InputError(f"time must be >= 0, got {time!r}")
    w = curvature / mass
    aug = np.zeros((4, 4))
    aug[:3, :3] = [[0.0, 2.0, 0.0], [-w, -damping, 1.0], [0.0, -2 * w, -2 * damping]]
    aug[2, 3] = 2 * diffusion / mass**2
    tt, tr, rr = expm(aug * float(time))[:3, 3]
    return np.array([[tt, tr], [tr, rr]])


def inertial_instability_rate(curvature: float, mass: float, damping: float) -> float:
    r"""Growth rate at a saddle (:math:`H = -h`): :math:`\lambda_+ = -\gamma/2 + \sqrt{\gamma^2/4 + h/M}`."""
    h = abs(curvature)
    _positive(curvature=h, mass=mass)
    return float(-damping / 2 + np.sqrt(damping**2 / 4 + h / mass))


def heavy_ball_saddle_growth_rate(curvature: float, lr: float, beta1: float, beta3: float = 1.0, preconditioner: float = 1.0) -> float:
    r"""Exact growth rate of the *discrete* heavy-ball iteration at a saddle (:math:`H = -h`), per SGD time.

    :math:`\theta_{k+1} = \theta_k + \beta_1(\theta_k - \theta_{k-1}) + \eta P\beta_3 h\,\theta_k` grows as
    :math:`z_+^k`, :math:`z_+ = \tfrac12\big(a + \sqrt{a^2 - 4\beta_1}\big)`, :math:`a = 1 + \beta_1 + \eta P\beta_3 h`;
    the rate is :math:`\ln z_+/\eta`. Its η → 0 limit is the inertial model's
    :func:`inertial_instability_rate` with :math:`M = \eta/(\beta_3 P)`, :math:`\gamma = (1-\beta_1)/\eta`.
    """
    h = abs(curvature)
    _positive(curvature=h, lr=lr, beta3=beta3, preconditioner=preconditioner)
    if not 0 <= beta1 < 1:
        raise InputError(f"beta1 must lie in [0, 1), got {beta1!r}")
    a = 1 + beta1 + lr * preconditioner * beta3 * h
    return float(np.log((a + np.sqrt(a * a - 4 * beta1)) / 2) / lr)


# Exponent of log τ (ΔL/T along the escape path) per optimizer, as a function of
# (ΔL, H_a, |H_b|, s, lr, batch_size, hyperparameters).
_ESCAPE_EXPONENT: dict[str, Callable[..., float]] = {
    "sgd": lambda dl, ha, hb, s, lr, b, **_: 2 * b * dl / lr * (s / ha + (1 - s) / hb),
    "adai": lambda dl, ha, hb, s, lr, b, **_: 2 * b * dl / lr * (s / ha + (1 - s) / hb),
    "momentum": lambda dl, ha, hb, s, lr, b, beta1=0.9, form="pytorch", **_: (
        ((1 - beta1) if form == "pytorch" else 1.0) * 2 * b * dl / lr * (s / ha + (1 - s) / hb)
    ),
    "adam": lambda dl, ha, hb, s, lr, b, **_: 2 * np.sqrt(b) * dl / lr * (s / np.sqrt(ha) + (1 - s) / np.sqrt(hb)),
}


def optimizer_escape_exponent(
    kind: str, barrier: float, curvature_min: float, curvature_barrier: float, lr: float, batch_size: int, share: float | None = None, **hyperparameters: float | str
) -> float:
    r"""Exponent of the escape time, :math:`\ln\tau = \text{exponent} + O(\ln\text{prefactor})` (THEORY §5, Adai paper).

    ===========  ===============================================================================
    kind         exponent
    ===========  ===============================================================================
    sgd, adai    :math:`\frac{2B\Delta L}{\eta}\left(\frac{s}{H_a} + \frac{1-s}{|H_b|}\right)`
    momentum     the SGD exponent times :math:`\gamma M` (:math:`1-\beta_1` PyTorch form, 1 EMA)
    adam         :math:`\frac{2\sqrt B\Delta L}{\eta}\left(\frac{s}{\sqrt{H_a}} + \frac{1-s}{\sqrt{|H_b|}}\right)`
    ===========  ===============================================================================

    ``share`` s is the fraction of the barrier climbed in the minimum's quadratic region;
    by default :math:`|H_b|/(H_a+|H_b|)` (exact for a :math:`C^1` piecewise-quadratic loss).
    Under sharpening :math:`L_k(\theta) = f(\sqrt k\,\theta)` every H scales by k, so the SGD,
    Momentum and Adai exponents go as 1/k and Adam's as :math:`1/\sqrt k`.
    """
    try:
        formula = _ESCAPE_EXPONENT[kind]
    except KeyError:
        raise InputError(f"no escape-exponent formula for optimizer {kind!r}; known: {', '.join(_ESCAPE_EXPONENT)}") from None
    _positive(barrier=barrier, curvature_min=curvature_min, lr=lr, batch_size=batch_size)
    h_b = abs(curvature_barrier)
    _positive(curvature_barrier=h_b)
    s = h_b / (curvature_min + h_b) if share is None else share
    if not 0 <= s <= 1:
        raise InputError(f"the share s must lie in [0, 1], got {s}")
    return float(formula(barrier, curvature_min, h_b, s, lr, batch_size, **hyperparameters))


def adam_update_bound(beta1: float, beta2: float, step: int | None = None) -> float:
    r"""Largest possible Adam step per coordinate, in units of η (ε = 0), at iteration ``step`` or as k → ∞:

    .. math::

        \sup_g \left|\frac{\hat m_k}{\sqrt{\hat v_k}}\right| =
        \frac{(1-\beta_1)\sqrt{1-\beta_2^k}}{(1-\beta_1^k)\sqrt{1-\beta_2}}
        \sqrt{\frac{1-\rho^k}{1-\rho}},\quad \rho = \beta_1^2/\beta_2
        \;\xrightarrow{k\to\infty}\; \frac{1-\beta_1}{\sqrt{(1-\beta_2)(1-\rho)}}\quad(\rho < 1),

    by Cauchy–Schwarz on :math:`m_k = (1-\beta_1)\sum_{i<k} \beta_1^i g_{k-i}` against
    :math:`v_k = (1-\beta_2)\sum_{i<k}\beta_2^i g_{k-i}^2`, with equality for
    :math:`g_{k-i}\propto(\beta_1/\beta_2)^i`. As k → ∞ it is infinite outside Gould & Tanaka's
    bounded-update region ρ < 1 (:func:`adam_bounded_update`). The defaults (0.9, 0.999) give
    7.27: an Adam step never exceeds 7.27 η per coordinate, whatever the gradients.
    """
    for name, value in (("beta1", beta1), ("beta2", beta2)):
        if not 0 <= value < 1:
            raise InputError(f"{name} must lie in [0, 1), got {value!r}")
    rho = beta1**2 / beta2 if beta2 > 0 else np.inf
    if step is None:
        return float((1 - beta1) / np.sqrt((1 - beta2) * (1 - rho))) if rho < 1 else float("inf")
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise InputError(f"step must be an integer >= 1, got {step!r}")
    geometric = float(step) if rho == 1 else (1 - rho**step) / (1 - rho)
    return float((1 - beta1) * np.sqrt(1 - beta2**step) / ((1 - beta1**step) * np.sqrt(1 - beta2)) * np.sqrt(geometric))


# Escape times with prefactors ---------------------------------------------------------------
def _softplus_value(x: float, sharpness: float) -> float:
    return float(np.logaddexp(0.0, sharpness * x) / sharpness)


# Heavy-ball coefficients (β₁, β₃, P) along the escape direction at a critical point, where
# ∇L = 0 and the frozen v̂ is the minibatch variance C (THEORY §3), as functions of
# (C, hyperparameters). They repeat fpsolver.optimizers' maps at ∇L = 0 (tests compare them).
def _adai_inertia(beta0: float = 0.1, eps: float = 1e-3, **_: Any) -> float:
    return float(np.clip(1.0 - beta0, 0.0, 1.0 - eps))  # along one direction v̂/v̄ = 1


_HEAVY_BALL: dict[str, Callable[..., tuple[float, float, float]]] = {
    "sgd": lambda c, **_: (0.0, 1.0, 1.0),
    "momentum": lambda c, beta1=0.9, form="pytorch", **_: (beta1, 1.0 if form == "pytorch" else 1.0 - beta1, 1.0),
    "adam": lambda c, beta1=0.9, eps=1e-8, **_: (beta1, 1.0 - beta1, 1.0 / (np.sqrt(c) + eps)),
    "adai": lambda c, **hyper: (_adai_inertia(**hyper), 1.0 - _adai_inertia(**hyper), 1.0),
    "sadam": lambda c, beta1=0.9, softplus=50.0, **_: (beta1, 1.0 - beta1, 1.0 / _softplus_value(np.sqrt(c), softplus)),
    "adamomentum": lambda c, beta1=0.9, beta2=0.999, eps=1e-8, **_: (
        beta1,
        1.0 - beta1,
        1.0 / np.sqrt((1.0 - beta1) / (1.0 + beta1) * c + eps / (1.0 - beta2)),
    ),
}
_HEAVY_BALL["adamw"] = _HEAVY_BALL["adam"]
_HEAVY_BALL["adaiw"] = _HEAVY_BALL["adai"]
_ADAPTIVE = {"adam", "adamw", "sadam", "adamomentum"}


def optimizer_heavy_ball(kind: str, variance: float, **hyperparameters: Any) -> tuple[float, float, float]:
    r"""(β₁, β₃, P) of optimizer ``kind`` at a critical point with minibatch gradient variance ``variance`` = C (THEORY §3).

    The adaptive preconditioners see the frozen :math:`\hat v = C` there (∇L = 0); Adai's β₁
    is :math:`1-\beta_0` along one direction.
    """
    try:
        formula = _HEAVY_BALL[kind]
    except KeyError:
        raise InputError(f"no heavy-ball map for optimizer {kind!r}; known: {', '.join(_HEAVY_BALL)}") from None
    _positive(variance=variance)
    b1, b3, p = formula(float(variance), **hyperparameters)
    return float(b1), float(b3), float(p)


def optimizer_escape_time(
    kind: str,
    barrier: float,
    curvature_min: float,
    curvature_barrier: float,
    lr: float,
    batch_size: int,
    *,
    delta: float = 0.0,
    variances: tuple[float, float] | None = None,
    share: float | None = None,
    convention: str = "ito",
    dynamics: str = "overdamped",
    frozen: bool = True,
    exponent: float | None = None,
    **hyperparameters: Any,
) -> float:
    r"""Escape time of an optimizer over a barrier, with its prefactor, in SGD time t = kη (divide by η for iterations).

    Along the escape direction e, with per-sample gradient variance :math:`\Sigma` (default
    Hessian noise, :math:`\Sigma_a = H_a + \delta`, :math:`\Sigma_b = |H_b| + \delta`),
    :math:`C = \Sigma/B`, the optimizer's heavy-ball coefficients (:func:`optimizer_heavy_ball`)
    give the overdamped mobility :math:`A = \beta_3 P/(1-\beta_1)` and diffusion
    :math:`D = A^2\eta C/2` at the minimum (a) and the saddle (b). The 1-D Laplace evaluation
    of the exact mean first-passage time (THEORY §5) to a point well past the barrier is

    .. math::

        \tau = \frac{2\pi}{\lambda_+}\sqrt{\frac{A_b|H_b|}{A_a H_a}}
               \left(\frac{D_b}{D_a}\right)^{\kappa - 1/2} e^{\Delta\Phi},\qquad
        \Delta\Phi = \frac{2\Delta L}{\eta}\left(\frac{s}{A_a C_a} + \frac{1-s}{A_b C_b}\right),

    with κ = 1 (Itô), ½ (Stratonovich), 0 (isothermal). Overdamped (Eyring–Kramers):
    :math:`\lambda_+ = A_b|H_b|`. Inertial (Langer): :math:`\lambda_+ = -\gamma/2 +
    \sqrt{\gamma^2/4 + |H_b|/M}`, :math:`M = \eta/(\beta_3 P)`, :math:`\gamma = (1-\beta_1)/\eta`
    at the saddle, and κ = 1: the Smoluchowski limit of a θ-dependent temperature is Itô's.
    With :math:`D \propto H` (SGD, δ = 0) this is Xie et al.'s formula with the prefactor
    :math:`2\pi/H_a` (Itô) or :math:`2\pi/|H_b|` (isothermal).

    The exponent assumes the loss is quadratic on each side: a share s of the barrier is
    climbed with the minimum's curvature and noise, 1 − s with the saddle's (default
    :math:`s = |H_b|/(H_a+|H_b|)`, exact for a C¹ piecewise-quadratic loss). For a smooth loss
    with θ-dependent noise the exact :math:`\Delta\Phi = \int_a^b 2L'/(\eta A C)\,d\theta`
    differs; pass it as ``exponent``. The relative error of τ is then O(T/ΔL) (measured in
    docs/optimizers.md).

    Parameters
    ----------
    kind
        Optimizer kind (sgd, momentum, adam, adamw, adai, adaiw, sadam, adamomentum).
    barrier, curvature_min, curvature_barrier
        ΔL > 0, :math:`H_a > 0`, :math:`H_b` (its sign is ignored).
    lr, batch_size
        η, B.
    delta, variances
        Hessian-noise regularisation δ, or the per-sample variances :math:`(\Sigma_a, \Sigma_b)`
        themselves (e.g. white noise: :math:`(\sigma^2, \sigma^2)`).
    share
        s ∈ [0, 1].
    convention
        Of the overdamped model (``ito``, ``stratonovich``, ``isothermal``); inertial: ``ito`` only.
    dynamics
        ``overdamped`` or ``inertial``.
    frozen
        Adaptive preconditioner frozen at its value at the minimum (default; v's memory
        1/(1−β₂) outlasts the barrier crossing), or taken at the local v̂ (the adiabatic
        limit, as in the Adai paper's Adam exponent). Inertial needs ``frozen``.
    exponent
        ΔΦ, overriding the piecewise-quadratic value.
    hyperparameters
        β₁, form, eps, β₀, β₂, softplus as the optimizer takes them.
    """
    if convention not in CONVENTIONS:
        raise InputError(f"unknown convention {convention!r}; choose one of {', '.join(CONVENTIONS)}")
    if dynamics not in ("overdamped", "inertial"):
        raise InputError(f"dynamics must be 'overdamped' or 'inertial', got {dynamics!r}")
    if dynamics == "inertial" and convention != "ito":
        raise InputError("the phase-space model has no convention choice; its overdamped limit is Itô's: use convention='ito'")
    if dynamics == "inertial" and not frozen and kind in _ADAPTIVE:
        raise InputError("an inertial escape time needs a constant mass: use frozen=True for adaptive optimizers")
    _positive(barrier=barrier, curvature_min=curvature_min, lr=lr, batch_size=batch_size)
    h_a, h_b = float(curvature_min), abs(float(curvature_barrier))
    _positive(curvature_barrier=h_b)
    if delta < 0:
        raise InputError(f"delta must be >= 0, got {delta!r}")
    sigma_a, sigma_b = (h_a + delta, h_b + delta) if variances is None else variances
    _positive(variances=np.array([sigma_a, sigma_b]))
    c_a, c_b = sigma_a / batch_size, sigma_b / batch_size
    s = h_b / (h_a + h_b) if share is None else share
    if not 0 <= s <= 1:
        raise InputError(f"the share s must lie in [0, 1], got {s}")
    at_min = optimizer_heavy_ball(kind, c_a, **hyperparameters)
    at_saddle = at_min if frozen else optimizer_heavy_ball(kind, c_b, **hyperparameters)
    mobility = [b3 * p / (1.0 - b1) for b1, b3, p in (at_min, at_saddle)]
    diffusion = [a * a * lr * c / 2 for a, c in zip(mobility, (c_a, c_b))]
    if exponent is None:
        exponent = 2 * barrier / lr * (s / (mobility[0] * c_a) + (1 - s) / (mobility[1] * c_b))
    if dynamics == "overdamped":
        growth = mobility[1] * h_b
    else:
        b1, b3, p = at_saddle
        growth = inertial_instability_rate(-h_b, lr / (b3 * p), (1.0 - b1) / lr)
    kappa = CONVENTIONS[convention]
    prefactor = 2 * np.pi / growth * np.sqrt(mobility[1] * h_b / (mobility[0] * h_a)) * (diffusion[1] / diffusion[0]) ** (kappa - 0.5)
    return float(prefactor * np.exp(exponent))


def optimizer_saddle_msd(
    kind: str,
    time: np.ndarray | float,
    curvature: float,
    lr: float,
    batch_size: int,
    *,
    delta: float = 0.0,
    variance: float | None = None,
    dynamics: str = "overdamped",
    **hyperparameters: Any,
) -> np.ndarray:
    r"""Mean squared displacement :math:`\langle\theta^2(t)\rangle` along a saddle's unstable direction (:math:`H = -h`), from rest at the saddle.

    The linearised model with the optimizer's coefficients at the saddle (:func:`optimizer_heavy_ball`
    with :math:`C = (h+\delta)/B`, or ``variance``/B; adaptive P frozen at :math:`\hat v = C`), in SGD time:

    - overdamped, :math:`d\theta = Ah\theta\,dt + \sqrt{2D_\theta}\,dW`, :math:`A = \beta_3P/(1-\beta_1)`,
      :math:`D_\theta = A^2\eta C/2`:
      :math:`\langle\theta^2\rangle = \frac{A\eta C}{2h}\left(e^{2Aht} - 1\right)`
      (SGD: :math:`\frac{\eta}{2B}(e^{2ht}-1)`; Adam: :math:`\frac{\eta}{2\sqrt{Bh}}(e^{2\sqrt{Bh}t}-1)`, THEORY §4);
    - inertial: :func:`inertial_covariance` with :math:`M = \eta/(\beta_3P)`, :math:`\gamma = (1-\beta_1)/\eta`,
      :math:`D = \eta C/2` (growth rate :func:`inertial_instability_rate`).

    At small :math:`ht` the overdamped MSD is :math:`A\eta C t`: ∝ h for SGD (slow along flat
    directions), h-independent for Adam (:math:`A C = \sqrt C`, ≈ ηt√(h/B)·√(B/h)).
    """
    h = abs(float(curvature))
    _positive(curvature=h, lr=lr, batch_size=batch_size)
    if delta < 0:
        raise InputError(f"delta must be >= 0, got {delta!r}")
    c = (h + delta if variance is None else variance) / batch_size
    b1, b3, p = optimizer_heavy_ball(kind, c, **hyperparameters)
    t = np.asarray(time, dtype=float)
    if np.any(t < 0):
        raise InputError("time must be >= 0")
    if dynamics == "overdamped":
        a = b3 * p / (1.0 - b1)
        return a * lr * c / (2 * h) * np.expm1(2 * a * h * t)
    if dynamics == "inertial":
        mass, damping = lr / (b3 * p), (1.0 - b1) / lr
        return np.vectorize(lambda s: inertial_covariance(float(s), -h, mass, damping, lr * c / 2)[0, 0])(t)
    raise InputError(f"dynamics must be 'overdamped' or 'inertial', got {dynamics!r}")


def heavy_ball_saddle_msd(
    iterations: int,
    curvature: float,
    lr: float,
    variance: float,
    beta1: float = 0.0,
    beta3: float = 1.0,
    preconditioner: float = 1.0,
    bias_correction: bool = False,
) -> np.ndarray:
    r"""Exact :math:`\langle\theta_k^2\rangle`, k = 0 … ``iterations``, of the *discrete* heavy-ball chain at a saddle (:math:`H = -h`), from rest.

    :math:`m_k = \beta_1 m_{k-1} + \beta_3(-h\theta_k + \xi_k)`, :math:`\theta_{k+1} = \theta_k - \eta P c_k m_k`,
    :math:`\operatorname{Var}\xi = C` (``variance``), with :math:`c_k = 1/(1-\beta_1^k)` when
    ``bias_correction`` (Adam's and Adai's m̂) and 1 otherwise; β₁, P frozen. The state
    :math:`u_k = (\theta_k, m_{k-1})` obeys :math:`u_{k+1} = F_k u_k + g_k\xi_k` with
    :math:`F_k = \begin{pmatrix}1 + \eta P c_k\beta_3 h & -\eta P c_k\beta_1\\ -\beta_3 h & \beta_1\end{pmatrix}`,
    :math:`g_k = (-\eta P c_k\beta_3, \beta_3)`, so :math:`\Sigma_{k+1} = F_k\Sigma_k F_k^\top + C g_k g_k^\top`.
    The continuous models (:func:`optimizer_saddle_msd`) are its η → 0 limits without the
    bias correction, which dominates for k ≲ 1/(1−β₁) (Adai's flat directions: β₁ → 1 − 10⁻³).
    """
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise InputError(f"iterations must be an integer >= 0, got {iterations!r}")
    h = abs(float(curvature))
    _positive(curvature=h, lr=lr, variance=variance, beta3=beta3, preconditioner=preconditioner)
    if not 0 <= beta1 < 1:
        raise InputError(f"beta1 must lie in [0, 1), got {beta1!r}")
    sigma = np.zeros((2, 2))
    out = np.zeros(iterations + 1)
    for k in range(1, iterations + 1):
        step = lr * preconditioner * (1.0 / (1.0 - beta1**k) if bias_correction and beta1 > 0 else 1.0)
        f = np.array([[1 + step * beta3 * h, -step * beta1], [-beta3 * h, beta1]])
        g = np.array([-step * beta3, beta3])
        sigma = f @ sigma @ f.T + variance * np.outer(g, g)
        out[k] = sigma[0, 0]
    return out
