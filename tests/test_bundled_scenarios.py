"""Every bundled scenario validates and runs from the CLI; results checked where an answer is known."""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from fpsolver.cli import main
from fpsolver.errors import FPSolverWarning

SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios").glob("*.yaml"))


def test_there_are_bundled_scenarios():
    names = {p.stem for p in SCENARIOS}
    assert {"double_well", "ou", "double_well_2d", "kramers_1d", "eyring_kramers_2d"} <= names


#: Scenarios that warn, and what they say: low-temperature runs include methods that lose digits;
#: flat_minima's SGD at k = 4 has lr |H| = 0.16, where discrete-time effects are not small.
WARNS = {
    "kramers_1d": "digits",
    "kramers_turnover": "digits",
    "flat_minima": "digits|overdamped model needs",
    "flat_minima_styblinski_tang": "digits|overdamped model needs",
    "flat_minima_2d": "overdamped model needs",
}


#: Scenarios that take more than a few seconds: run in CI's slow step (tests/test_comparison.py runs a
#: reduced optimizers_compare in the fast suite).
SLOW = {"kramers_turnover", "optimizers_compare", "flat_minima", "flat_minima_styblinski_tang", "flat_minima_2d"}


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW else p for p in SCENARIOS], ids=[p.stem for p in SCENARIOS])
def test_bundled_scenario_runs(path, tmp_path):
    out = tmp_path / f"{path.stem}.nc"
    runner = CliRunner()
    expected = pytest.warns(FPSolverWarning, match=WARNS[path.stem]) if path.stem in WARNS else contextlib.nullcontext()
    with expected:
        assert runner.invoke(main, ["validate", str(path)]).exit_code == 0
        result = runner.invoke(main, ["run", str(path), "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    ds = xr.open_dataset(out)
    assert any(v in ds for v in ("p", "p_stationary", "rate", "escape_rate", "mfpt", "mfpt_at_start"))
    CHECKS.get(path.stem, lambda ds: None)(ds)
    assert runner.invoke(main, ["plot", str(out), "-o", str(tmp_path / "fig.png")]).exit_code == 0


def _gibbs_and_mass(ds: xr.Dataset, landscape, temperature: float) -> None:
    """The stationary state is the exact discrete Gibbs density (Scharfetter-Gummel), and the
    evolution conserves probability to round-off."""
    mesh = np.meshgrid(*(ds[d].values for d in ds["p_stationary"].dims), indexing="ij")
    gibbs = np.exp(-(landscape(*mesh) - landscape(*mesh).min()) / temperature)
    kept = gibbs > 1e-12  # the solve zeroes values below 1e-13 of the peak (round-off)
    ratio = ds["p_stationary"].values[kept] / gibbs[kept]
    np.testing.assert_allclose(ratio, ratio.max(), rtol=1e-9)
    np.testing.assert_allclose(ds["mass"].values, 1.0, atol=1e-10)


def _rates_beside_theory(ds: xr.Dataset, barrier: float, low: float, high: float, agree: float) -> None:
    """mfpt and committor (basin) rates agree (they differ by the in-basin relaxation), and the
    ratio to the closed form is 1 - c T / dL with c between low and high (THEORY §5's
    asymptotics; measured c ~ 0.4) at every temperature of the sweep."""
    rate = ds["escape_rate"]
    mfpt, basin = rate.sel(estimator="mfpt").values, rate.sel(estimator="committor").values
    np.testing.assert_allclose(basin, mfpt, rtol=agree)
    c = (1 - mfpt / ds["kramers_rate"].values) * barrier / ds["temperature"].values
    assert np.all((low < c) & (c < high)), c


def _flat_minima(ds: xr.Dataset) -> None:
    """SGD (overdamped), Momentum (EMA form), Adam and Adai (phase space, by dynamics: auto) on the
    sharpened double well, k = 1 ... 4 at lr = 0.02. SGD, Momentum and Adai fit log tau against 1/k
    better than against 1/sqrt(k) (rms residuals measured 0.103 vs 0.207 for SGD, 0.042 vs 0.259 for
    Momentum and Adai: the 1/k law is asymptotic, and at k = 4 the barrier is only 2.5 T, so SGD's
    margin is 2x); Adam, its preconditioner frozen at the minimum (freeze_at, as real Adam's v
    at beta2 = 0.999), fits 1/sqrt(k) 16x better (0.025 vs 0.397). The closed forms' fitted slopes
    match the PDE's to 1 % (measured 0.3-0.8 %; per run the inertial closed form is 18-36 % high,
    mostly not from its prefactor but from its exponent, the overdamped limit: docs/flat-minima.md).
    Frozen, Adam at sharpness k is EMA momentum at sharpness 1 in rescaled units (P = 1/sqrt(C_a),
    C_a = 4k): their PDE times agree to 2.4e-7 (the automatic velocity axes are not the same to
    the last digit). At k = 4 Adam takes 5600x longer than SGD
    (measured 3.32e6 vs 594 iterations)."""
    fits = ds.set_xindex("group") if "group" not in ds.indexes else ds
    assert list(ds["dynamics"].values) == ["overdamped"] * 5 + ["inertial"] * 15
    for group in ("optimizer_kind=sgd", "optimizer_kind=momentum, optimizer_form=ema", "optimizer_kind=adai"):
        fit = fits.sel(group=group)
        assert float(fit["fit_residual_inv_sqrt_k"]) > 1.5 * float(fit["fit_residual_inv_k"]), group
    adam = fits.sel(group="optimizer_kind=adam")
    assert float(adam["fit_residual_inv_k"]) > 5 * float(adam["fit_residual_inv_sqrt_k"])
    np.testing.assert_allclose(fits["fit_theory_slope_inv_k"], fits["fit_slope_inv_k"], rtol=0.01)
    times = ds["mfpt_at_start_iterations"].values
    assert times[4] * 1000 < times[14]  # k = 4: SGD vs Adam
    np.testing.assert_allclose(times[14], times[5], rtol=1e-6)  # frozen Adam at k = 4 is momentum at k = 1 (measured 2.4e-7)
    _flat_minima_simulator(ds, fits)


def _flat_minima_simulator(ds: xr.Dataset, fits: xr.Dataset) -> None:
    """The simulator column (seed 1; censored runs, fpsolver.censoring), where a barrier is
    simulable: k = 1.5 ... 4 for SGD, Momentum and Adai, k = 4 for Adam (k = 1 needs 3e6-4e9
    iterations). SGD, Momentum, Adai: the PDE lies within the simulator's 95 % interval widened
    by a discrete-time slack of 5 % of the PDE: at lr H = 0.04 k the chain escapes sooner than
    its continuous model, measured with 20000 particles (seed 7) at -4.1 +- 1.3 % (SGD, k = 4),
    -3.7 +- 1.3 % (SGD, k = 3), -3.8 +- 1.3 % (Momentum, k = 4), -1.3 +- 1.3 % (Momentum, k = 3),
    the size of the scenario's +-3 % intervals (with seed 1 every SGD and Momentum point happens to
    be inside its interval: -4.7 ... +1.0 %). Adai, whose continuous model is EMA momentum's,
    escapes a constant ~45 iterations sooner than it (39 +- 12 at k = 4 and 49 +- 34 at k = 3 with
    20000 particles; 3.3 % of Adai's particles escape within 30 iterations, 0.1 % of Momentum's:
    the bias correction m / (1 - prod beta1) makes the first steps SGD-sized, a head start), so
    its slack has 60 iterations more. Adam at k = 4 escapes 9 % sooner than its frozen model
    (measured 3.02e6 +- 16 % against 3.32e6), as in optimizers_compare (8.7 %, where it is resolved:
    the real v averages g^2 over 1/(1 - beta2) = 1000 iterations and still moves a little with the
    climbs); the PDE must lie inside the interval. With v following theta over the barrier (no
    freeze_at) the PDE said 7.4e5, 4x too fast (docs/flat-minima.md). The simulated slopes of log tau against 1/k (k = 1.5 ... 4) are the
    PDE's on the same four points to 4 % (measured -0.5, +0.3, +2.4 % for SGD, Momentum, Adai;
    the intervals of +-3 ... 6 % move a slope over this range of 1/k by about 4 %). Momentum and
    Adai prefer 1/k (rms residuals 0.016 vs 0.105, 0.014 vs 0.109); without k = 1, SGD's points
    do not tell the two laws apart (simulated 0.065 vs 0.060, PDE on the same points 0.055 vs 0.072)."""
    simulated = ~np.isnan(ds["mean_escape_iterations"].values)
    assert simulated.tolist() == [False, True, True, True, True] * 2 + [False] * 4 + [True] + [False] + [True] * 4
    pde = ds["mfpt_at_start_iterations"].values
    low, high = ds["mean_escape_iterations_ci"].sel(bound="low").values, ds["mean_escape_iterations_ci"].sel(bound="high").values
    adai = np.r_[16:20]
    checked = np.r_[1:5, 6:10, adai]  # SGD, Momentum, Adai
    slack = 0.05 * pde[checked] + np.where(np.isin(checked, adai), 60, 0)
    assert np.all((low[checked] - slack < pde[checked]) & (pde[checked] < high[checked] + slack)), (pde[checked], low[checked], high[checked])
    assert low[14] < pde[14] < high[14]
    assert set(ds["mean_escape_estimator"].values[simulated]) <= {"complete", "censored"}
    k = ds["landscape_sharpness"].values.astype(float)
    for group, runs in (("optimizer_kind=sgd", np.r_[1:5]), ("optimizer_kind=momentum, optimizer_form=ema", np.r_[6:10]), ("optimizer_kind=adai", adai)):
        fit = fits.sel(group=group)
        same_points = np.polyfit(1 / k[runs], np.log(ds["mfpt_at_start"].values[runs]), 1)[0]
        assert float(fit["fit_simulated_slope_inv_k"]) == pytest.approx(same_points, rel=0.04), group
        if group != "optimizer_kind=sgd":
            assert float(fit["fit_simulated_residual_inv_sqrt_k"]) > 3 * float(fit["fit_simulated_residual_inv_k"]), group
    assert np.isnan(float(fits.sel(group="optimizer_kind=adam")["fit_simulated_slope_inv_k"]))

def _flat_minima_st(ds: xr.Dataset) -> None:
    """The flat-minima sweep on the rescaled 1-D Styblinski-Tang function, f = ST(2.8 x)/100
    (barrier 0.252, 5.9 T at k = 1), from its local minimum into the global well; k = 1 ... 4, lr = 0.02.
    The residual ratios (measured): SGD 2.08 (0.098 vs 0.205; at k = 4 the barrier is 2.4 T, where
    the asymptotic 1/k law bends), Momentum and Adai 9.4 (0.028 vs 0.264), Adam 17.1 the other way
    (0.320 vs 0.019); asserted at about 85 % of these (deterministic numbers; a smaller margin
    would mean the scaling changed). The closed forms' slopes of the law each follows match the PDE's
    to 1 % (measured 0.7 % SGD, 0.6 % Momentum and Adai, 0.09 % Adam). Per run the closed form is
    within 9 % for SGD (ratio 0.913-0.966: O(T/dL), tests/test_flat_minima_st.py halves it by halving
    T) and 1 % for Adam (0.997-1.006); for Momentum and Adai it is 32-50 % high (1.32-1.50): its
    local-temperature exponent is the overdamped limit, and the gap shrinks with lr at a fixed
    temperature (tests/test_flat_minima_st.py)."""
    fits = ds.set_xindex("group") if "group" not in ds.indexes else ds
    assert list(ds["dynamics"].values) == ["overdamped"] * 5 + ["inertial"] * 15
    margins = {"optimizer_kind=sgd": 1.8, "optimizer_kind=momentum, optimizer_form=ema": 8.0, "optimizer_kind=adai": 8.0}
    for group, margin in margins.items():
        fit = fits.sel(group=group)
        assert float(fit["fit_residual_inv_sqrt_k"]) > margin * float(fit["fit_residual_inv_k"]), group
        np.testing.assert_allclose(fit["fit_theory_slope_inv_k"], fit["fit_slope_inv_k"], rtol=0.01)
    adam = fits.sel(group="optimizer_kind=adam")
    assert float(adam["fit_residual_inv_k"]) > 15 * float(adam["fit_residual_inv_sqrt_k"])
    np.testing.assert_allclose(adam["fit_theory_slope_inv_sqrt_k"], adam["fit_slope_inv_sqrt_k"], rtol=0.01)
    ratio = (ds["theory_escape_time"] / ds["mfpt_at_start"]).values.reshape(4, 5)  # sgd, momentum, adam, adai
    assert np.all((0.9 < ratio[0]) & (ratio[0] < 1.0)), ratio[0]
    np.testing.assert_allclose(ratio[2], 1.0, rtol=0.01)
    assert np.all((1.25 < ratio[[1, 3]]) & (ratio[[1, 3]] < 1.6)), ratio[[1, 3]]


def _flat_minima_2d(ds: xr.Dataset) -> None:
    """SGD and Adam (beta1 = 0), overdamped, on the 2-D Styblinski-Tang sum, k = 1 ... 4. The loss is
    a sum and noise and preconditioner are diagonal, so the time to cross x's saddle is the 1-D time
    on the same x grid, whatever y does: checked to 1e-10 (measured 2e-14, round-off). The fits
    (measured): SGD 0.098 vs 0.205 against 1/k and 1/sqrt(k) (ratio 2.08), Adam 0.328 vs 0.024
    (13.7 the other way); asserted at about 85 %. Momentum (EMA) and Adai, whose 2-D model is 4-D
    phase space without an MFPT solver, run through the simulator only (k = 1.5 ... 4, seed 1):
    their simulated times prefer 1/k (measured 0.0064 vs 0.112, ratio 17; Adai 0.026 vs 0.094,
    ratio 3.5; asserted at about 85 %), and Momentum's at k = 3, 4 is the 1-D phase-space PDE's on
    the same x grid within its interval and the 5 % discrete-time slack of flat_minima.yaml
    (measured 1388 and 545.1 against 1408 and 546.7)."""
    from fpsolver.grid import Grid
    from fpsolver.landscapes import Landscape
    from fpsolver.noise import HessianNoise
    from fpsolver.optimizers import SGD, Adam, Momentum
    from fpsolver.problem import FokkerPlanck

    line = Landscape.from_expression("0.307328*x**4 - 0.6272*x**2 + 0.07*x")
    optimizers = {"sgd": SGD(0.02, 1), "adam": Adam(0.02, 1, beta1=0.0)}
    kinds = ds["optimizer_kind"].values.astype(str)
    for i, k in enumerate(ds["landscape_sharpness"].values):
        if kinds[i] not in optimizers:
            assert np.isnan(ds["mfpt_at_start"].values[i]) and np.isfinite(ds["mean_escape_iterations"].values[i])
            continue
        task = json.loads(str(ds["tasks_mfpt"].values[i]))
        model = optimizers[kinds[i]].model(line.with_sharpness(k), HessianNoise(delta=2 * k))
        grid = Grid.uniform(x=(float(ds["grid_x_min"].values[i]), float(ds["grid_x_max"].values[i]), 240))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FPSolverWarning)  # SGD's overdamped check at k = 3, 4: the same model as the 2-D run
            tau = FokkerPlanck(model, grid).mfpt(start=task["start"][:1], target=task["target"])
        np.testing.assert_allclose(ds["mfpt_at_start"].values[i], tau, rtol=1e-10)
    fits = ds.set_xindex("group") if "group" not in ds.indexes else ds
    sgd, adam = fits.sel(group="optimizer_kind=sgd"), fits.sel(group="optimizer_kind=adam, optimizer_beta1=0.0")
    assert float(sgd["fit_residual_inv_sqrt_k"]) > 1.8 * float(sgd["fit_residual_inv_k"])
    assert float(adam["fit_residual_inv_k"]) > 12 * float(adam["fit_residual_inv_sqrt_k"])
    for group, margin in (("optimizer_kind=momentum, optimizer_form=ema", 14.0), ("optimizer_kind=adai", 3.0)):
        fit = fits.sel(group=group)
        assert float(fit["fit_simulated_residual_inv_sqrt_k"]) > margin * float(fit["fit_simulated_residual_inv_k"]), group
    low, high = (ds["mean_escape_iterations_ci"].sel(bound=b).values for b in ("low", "high"))
    momentum = Momentum(0.02, 1, form="ema")
    for i in np.flatnonzero((kinds == "momentum") & (ds["landscape_sharpness"].values >= 3)):
        k = float(ds["landscape_sharpness"].values[i])
        model = momentum.model(line.with_sharpness(k), HessianNoise(delta=2 * k), dynamics="inertial")
        grid = model.phase_grid(Grid.uniform(x=(float(ds["grid_x_min"].values[i]), float(ds["grid_x_max"].values[i]), 240)))
        task = json.loads(str(ds["tasks_simulate"].values[i]))
        pde = FokkerPlanck(model, grid).mfpt(start=task["start"][:1] + [0.0], target=task["target"]) / 0.02
        assert low[i] - 0.05 * pde < pde < high[i] + 0.05 * pde, (k, pde, low[i], high[i])


def _turnover(ds: xr.Dataset) -> None:
    """Phase space over gamma = 0.03 ... 30 at barrier/T = 10: the mfpt and survival estimators agree
    (1e-3: they differ by the in-basin relaxation), and the rate follows Mel'nikov-Meshkov's
    turnover to within the O(T/dL) asymptotic error (measured ratios 0.95-0.98); the rate rises
    then falls (the turnover), with its maximum between gamma = 0.1 and 1."""
    mfpt = ds["escape_rate"].sel(estimator="mfpt").values
    np.testing.assert_allclose(ds["escape_rate"].sel(estimator="eigen").values, mfpt, rtol=1e-3)
    ratio = mfpt / ds["kramers_rate"].values
    assert np.all((0.93 < ratio) & (ratio < 1.0)), ratio
    top = float(ds["damping"].values[np.argmax(mfpt)])
    assert 0.1 <= top <= 1.0 and mfpt[0] < mfpt.max() and mfpt[-1] < mfpt.max()


def _optimizers_compare(ds: xr.Dataset) -> None:
    """SGD (overdamped), Momentum, Adam and Adai (phase space, chosen by dynamics: auto) on one double
    well. The PDE's escape time lies inside the simulator's 95 % interval (4000 particles, +-3 %) for
    SGD, Momentum and Adai (measured +2.1 %, +2.2 %, +1.0 %: the discrete-time bias at lr H_a = 0.02
    is below the interval). Adam escapes 8.7 % sooner in the simulator than its frozen-v model says:
    at beta2 = 0.999 v averages over 1000 iterations, not over the ~5000 of an escape (docs/optimizers.md
    measures the approach to the frozen model as beta2 -> 1); asserted as a gap of 4-15 %. The closed
    form is within 6 % of the PDE (measured 0.2 %, 4.0 %, 4.5 %, 4.0 %: O(T/dL) at dL/T ~ 2.2-2.4).
    The quasi-stationary variance of the PDE lies inside the simulator's interval for all four; the
    harmonic T/H is 28-35 % below it (the quartic well is anharmonic at this temperature)."""
    ds = ds.set_xindex("optimizer_kind")
    assert list(ds["optimizer_kind"].values) == ["sgd", "momentum", "adam", "adai"]
    assert list(ds["dynamics"].values) == ["overdamped", "inertial", "inertial", "inertial"]
    pde = ds["mfpt_at_start_iterations"]
    low, high = ds["mean_escape_iterations_ci"].sel(bound="low"), ds["mean_escape_iterations_ci"].sel(bound="high")
    inside = ((low < pde) & (pde < high)).values
    assert inside.tolist() == [True, True, False, True], (pde.values, low.values, high.values)
    gap = 1 - float(ds["mean_escape_iterations"].sel(optimizer_kind="adam") / pde.sel(optimizer_kind="adam"))
    assert 0.04 < gap < 0.15, gap
    np.testing.assert_allclose(ds["theory_escape_iterations"].values, pde.values, rtol=0.06)
    variance = ds["well_variance_pde"].isel(parameter=0)
    ci = ds["well_variance_simulated_ci"].isel(parameter=0)
    assert np.all((ci.sel(bound="low") < variance) & (variance < ci.sel(bound="high")))
    assert np.all(ds["well_variance_theory"].isel(parameter=0) < 0.8 * variance)


CHECKS = {
    "optimizers_compare": _optimizers_compare,
    "kramers_turnover": _turnover,
    "flat_minima": _flat_minima,
    "flat_minima_styblinski_tang": _flat_minima_st,
    "flat_minima_2d": _flat_minima_2d,
    "double_well": lambda ds: _gibbs_and_mass(ds, lambda x: x**4 / 4 - x**2 / 2, 0.05),
    "double_well_2d": lambda ds: _gibbs_and_mass(ds, lambda x, y: 4 * (x**2 - 1) ** 2 + 2 * y**2, 1.0),
    # Barrier/T from 5 to 40: basin and point differ by 3e-3 at 5 (rates.md); c from 0.49 to 0.37.
    "kramers_1d": lambda ds: _rates_beside_theory(ds, 0.25, 0.3, 0.55, 5e-3),
    "eyring_kramers_2d": lambda ds: _rates_beside_theory(ds, 1.0226, 0.25, 0.6, 5e-3),
}


def test_ou_scenario_against_the_exact_solution(tmp_path):
    """OU from N(2, 0.3^2): mean 2 e^{-t}, variance 1 + (0.09 - 1) e^{-2t}; rates 0, 1, 2, 3.
    800 cells on [-8, 8]: moments are second-order accurate (h^2 ~ 4e-4), so 1e-3 is the bound."""
    out = tmp_path / "ou.nc"
    assert CliRunner().invoke(main, ["run", str(SCENARIOS[0].parent / "ou.yaml"), "-o", str(out)]).exit_code == 0
    ds = xr.open_dataset(out)
    x, t = ds["x"].values, ds["time"].values
    weights = ds["p"].values * (x[1] - x[0])
    mean = weights @ x
    var = weights @ x**2 - mean**2
    np.testing.assert_allclose(mean, 2 * np.exp(-t), atol=1e-3)
    np.testing.assert_allclose(var, 1 + (0.09 - 1) * np.exp(-2 * t), atol=1e-3)
    np.testing.assert_allclose(ds["rate"].values, [0, 1, 2, 3], atol=1e-3)
