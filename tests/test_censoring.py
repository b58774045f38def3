"""The censored-run mean first-passage time (fpsolver.censoring) against exactly known means,
against the full-run mean of the same simulated particles, and its interval's coverage."""

from __future__ import annotations

import numpy as np
import pytest

import fpsolver as fp
from fpsolver.censoring import censored_mean
from fpsolver.errors import FPSolverWarning, InputError
from fpsolver.optimizers import SGD
from fpsolver.simulate import escape_times


def _geometric(seed: int, mean: float, shift: int, particles: int, horizon: int) -> np.ndarray:
    """``shift`` + a geometric time of mean ``mean`` (a constant hazard after an exact transient), cut at ``horizon``."""
    times = (shift + np.random.default_rng(seed).geometric(1 / mean, particles)).astype(float)
    times[times > horizon] = np.nan
    return times


def test_an_exactly_geometric_sample_cut_early_gives_its_mean():
    """Mean 5300 (a 300-iteration dead time, then hazard 1/5000), 20000 particles cut at 2500
    iterations (61 % censored): the estimate is within its interval of the exact mean, and the
    interval is the delta method's ~ +-2.5 % (~3800 window escapes). (Over 200 seeds the estimates
    average 5294 +- 5 and 96 % of the intervals cover 5300; seed 0 is one of the 4 % misses.)"""
    estimate = censored_mean(_geometric(3, 5000, 300, 20_000, 2500), 2500)
    assert estimate.estimator == "censored"
    assert estimate.low < 5300 < estimate.high
    assert 0.015 < (estimate.high - estimate.low) / 2 / 5300 < 0.04
    assert estimate.hazard == pytest.approx(1 / 5000, rel=0.05)


def test_nothing_censored_gives_the_sample_mean():
    times = _geometric(1, 50, 0, 1000, 10**6)
    estimate = censored_mean(times, 10**6)
    assert estimate.estimator == "complete" and estimate.value == times.mean()
    half = 1.959963984540054 * times.std(ddof=1) / np.sqrt(times.size)
    assert estimate.high - estimate.value == pytest.approx(half, rel=1e-12)


def test_the_interval_covers_the_true_mean_in_about_95_percent_of_draws():
    """40 independent draws (2000 particles, cut at half the mean: ~60 % censored, ~390 window
    escapes). Misses are Binomial(40, 0.05) if the 95 % interval is right: 6 or more has
    probability 1.4 %; a draw refused by the constant-hazard test (1 % of draws) counts as a miss."""
    covered = 0
    for seed in range(40):
        estimate = censored_mean(_geometric(100 + seed, 5000, 0, 2000, 2500), 2500)
        covered += bool(estimate.low < 5000 < estimate.high)
    assert covered >= 35, covered


def test_a_hazard_still_changing_in_the_window_is_refused():
    """Half the particles escape fast (mean 300), half slowly (mean 20000): over iterations
    500-2000 the hazard falls as the fast ones run out, which the two-halves test sees."""
    rng = np.random.default_rng(5)
    times = np.concatenate([rng.geometric(1 / 300, 5000), rng.geometric(1 / 20_000, 5000)]).astype(float)
    times[times > 2000] = np.nan
    with pytest.warns(FPSolverWarning, match="hazard is not constant.*raise max_iterations"):
        estimate = censored_mean(times, 2000)
    assert np.isnan(estimate.value) and estimate.estimator == "none"


def test_too_few_escapes_in_the_window_is_refused():
    with pytest.warns(FPSolverWarning, match="fewer than the 100 needed"):
        estimate = censored_mean(_geometric(2, 10**6, 0, 1000, 1000), 1000)
    assert np.isnan(estimate.low) and estimate.window_escapes < 100


@pytest.mark.parametrize(
    "times, horizon, message",
    [
        (np.array([1.0, 2.5, np.nan]), 10, "integers"),
        (np.array([1.0, 20.0]), 10, "integers"),
        (np.array([1.0, np.inf]), 10, "integers"),
        (np.array([1.0]), 10, "at least two"),
        (np.array([1.0, 2.0]), 2, "horizon"),
    ],
)
def test_bad_censoring_input(times, horizon, message):
    with pytest.raises(InputError, match=message):
        censored_mean(times, horizon)


@pytest.mark.parametrize("settings, message", [({"window": 0.0}, "window"), ({"window": 1.5}, "window"), ({"min_escapes": 1}, "min_escapes"), ({"confidence": 1.0}, "confidence")])
def test_bad_settings_are_refused_before_the_simulation_runs(settings, message):
    """A bad setting must not cost a long run first: escape_times checks it before stepping
    (max_iterations = 10**8 would take hours)."""
    with pytest.raises(InputError, match=message):
        escape_times(SGD(0.01), fp.Landscape.quadratic([1.0]), [0.0], "x > 1", particles=10, max_iterations=10**8, **settings)


def test_the_censored_estimate_of_a_simulation_agrees_with_its_full_run():
    """SGD with white noise in the cubic well (barrier/T = 2, lr H = 0.02): every one of 3000
    particles escapes within 60000 iterations (mean 876 +- 30, the last at 7832); the same seed cut
    at 500 iterations (58 % censored; estimate 867 +- 52) gives the same particles' first 1500 iterations, and its estimate must
    contain the full-run mean. Both are estimates from the same particles, so they are correlated;
    the check is that the tail model adds no bias beyond the censored interval."""
    eta = 0.01
    opt = fp.optimizers.GDNoise(eta, sigma=np.sqrt(2 * 0.5 / eta))
    land = fp.Landscape.cubic_well()
    full = escape_times(opt, land, [0.0], "x >= 1.5", particles=3000, max_iterations=60_000, seed=4)
    cut = escape_times(opt, land, [0.0], "x >= 1.5", particles=3000, max_iterations=500, seed=4)
    assert str(full.mean_escape_estimator.values) == "complete" and str(cut.mean_escape_estimator.values) == "censored"
    assert 0.3 < float(cut.escaped_fraction) < 0.7
    low, high = cut.mean_escape_iterations_ci.values
    assert low < float(full.mean_escape_iterations) < high
    np.testing.assert_array_equal(cut.escape_iteration.values[np.isfinite(cut.escape_iteration.values)], full.escape_iteration.values[full.escape_iteration.values <= 500])


def test_a_simulation_cut_inside_its_transient_is_refused():
    """SGD started at the minimum of a double well with the target 0.3 away: the escape hazard
    rises while the particles spread into the well (over ~1/(lr H) = 50 iterations); cut at 60
    iterations, the late window's halves have hazards 7.0e-4 and 9.3e-4 (963 escapes), which the
    test refuses (p ~ 1e-5)."""
    with pytest.warns(FPSolverWarning, match="hazard is not constant"):
        ds = escape_times(SGD(0.05, 1), fp.Landscape.double_well(0.05), [-1.0], "x >= -0.7", particles=40_000, max_iterations=60, seed=0)
    assert np.isnan(float(ds.mean_escape_iterations)) and str(ds.mean_escape_estimator.values) == "none"
