r"""The mean first-passage time from first-passage iterations, some of them censored.

An ensemble run for :math:`K` iterations gives each particle's first-passage iteration
:math:`T_i \ge 1`, or only :math:`T_i > K` when it was still out at the end (censored).
With nothing censored the mean is the sample mean. Otherwise, for integer times,

.. math::

    \mathbb E T = \sum_{k=0}^{K-1} S(k) + S(K)\,\mathbb E[T - K \mid T > K],
    \qquad \sum_{k=0}^{K-1} S(k) = \frac1N \sum_i \min(T_i, K),

with :math:`S` the survival. After the in-well transient, escape from a metastable well is a
Poisson process: the hazard :math:`h = P(T = k \mid T \ge k)` is constant, the residual time
is geometric and :math:`\mathbb E[T - K \mid T > K] = 1/h`. The hazard is estimated over a
late window :math:`(a, K]` (``window`` = the fraction of the run, last half by default) as
escapes per particle-iteration at risk,

.. math::

    \hat h = \frac{d}{E}, \qquad d = \#\{a < T_i \le K\}, \qquad
    E = \sum_i \max\big(0, \min(T_i, K) - a\big),

the maximum-likelihood estimate for a geometric time, so

.. math::

    \hat\tau = \frac1N \sum_i \min(T_i, K) + \frac{C}{N}\,\frac{E}{d}

with :math:`C` censored particles. **Validity check.** The estimate needs a constant hazard in
the window: the window's two halves give :math:`d_1, E_1` and :math:`d_2, E_2`; under a
constant hazard :math:`d_1` given :math:`d` is binomial with probability
:math:`E_1/(E_1+E_2)`, and an exact two-sided binomial test below ``significance`` (1 %)
refuses the estimate. So does a window with fewer than ``min_escapes`` escapes. Refused
estimates are NaN with a :class:`~fpsolver.errors.FPSolverWarning` naming what to raise.

**Interval.** :math:`\hat\tau = \bar t + \bar c\,\bar e/\bar d` is a smooth function of four
per-particle means (:math:`t_i = \min(T_i,K)`, :math:`c_i` censored, :math:`e_i` exposure and
:math:`d_i` escape in the window), and particles are independent, so the delta method with
their sample covariance gives its standard error. It is chosen over a bootstrap because it
needs no random numbers (a run stays reproducible from its seed) and costs nothing, and over
a Poisson interval for :math:`d` alone because the restricted mean and the tail term come from
the same particles and are correlated. Its symmetric normal interval is accurate once the
window holds ``min_escapes`` = 100 escapes (the skewness of :math:`1/\hat h` falls as
:math:`d^{-1/2}`); ``tests/test_censoring.py`` checks its coverage.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .errors import FPSolverWarning, InputError

__all__ = ["MeanEstimate", "censored_mean", "check_settings", "normal_quantile", "ESTIMATORS"]

#: The estimators :func:`censored_mean` reports: the sample mean (nothing censored), the
#: censored-run estimate with a constant late hazard, or none (NaN).
ESTIMATORS = ("complete", "censored", "none")


@dataclass(frozen=True)
class MeanEstimate:
    """A mean first-passage time (iterations) with its confidence interval and how it was had.

    Attributes
    ----------
    value, low, high
        The estimate and its interval (NaN when refused).
    estimator
        One of :data:`ESTIMATORS`.
    hazard
        Escapes per particle-iteration in the window (NaN when nothing is censored).
    window_escapes
        Escapes in the window (0 when nothing is censored).
    """

    value: float
    low: float
    high: float
    estimator: str
    hazard: float = np.nan
    window_escapes: int = 0


def normal_quantile(confidence: float) -> float:
    """z with P(|N(0, 1)| < z) = ``confidence``: the half-width of a normal interval in standard errors."""
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise InputError(f"confidence must lie in (0, 1), got {confidence!r}")
    return float(stats.norm.ppf(0.5 + confidence / 2))


def check_settings(confidence: float, window: float, min_escapes: int) -> float:
    """Validate the settings of :func:`censored_mean` (before a long run) and return :func:`normal_quantile` of ``confidence``."""
    z = normal_quantile(confidence)
    if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0 < window <= 1:
        raise InputError(f"window must lie in (0, 1], got {window!r}")
    if isinstance(min_escapes, bool) or not isinstance(min_escapes, (int, np.integer)) or min_escapes < 2:
        raise InputError(f"min_escapes must be an integer >= 2, got {min_escapes!r}")
    return z


def _refuse(message: str, hazard: float = np.nan, escapes: int = 0) -> MeanEstimate:
    warnings.warn(message, FPSolverWarning, stacklevel=3)
    return MeanEstimate(np.nan, np.nan, np.nan, "none", hazard, escapes)


def censored_mean(
    times: np.ndarray,
    horizon: int,
    *,
    confidence: float = 0.95,
    window: float = 0.5,
    min_escapes: int = 100,
    significance: float = 0.01,
) -> MeanEstimate:
    r"""The mean of first-passage iterations ``times`` (NaN: still out after ``horizon``), see the module docstring.

    Parameters
    ----------
    times
        First-passage iteration of each particle, integers >= 1 and <= ``horizon``; NaN
        for a particle still out at ``horizon`` (censored).
    horizon
        Iterations run, K.
    confidence
        Level of the interval.
    window
        Fraction of the run, at its end, over which the hazard is estimated: (K(1 - window), K].
    min_escapes
        Fewest escapes in the window for an estimate.
    significance
        Level of the constant-hazard test below which the estimate is refused.

    Returns
    -------
    MeanEstimate
        With nothing censored the sample mean and its normal interval :math:`\bar T \pm z s/\sqrt N`.
    """
    z = check_settings(confidence, window, min_escapes)
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size < 2:
        raise InputError(f"censored_mean needs a 1-D array of at least two first-passage times, got shape {times.shape}")
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 4:
        raise InputError(f"horizon must be an integer >= 4 (iterations run), got {horizon!r}")
    seen = times[np.isfinite(times)]
    if np.any(seen < 1) or np.any(seen > horizon) or np.any(seen != np.round(seen)) or np.any(np.isinf(times)):
        raise InputError(f"first-passage times must be integers in [1, horizon = {horizon}] or NaN (censored)")
    n = times.size
    if seen.size == n:
        mean = float(times.mean())
        half = z * float(times.std(ddof=1)) / np.sqrt(n)
        return MeanEstimate(mean, mean - half, mean + half, "complete")
    start = int(np.floor(horizon * (1 - window)))
    middle = start + (horizon - start) // 2
    stopped = np.where(np.isfinite(times), times, horizon)  # min(T, K)
    censored = np.isnan(times).astype(float)
    escaped = (np.isfinite(times) & (times > start)).astype(float)
    exposure = np.clip(stopped - start, 0, None)
    d = int(escaped.sum())
    if d < min_escapes:
        return _refuse(
            f"{d} escapes in the last {window:.0%} of the run ({horizon - start} iterations), fewer than the {min_escapes} "
            f"needed to estimate the escape hazard of the {int(censored.sum())} of {n} censored particles: the mean is unknown "
            "(NaN); raise max_iterations or particles",
            escapes=d,
        )
    hazard = d / float(exposure.sum())
    first_exposure = float(np.clip(stopped - start, 0, middle - start).sum())
    later_exposure = float(exposure.sum()) - first_exposure
    d1 = int(np.sum(np.isfinite(times) & (times > start) & (times <= middle)))
    test = stats.binomtest(d1, d, first_exposure / (first_exposure + later_exposure))
    if test.pvalue < significance:
        h1, h2 = d1 / first_exposure, (d - d1) / later_exposure
        return _refuse(
            f"the escape hazard is not constant over the last {window:.0%} of the run (iterations {start}-{middle}: {h1:.3g}, "
            f"{middle}-{horizon}: {h2:.3g} per iteration; p = {test.pvalue:.2g}): the in-well transient is not over, so the "
            "censored particles' mean is unknown (NaN); raise max_iterations",
            hazard,
            d,
        )
    columns = np.stack([stopped, censored, exposure, escaped])
    t, c, e, dd = columns.mean(axis=1)
    value = t + c * e / dd
    gradient = np.array([1.0, e / dd, c / dd, -c * e / dd**2])
    half = z * float(np.sqrt(gradient @ np.cov(columns, ddof=1) @ gradient / n))
    return MeanEstimate(float(value), float(value - half), float(value + half), "censored", hazard, d)
