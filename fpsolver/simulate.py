r"""Discrete-time ensembles: the optimizers' *actual* update rules with Gaussian gradient noise.

Each of ``particles`` independent copies runs

.. math::

    g_k = \nabla L(\theta_k) + \xi_k, \quad \xi_k \sim N\big(0, C(\theta_k)\big), \quad
    \theta_{k+1} = \mathrm{step}(\theta_k, g_k)

with the optimizer's own rule (:meth:`fpsolver.optimizers.Optimizer.step`: bias corrections,
Adai's clipped β₁, weight decay, SAdam's softplus, …) and :math:`C = \Sigma/B` from
:mod:`fpsolver.noise` (per-direction square roots when Σ is diagonal, else a Cholesky factor
per particle). This is the ground truth the continuous models are checked against; where
they disagree at large η, the continuous model is what breaks.

Random numbers come from ``numpy.random.default_rng(seed)`` in a fixed order, so a seed
reproduces a run exactly. Times are given in iterations k and in SGD time t = kη.
Confidence intervals are normal-theory intervals over the independent particles. Escape
times of runs cut at ``max_iterations`` come from the survival and a constant late escape
hazard (:mod:`fpsolver.censoring`), which makes barriers of 10⁵–10⁶ iterations affordable.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import sympy as sp
import xarray as xr

from .censoring import MeanEstimate, censored_mean, check_settings, normal_quantile
from .errors import FPSolverWarning, InputError
from .expressions import parse_condition
from .landscapes import Landscape
from .noise import NoiseModel
from .optimizers import Optimizer

__all__ = ["Ensemble", "escape_times", "stationary_moments", "saddle_msd", "quasi_stationary_moments"]


def _count(value: int, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Ensemble:
    """Independent particles running one optimizer on one landscape.

    Parameters
    ----------
    optimizer
        Any :class:`~fpsolver.optimizers.Optimizer`.
    landscape
        The training loss L(θ).
    start
        Starting point θ₀, one value per landscape variable (every particle starts there
        with zero optimizer state).
    noise
        Per-sample gradient noise (default as in :meth:`Optimizer.resolve_noise`).
    particles
        Ensemble size.
    seed
        Seed of ``numpy.random.default_rng``.

    Attributes
    ----------
    theta
        Current positions of the active particles, shape ``(n, active)``.
    index
        Original particle number of each active particle.
    iteration
        Iterations done.
    """

    def __init__(self, optimizer: Optimizer, landscape: Landscape, start: Sequence[float], noise: NoiseModel | None = None, particles: int = 10_000, seed: int | None = 0):
        if not isinstance(optimizer, Optimizer):
            raise InputError(f"optimizer must be a fpsolver.optimizers.Optimizer, got {type(optimizer).__name__}")
        if not isinstance(landscape, Landscape):
            raise InputError(f"landscape must be a Landscape, got {type(landscape).__name__}")
        self.optimizer = optimizer
        self.landscape = landscape
        self.noise = optimizer.resolve_noise(noise)
        n = len(landscape.variables)
        start_arr = np.asarray(start, dtype=float)
        if start_arr.shape != (n,) or not np.all(np.isfinite(start_arr)):
            raise InputError(f"start needs {n} finite numbers (one per variable {list(landscape.variables)}), got {start!r}")
        self.start = start_arr
        particles = _count(particles, "particles")
        self.theta = np.repeat(start_arr[:, None], particles, axis=1)
        self.index = np.arange(particles)
        self.state = optimizer.init_state(self.theta)
        self.rng = np.random.default_rng(seed)
        self.diagonal = self.noise.is_diagonal(landscape)
        self.iteration = 0
        self.diverged = False

    def noisy_gradient(self, theta: np.ndarray) -> np.ndarray:
        r"""Minibatch gradient :math:`\nabla L + \xi`, :math:`\xi \sim N(0, C(\theta))`, shape ``(n, active)``."""
        grad = self.landscape.gradient(*theta)
        points = dict(zip(self.landscape.variables, theta))
        if self.diagonal:
            scale = np.sqrt(self.noise.variances(self.landscape, points, self.optimizer.batch_size))
            return grad + scale * self.rng.standard_normal(theta.shape)
        cov = self.noise.covariance(self.landscape, points, self.optimizer.batch_size)
        z = self.rng.standard_normal(theta.shape)
        chol = np.linalg.cholesky(np.moveaxis(cov, -1, 0))
        return grad + np.einsum("pij,jp->ip", chol, z)

    def step(self) -> None:
        """One iteration of every active particle."""
        with np.errstate(over="ignore", invalid="ignore"):
            self.theta = self.optimizer.step(self.theta, self.noisy_gradient(self.theta), self.state)
        self.iteration += 1
        if not np.all(np.isfinite(self.theta)):
            self.diverged = True

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the particles where ``mask`` (length active) is True, with their optimizer state."""
        active = self.theta.shape[1]
        for key, value in self.state.items():
            if isinstance(value, np.ndarray) and value.shape[-1] == active:
                self.state[key] = value[..., mask]
        self.theta = self.theta[:, mask]
        self.index = self.index[mask]

    def attrs(self) -> dict[str, object]:
        """Metadata of the run (plain types, for netCDF)."""
        return {
            "optimizer": str(self.optimizer),
            "noise": str(self.noise),
            "landscape": self.landscape.description,
            "lr": self.optimizer.lr,
            "batch_size": self.optimizer.batch_size,
            "start": self.start.tolist(),
            "time_unit": "SGD time t = iteration * lr",
        }


def _warn_diverged(ensemble: Ensemble) -> None:
    warnings.warn(
        f"{ensemble.optimizer.name}: some particles diverged (non-finite θ) by iteration {ensemble.iteration}; "
        "the learning rate is beyond the discrete stability limit, results are NaN",
        FPSolverWarning,
        stacklevel=3,
    )


def _region(landscape: Landscape, target: str | Callable[..., np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """A test θ (n, active) -> bool (active) for a condition string such as ``"x > 1"`` or a callable of the variables."""
    if isinstance(target, str):
        condition = parse_condition(target, landscape.variables)
        fn = sp.lambdify([sp.Symbol(v, real=True) for v in landscape.variables], condition, modules="numpy")
    elif callable(target):
        fn = target
    else:
        raise InputError(f"target must be a condition such as 'x > 1' or a callable, got {target!r}")

    def inside(theta: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(fn(*theta), dtype=bool), theta.shape[1:])

    return inside


def escape_times(
    optimizer: Optimizer,
    landscape: Landscape,
    start: Sequence[float],
    target: str | Callable[..., np.ndarray],
    *,
    noise: NoiseModel | None = None,
    particles: int = 10_000,
    max_iterations: int = 100_000,
    seed: int | None = 0,
    confidence: float = 0.95,
    survival_points: int = 200,
    window: float = 0.5,
    min_escapes: int = 100,
) -> xr.Dataset:
    r"""First iteration at which each particle is in ``target``, with the mean and the survival curve.

    Parameters
    ----------
    optimizer, landscape, start, noise, particles, seed
        See :class:`Ensemble`.
    target
        Region to reach: a condition in the landscape variables (``"x > 1"``) or a callable
        of them returning booleans. A particle has escaped at the first k ≥ 1 with
        :math:`\theta_k` inside.
    max_iterations
        Stop after this many iterations; particles still out are censored.
    confidence
        Level of the confidence interval of the mean.
    survival_points
        Number of iterations (evenly spaced) at which the survival curve is sampled.
    window, min_escapes
        For censored runs: the fraction of the run, at its end, over which the escape hazard
        is estimated, and the fewest escapes it must hold (:func:`fpsolver.censoring.censored_mean`).

    Returns
    -------
    xarray.Dataset
        ``escape_iteration`` (particle; NaN if censored), ``survival`` (iteration; the
        fraction not yet escaped, with coordinate ``time`` = kη), ``escaped_fraction``,
        ``mean_escape_iterations`` and ``mean_escape_time`` (= iterations × η) with their
        ``*_ci`` (bound: low, high), ``mean_escape_estimator`` (``complete``: every particle
        escaped, the sample mean with :math:`\bar k \pm z\,s/\sqrt N`; ``censored``: the
        survival integral plus a constant late hazard's tail, delta-method interval;
        ``none``: NaN, with a warning saying what to raise), ``escape_hazard`` (escapes per
        particle-iteration in the window) and ``hazard_window_escapes``.
    """
    max_iterations = _count(max_iterations, "max_iterations", 4)
    check_settings(confidence, window, min_escapes)  # before the run, not after it
    inside = _region(landscape, target)
    ens = Ensemble(optimizer, landscape, start, noise, _count(particles, "particles", 2), seed)
    if inside(ens.theta[:, :1])[0]:
        raise InputError(f"the start {list(ens.start)} is already inside the target {target!r}")
    total = ens.theta.shape[1]
    hit = np.full(total, np.nan)
    while ens.iteration < max_iterations and ens.theta.shape[1] and not ens.diverged:
        ens.step()
        now = inside(ens.theta)
        if now.any():
            hit[ens.index[now]] = ens.iteration
            ens.keep(~now)
    eta = optimizer.lr
    if ens.diverged:
        _warn_diverged(ens)
        hit[:] = np.nan
        estimate = MeanEstimate(np.nan, np.nan, np.nan, "none")
    else:
        estimate = censored_mean(hit, max_iterations, confidence=confidence, window=window, min_escapes=min_escapes)
    grid = np.unique(np.linspace(0, max(ens.iteration, 1), _count(survival_points, "survival_points", 2)).round().astype(int))
    sorted_hits = np.sort(hit[np.isfinite(hit)])
    survival = 1.0 - np.searchsorted(sorted_hits, grid, side="right") / total
    if ens.diverged:
        survival[:] = np.nan
    ci = np.array([estimate.low, estimate.high])
    ds = xr.Dataset(
        {
            "escape_iteration": ("particle", hit),
            "survival": ("iteration", survival),
            "escaped_fraction": ((), float(np.isfinite(hit).mean())),
            "mean_escape_iterations": ((), estimate.value),
            "mean_escape_iterations_ci": ("bound", ci),
            "mean_escape_time": ((), estimate.value * eta),
            "mean_escape_time_ci": ("bound", ci * eta),
            "mean_escape_estimator": ((), estimate.estimator),
            "escape_hazard": ((), estimate.hazard),
            "hazard_window_escapes": ((), estimate.window_escapes),
        },
        coords={"particle": np.arange(total), "iteration": grid, "time": ("iteration", grid * eta), "bound": ["low", "high"]},
        attrs={**ens.attrs(), "target": str(target), "confidence": confidence, "max_iterations": max_iterations, "hazard_window": window},
    )
    ds["mean_escape_time"].attrs["units"] = "SGD time (iterations * lr)"
    return ds


def stationary_moments(
    optimizer: Optimizer,
    landscape: Landscape,
    start: Sequence[float],
    *,
    noise: NoiseModel | None = None,
    particles: int = 10_000,
    burn_in: int = 1_000,
    iterations: int = 1_000,
    seed: int | None = 0,
    confidence: float = 0.95,
) -> xr.Dataset:
    r"""Mean and covariance of θ after a burn-in, averaged over particles and iterations.

    With :math:`K` = ``iterations`` samples per particle after ``burn_in`` steps,
    :math:`\mu = \langle\theta\rangle` and :math:`\Sigma = \langle\theta\theta^\top\rangle - \mu\mu^\top`
    over all particles and samples. The interval of each entry of Σ comes from the
    spread of the per-particle time averages, which are independent across particles
    (so the autocorrelation within a particle's trajectory is accounted for).

    Returns
    -------
    xarray.Dataset
        ``mean`` (parameter), ``covariance`` (parameter, parameter2) and
        ``covariance_ci`` (bound, parameter, parameter2).
    """
    burn_in = _count(burn_in, "burn_in", 0)
    iterations = _count(iterations, "iterations")
    z = normal_quantile(confidence)
    ens = Ensemble(optimizer, landscape, start, noise, particles, seed)
    for _ in range(burn_in):
        ens.step()
    n, count = ens.theta.shape
    first = np.zeros((n, count))
    second = np.zeros((n, n, count))
    for _ in range(iterations):
        ens.step()
        first += ens.theta
        second += ens.theta[:, None] * ens.theta[None, :]
    first /= iterations
    second /= iterations
    mean = first.mean(axis=1)
    per_particle = second - (mean[:, None] * mean[None, :])[..., None]
    cov = per_particle.mean(axis=-1)
    half = z * per_particle.std(axis=-1, ddof=1) / np.sqrt(count) if count > 1 else np.full_like(cov, np.nan)
    if ens.diverged:
        _warn_diverged(ens)
        mean, cov, half = (np.full_like(a, np.nan) for a in (mean, cov, half))
    names = list(landscape.variables)
    return xr.Dataset(
        {
            "mean": ("parameter", mean),
            "covariance": (("parameter", "parameter2"), cov),
            "covariance_ci": (("bound", "parameter", "parameter2"), np.stack([cov - half, cov + half])),
        },
        coords={"parameter": names, "parameter2": names, "bound": ["low", "high"]},
        attrs={**ens.attrs(), "burn_in": burn_in, "iterations": iterations, "confidence": confidence},
    )


def saddle_msd(
    optimizer: Optimizer,
    landscape: Landscape,
    start: Sequence[float],
    *,
    noise: NoiseModel | None = None,
    particles: int = 10_000,
    iterations: int = 1_000,
    seed: int | None = 0,
) -> xr.Dataset:
    r"""Mean squared displacement :math:`\langle(\theta_{k,i} - \theta_{0,i})^2\rangle` per direction and iteration.

    Started at rest at ``start`` (a saddle, for THEORY.md §4's escape laws).

    Returns
    -------
    xarray.Dataset
        ``msd`` (iteration, parameter) for k = 0 … ``iterations``, coordinate ``time`` = kη.
    """
    iterations = _count(iterations, "iterations")
    ens = Ensemble(optimizer, landscape, start, noise, particles, seed)
    msd = np.zeros((iterations + 1, ens.theta.shape[0]))
    for k in range(1, iterations + 1):
        ens.step()
        msd[k] = np.mean((ens.theta - ens.start[:, None]) ** 2, axis=1)
    if ens.diverged:
        _warn_diverged(ens)
        msd[:] = np.nan
    steps = np.arange(iterations + 1)
    return xr.Dataset(
        {"msd": (("iteration", "parameter"), msd)},
        coords={"iteration": steps, "time": ("iteration", steps * optimizer.lr), "parameter": list(landscape.variables)},
        attrs=ens.attrs(),
    )


def quasi_stationary_moments(
    optimizer: Optimizer,
    landscape: Landscape,
    start: Sequence[float],
    target: str | Callable[..., np.ndarray],
    *,
    noise: NoiseModel | None = None,
    particles: int = 10_000,
    burn_in: int = 1_000,
    samples: int = 10,
    every: int = 100,
    seed: int | None = 0,
    confidence: float = 0.95,
) -> xr.Dataset:
    r"""Mean and variance of θ over the particles that have not reached ``target``: the well's quasi-stationary state.

    Particles start at ``start``; one that enters ``target`` is removed. After ``burn_in``
    iterations the survivors are sampled ``samples`` times, ``every`` iterations apart. With
    :math:`N` samples in all, :math:`\mu = \sum\theta/N` and :math:`\sigma^2 = \sum(\theta-\mu)^2/N`
    per direction. Particles are independent, so the interval of :math:`\sigma^2` is the
    particle-clustered one, :math:`\operatorname{Var}\hat\sigma^2 \approx \sum_p e_p^2/N^2` with
    :math:`e_p = \sum_{s}[(\theta_{ps}-\mu)^2 - \sigma^2]` over particle p's samples (valid
    whatever the correlation between one particle's samples). As the burn-in grows the
    survivors approach the quasi-stationary density (Yaglom limit), the slowest mode of the
    generator with the target absorbing (:func:`fpsolver.comparison.well_variance`).

    Returns
    -------
    xarray.Dataset
        ``mean`` and ``variance`` (parameter), ``variance_ci`` (bound, parameter),
        ``surviving_fraction`` at the last sample. NaN with a warning when particles diverged
        or fewer than two survive.
    """
    burn_in = _count(burn_in, "burn_in", 0)
    samples = _count(samples, "samples")
    every = _count(every, "every")
    z = normal_quantile(confidence)
    inside = _region(landscape, target)
    ens = Ensemble(optimizer, landscape, start, noise, particles, seed)
    if inside(ens.theta[:, :1])[0]:
        raise InputError(f"the start {list(ens.start)} is already inside the target {target!r}")
    total = ens.theta.shape[1]
    n = ens.theta.shape[0]
    first = np.zeros((n, total))
    second = np.zeros((n, total))
    count = np.zeros(total)

    def advance(steps: int) -> None:
        for _ in range(steps):
            if ens.diverged or not ens.theta.shape[1]:
                return
            ens.step()
            ens.keep(~inside(ens.theta))

    advance(burn_in)
    for s in range(samples):
        if s:
            advance(every)
        first[:, ens.index] += ens.theta
        second[:, ens.index] += ens.theta**2
        count[ens.index] += 1
    total_samples = count.sum()
    names = list(landscape.variables)
    nan = np.full(n, np.nan)
    mean, variance, half = nan, nan, nan
    if ens.diverged:
        _warn_diverged(ens)
    elif ens.theta.shape[1] < 2:
        warnings.warn(f"{ens.theta.shape[1]} of {total} particles left after {ens.iteration} iterations: no variance (NaN); shorten the burn-in", FPSolverWarning, stacklevel=2)
    else:
        mean = first.sum(axis=1) / total_samples
        variance = second.sum(axis=1) / total_samples - mean**2
        residual = second - 2 * mean[:, None] * first + (mean[:, None] ** 2 - variance[:, None]) * count
        half = z * np.sqrt(np.sum(residual**2, axis=1)) / total_samples
    return xr.Dataset(
        {
            "mean": ("parameter", mean),
            "variance": ("parameter", variance),
            "variance_ci": (("bound", "parameter"), np.stack([variance - half, variance + half])),
            "surviving_fraction": ((), ens.theta.shape[1] / total),
        },
        coords={"parameter": names, "bound": ["low", "high"]},
        attrs={**ens.attrs(), "target": str(target), "burn_in": burn_in, "samples": samples, "every": every, "confidence": confidence},
    )
