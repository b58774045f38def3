"""The optimizer comparison: automatic dynamics and velocity axes, the closed-form escape time with a
local temperature, the quasi-stationary variance in a well (PDE and simulator)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import fpsolver as fp
from fpsolver import theory
from fpsolver.comparison import escape_theory, harmonic_variance, well_variance
from fpsolver.errors import FPSolverWarning, InputError, ScenarioError
from fpsolver.landscapes import library
from fpsolver.models import VELOCITY_WIDTH
from fpsolver.noise import HessianNoise
from fpsolver.optimizers import AUTO_OVERDAMPED_LIMIT, SGD, Adai, Momentum
from fpsolver.plotting import plot_dataset
from fpsolver.runner import compute_runs
from fpsolver.scenario import load_runs, load_scenario
from fpsolver.simulate import quasi_stationary_moments

WELL = library("double_well", height=0.05, width=1.0)  # L = 0.05 (x^2 - 1)^2: H_a = 0.4, H_b = -0.2, dL = 0.05
AT_MINIMUM = {"x": np.array([-1.0, 0.0])}


def test_auto_dynamics_keeps_sgd_overdamped_and_switches_momentum_at_the_limit():
    """4 lr beta3 P |H| / (1 - beta1)^2 is 40 lr H for EMA momentum at beta1 = 0.9 (H = 0.4 at the
    minimum, the larger curvature): the switch sits at lr = 0.1 / 16 = 0.00625; SGD never switches."""
    noise = HessianNoise(1e-9)
    assert SGD(1.0, 1).choose_dynamics(WELL, noise, AT_MINIMUM) == "overdamped"
    edge = AUTO_OVERDAMPED_LIMIT / 16
    assert Momentum(0.99 * edge, 1, form="ema").choose_dynamics(WELL, noise, AT_MINIMUM) == "overdamped"
    assert Momentum(1.01 * edge, 1, form="ema").choose_dynamics(WELL, noise, AT_MINIMUM) == "inertial"
    assert Adai(1.01 * edge, 1).choose_dynamics(WELL, noise, AT_MINIMUM) == "inertial"  # 1-D Adai: beta1 = 1 - beta0


def test_phase_grid_spans_six_maxwellian_widths_of_the_hottest_cell():
    """EMA momentum: M = lr/(1 - beta1), gamma M = 1, T = (lr/2)(|L''| + delta): the widest sqrt(T/M)
    is at the cell where |L''| is largest (the left end, x = -1.9: |L''| = 0.6 x^2 - 0.2)."""
    lr, delta = 0.05, 0.8
    model = Momentum(lr, 1, form="ema").model(WELL, HessianNoise(delta), dynamics="inertial")
    grid = model.phase_grid(fp.Grid.uniform(x=(-1.9, 0.6, 50)), cells=40)
    x = grid["x"].centers[0]
    width = np.sqrt(lr / 2 * (0.6 * x**2 - 0.2 + delta) / (lr / 0.1))
    assert grid.names == ("x", "r_x") and grid["r_x"].kind == "velocity" and grid["r_x"].n == 40
    np.testing.assert_allclose(grid["r_x"].hi, VELOCITY_WIDTH * width, rtol=1e-8)
    fp.FokkerPlanck(model, grid)  # accepted by the range check


def test_a_velocity_axis_far_wider_than_the_maxwellian_is_refused():
    """The failure of the first Adai trial: r in +-125 where sqrt(T/M) was 0.64 overflowed exp(M r^2/2T)
    into NaN entries and a 'singular' backward equation; now an error saying what to do."""
    model = Adai(0.001, 1).model(library("double_well", height=0.02, width=0.1414), HessianNoise(8.0), dynamics="inertial")
    with pytest.raises(InputError, match=r"reaches \|r\| = 125, 19[78] times the narrowest Maxwellian width.*overflow"):
        fp.FokkerPlanck(model, fp.Grid.uniform(x=(-0.35, 0.35, 30), r=(-125.0, 125.0, 20)))


def test_escape_theory_is_kramers_for_a_uniform_temperature():
    """Overdamped with constant T and mobility 2: 1 / (Kramers' rate) exactly (the exponent is a Simpson
    quadrature of L'/T = dL/T, 1e-12); inertial with constant M, gamma, T: 1 / Kramers at moderate damping."""
    grid = fp.Grid.uniform(x=(-1.9, 0.9, 40))
    over = escape_theory(fp.FokkerPlanck(fp.Overdamped(WELL, 0.01, mobility=2.0), grid), [-1.0], "x >= 0.5")
    rate = theory.kramers_overdamped(0.4, -0.2, 0.05, 0.01, mobility=2.0)
    np.testing.assert_allclose(float(over["theory_escape_time"]), 1 / rate, rtol=1e-9)
    np.testing.assert_allclose(float(over["theory_exponent"]), 5.0, rtol=1e-12)
    inertial = fp.Inertial(WELL, mass=0.5, damping=0.7, temperature=0.01)
    phase = inertial.phase_grid(grid, cells=8)
    ds = escape_theory(fp.FokkerPlanck(inertial, phase), [-1.0], "x >= 0.5")
    rate = theory.kramers_moderate(np.sqrt(0.4 / 0.5), np.sqrt(0.2 / 0.5), 0.7, 0.05, 0.01)
    np.testing.assert_allclose(float(ds["theory_escape_time"]), 1 / rate, rtol=1e-9)


def test_escape_theory_with_a_local_temperature_converges_at_first_order_in_t_over_dl():
    """SGD with Hessian noise: T(x) = (lr/2)(|L''| + delta) varies along the path. Against the exact
    1-D MFPT (theory.log_mfpt_1d, kinks of |L''| as breakpoints) to a target 5 saddle widths past the
    barrier, the Laplace approximation's error in log tau falls like T/dL: halving lr about halves
    it (measured 8.2e-2, 3.4e-2, 1.6e-2 at lr = 0.02, 0.01, 0.005: ratios 0.42, 0.48, tending to 1/2)."""
    delta, errors = 0.8, []
    for lr in (0.02, 0.01, 0.005):
        width = np.sqrt(lr / 2 * (0.2 + delta) / 0.2)
        target = 5 * width
        problem = fp.FokkerPlanck(SGD(lr, 1).model(WELL, HessianNoise(delta)), fp.Grid.uniform(x=(-2.5, target + 0.1, 40)))
        tau = float(escape_theory(problem, [-1.0], f"x >= {target}")["theory_escape_time"])
        exact = theory.log_mfpt_1d(
            lambda x: -WELL.gradient(x)[0], lambda x: lr / 2 * (np.abs(0.6 * x**2 - 0.2) + delta), -2.5, target, -1.0,
            breakpoints=(-np.sqrt(1 / 3), np.sqrt(1 / 3)),
        )
        errors.append(abs(np.log(tau) - exact))
    ratios = np.array(errors[1:]) / np.array(errors[:-1])
    assert errors[0] < 0.1 and np.all((0.35 < ratios) & (ratios < 0.6)) and ratios[1] > ratios[0], (errors, ratios)


def test_escape_theory_is_nan_with_a_warning_when_the_barrier_is_below_the_temperature():
    # dL / T = 0.05 / 0.06 < 1 (AdaMomentum in the bundled comparison has 0.55): Kramers-Langer's
    # O(1/exponent) error is O(1) there; at dL / T = 1.25 the closed form is still given.
    grid = fp.Grid.uniform(x=(-1.9, 0.9, 40))
    with pytest.warns(FPSolverWarning, match="exponent .* is only 0.833"):
        shallow = escape_theory(fp.FokkerPlanck(fp.Overdamped(WELL, 0.06), grid), [-1.0], "x >= 0.5")
    assert np.isnan(float(shallow["theory_escape_time"])) and float(shallow["theory_exponent"]) == pytest.approx(0.05 / 0.06)
    assert np.isfinite(float(escape_theory(fp.FokkerPlanck(fp.Overdamped(WELL, 0.04), grid), [-1.0], "x >= 0.5")["theory_escape_time"]))


def test_escape_theory_from_the_flank_of_the_well_is_that_of_its_minimum():
    # From x = -0.3 (L'' < 0 there) Newton's method alone climbs to the barrier at 0; the start is
    # first carried down over the cells to the minimum at -1. Started past the barrier, the descent
    # reaches the target first: no well, a clear error. On a periodic axis the descent crosses the seam.
    grid = fp.Grid.uniform(x=(-1.9, 0.9, 40))
    problem = fp.FokkerPlanck(fp.Overdamped(WELL, 0.01), grid)
    at_minimum = float(escape_theory(problem, [-1.0], "x >= 0.5")["theory_escape_time"])
    assert float(escape_theory(problem, [-0.3], "x >= 0.5")["theory_escape_time"]) == at_minimum
    assert float(harmonic_variance(problem, [-0.3])["well_variance_theory"][0]) == float(harmonic_variance(problem, [-1.0])["well_variance_theory"][0])
    with pytest.raises(InputError, match="descends into the target"):
        escape_theory(problem, [0.3], "x >= 0.5")
    ring = fp.Landscape.from_expression("-cos(2*x)/4")  # minima at 0 (the seam of [0, 2 pi)) and pi, barriers at pi/2, 3 pi/2
    periodic = fp.FokkerPlanck(fp.Overdamped(ring, 0.05), fp.Grid.uniform(x=(0.0, 2 * np.pi, 64)), boundary="periodic")
    target = "x >= 2.6 and x <= 3.7"  # the well at pi
    across = escape_theory(periodic, [5.8], target)  # down across the seam, over the barrier at 3 pi/2
    direct = escape_theory(periodic, [0.3], target)  # over the barrier at pi/2
    assert float(across["theory_exponent"]) == pytest.approx(float(direct["theory_exponent"]), rel=1e-9) == pytest.approx(0.5 / 0.05, rel=1e-6)


def test_escape_theory_adds_the_rates_over_the_saddles_on_both_sides():
    # On a ring the well at 0 reaches the target well at pi over two saddles (pi/2 and 3 pi/2, across
    # the seam): the rate is twice one saddle's. Against the PDE at dL/T = 10 the closed form is
    # within its O(T/dL) error (measured 0.945); with one saddle it was 1.89. A region on both sides
    # of a minimum with a wall on one side has no saddle there: refused, naming the side.
    ring = fp.Landscape.from_expression("-cos(2*x)/4")
    periodic = fp.FokkerPlanck(fp.Overdamped(ring, 0.05), fp.Grid.uniform(x=(0.0, 2 * np.pi, 200)), boundary="periodic")
    target = "x >= 2.6 and x <= 3.7"
    ds = escape_theory(periodic, [0.3], target)
    assert int(ds["theory_exits"]) == 2
    ratio = float(ds["theory_escape_time"]) / float(periodic.mfpt([0.3], target))
    assert 0.9 < ratio < 1.0, ratio
    problem = fp.FokkerPlanck(fp.Overdamped(WELL, 0.01), fp.Grid.uniform(x=(-1.9, 0.9, 40)))
    assert int(escape_theory(problem, [-1.0], "x >= 0.5")["theory_exits"]) == 1
    with pytest.raises(InputError, match="below it"):
        escape_theory(problem, [-1.0], "x >= 0.5 or x <= -1.5")


def test_escape_theory_needs_a_saddle_between():
    problem = fp.FokkerPlanck(fp.Overdamped(WELL, 0.01), fp.Grid.uniform(x=(-1.9, 0.9, 40)))
    with pytest.raises(InputError, match="no saddle between"):
        escape_theory(problem, [-1.0], "x <= -1.5")


def test_well_variance_of_a_quadratic_is_t_over_h_overdamped_and_in_phase_space():
    """Target 7 standard deviations out: the quasi-stationary state is the Gaussian up to e^-24.
    Overdamped (SG, second order): 200 cells over 16 sigma give 1e-3. Inertial OU of THEORY §7
    (M = 2, gamma = 0.5, H = 3, D = 0.1): Var theta = 1/30; the third-order phase-space scheme on
    80 x 48 cells is within 2e-3."""
    land = fp.Landscape.quadratic([3.0])
    sigma = np.sqrt(0.1 / 3)
    problem = fp.FokkerPlanck(fp.Overdamped(land, 0.1), fp.Grid.uniform(x=(-9 * sigma, 8 * sigma, 200)))
    ds = well_variance(problem, f"x >= {7 * sigma}")
    np.testing.assert_allclose(float(ds["well_variance_pde"][0]), 0.1 / 3, rtol=1e-3)
    np.testing.assert_allclose(float(ds["well_mean_pde"][0]), 0.0, atol=1e-3 * sigma)
    assert float(ds["well_decay_rate_pde"]) < 1e-9
    inertial = fp.Inertial(land, mass=2.0, damping=0.5, diffusion=0.1)
    phase = inertial.phase_grid(fp.Grid.uniform(x=(-9 * sigma, 8 * sigma, 80)), cells=48)
    ds = well_variance(fp.FokkerPlanck(inertial, phase), f"x >= {7 * sigma}")
    np.testing.assert_allclose(float(ds["well_variance_pde"][0]), 1 / 30, rtol=2e-3)


def test_harmonic_variance_is_the_table_of_theory_section_3():
    """SGD with Hessian noise delta: T_a = lr (H_a + delta) / (2B), Var = T_a / H_a."""
    lr, batch, delta = 0.05, 2, 0.8
    problem = fp.FokkerPlanck(SGD(lr, batch).model(WELL, HessianNoise(delta)), fp.Grid.uniform(x=(-1.9, 0.6, 30)))
    expected = theory.optimizer_temperature("sgd", 0.4 + delta, lr, batch) / 0.4
    np.testing.assert_allclose(float(harmonic_variance(problem, [-0.9])["well_variance_theory"][0]), expected, rtol=1e-12)


def test_simulated_quasi_stationary_variance_of_discrete_sgd_on_a_quadratic():
    """Discrete SGD on H theta^2/2 with noise H/B: Var = lr/(B(2 - lr H)) exactly (theory); a far target
    removes nobody, and the particle-clustered 95 % interval covers the exact value (seeded)."""
    land = fp.Landscape.quadratic([1.0])
    ds = quasi_stationary_moments(SGD(0.1, 2), land, [0.0], "x >= 5", noise=HessianNoise(1e-12), particles=2000, burn_in=100, samples=20, every=10, seed=3)
    low, high = ds["variance_ci"].values[:, 0]
    exact = theory.sgd_discrete_stationary_variance(1.0, 0.1, 2)
    assert low < exact < high and high - low < 0.1 * exact
    assert float(ds["surviving_fraction"]) == 1.0


def test_simulated_survivors_leave_when_they_reach_the_target():
    """A target two standard deviations out removes particles; the survivors' variance is that of the
    truncated density (smaller than the free one). When none survive: NaN with a warning."""
    land = fp.Landscape.quadratic([1.0])
    free = theory.sgd_discrete_stationary_variance(1.0, 0.1, 2)
    ds = quasi_stationary_moments(SGD(0.1, 2), land, [0.0], "x >= 0.32", noise=HessianNoise(1e-12), particles=1000, burn_in=30, samples=5, every=5, seed=1)
    assert 0.05 < float(ds["surviving_fraction"]) < 0.95
    assert float(ds["variance"][0]) < 0.9 * free
    with pytest.warns(FPSolverWarning, match="0 of 100 particles left"):
        ds = quasi_stationary_moments(SGD(0.1, 2), land, [0.0], "x >= 0.1", noise=HessianNoise(1e-12), particles=100, burn_in=2000, seed=1)
    assert np.isnan(ds["variance"].values).all()


BUNDLED = Path(__file__).parents[1] / "scenarios" / "optimizers_compare.yaml"


def test_reduced_bundled_comparison_mixes_overdamped_and_phase_space_runs(tmp_path):
    """The bundled comparison without the escape simulation, for SGD and Adai (2-4 s): one dataset with
    the optimizers along its run dimension; dynamics auto gives SGD the overdamped model and Adai the phase
    space with an added velocity axis (the position-only start taken at rest). Checked: the closed form
    within 2 % of the PDE for SGD and 6 % for Adai (measured 0.2 % and 4.0 %: O(T/dL) with
    dL/T ~ 2.2), and the PDE's quasi-stationary variance inside the simulator's 95 % interval."""
    data = yaml.safe_load(BUNDLED.read_text())
    del data["tasks"]["simulate"]
    data["tasks"]["stationary_variance"]["particles"] = 2000
    data["sweep"] = {"mode": "zip", "optimizer.kind": ["sgd", "adai"], "optimizer.form": [None, None]}
    path = tmp_path / "reduced.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    run = load_runs(path, tmp_path / "out.nc")
    adai = run.runs[1][1]
    assert adai.problem.grid.names == ("x", "r_x") and adai.spec.tasks.mfpt.start == [-1.0, 0.0]
    ds = compute_runs(run)
    assert list(ds["optimizer_kind"].values) == ["sgd", "adai"] and list(ds["dynamics"].values) == ["overdamped", "inertial"]
    assert "mfpt" not in ds  # field: false (the runs' grids differ)
    ratio = ds["theory_escape_time"].values / ds["mfpt_at_start"].values
    assert abs(ratio[0] - 1) < 0.02 and abs(ratio[1] - 1) < 0.06, ratio
    np.testing.assert_allclose(ds["mfpt_at_start_iterations"].values, ds["mfpt_at_start"].values / 0.05, rtol=1e-12)
    low, high = ds["well_variance_simulated_ci"].sel(bound="low"), ds["well_variance_simulated_ci"].sel(bound="high")
    assert np.all((low < ds["well_variance_pde"]) & (ds["well_variance_pde"] < high))
    assert plot_dataset(ds, tmp_path / "fig.png").stat().st_size > 0  # the comparison panels


def test_optimizer_tasks_are_refused_without_an_optimizer_or_in_two_dimensions(tmp_path):
    data = yaml.safe_load(BUNDLED.read_text())
    del data["sweep"]
    data["landscape"] = {"expression": "0.05*(x**2 - 1)**2 + y**2"}
    data["grid"]["y"] = {"min": -1.0, "max": 1.0, "n": 10}
    data["optimizer"]["freeze_at"] = [-1.0, 0.0]
    data["tasks"] = {"escape_theory": {"start": [-1.0, 0.0], "target": "x >= 0.4"}}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ScenarioError, match="escape_theory is computed for 1-D landscapes only"):
        load_scenario(path, tmp_path / "out.nc")
    data = yaml.safe_load(BUNDLED.read_text())
    del data["sweep"], data["optimizer"]
    data["model"] = {"temperature": 0.01}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, tmp_path / "out.nc")
    assert any(where.endswith("tasks.simulate") and "give an 'optimizer' block" in message for where, message in info.value.problems)
