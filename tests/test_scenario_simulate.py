"""The scenario task ``simulate``: the optimizer's real discrete updates beside the PDE, in one file."""

from __future__ import annotations

import numpy as np
import pytest

from fpsolver.errors import ScenarioError
from fpsolver.runner import compute
from fpsolver.scenario import loads_scenario

TEXT = """\
name: simtest
landscape: {kind: cubic_well, height: 1.0, width: 1.0}
grid: {x: {min: -1.5, max: 1.5, n: 600}}
optimizer: {kind: gd_noise, lr: 0.005, sigma: 14.142}
tasks:
  mfpt: {start: [0.0], target: "x >= 1.2"}
  simulate: {start: [0.0], target: "x >= 1.2", particles: 1500, max_iterations: 30000, seed: 3}
"""


@pytest.mark.slow
def test_simulated_escape_time_beside_the_pde(tmp_path):
    """GD with white noise (T = lr sigma^2 / 2 = 0.5, barrier/T = 2): every particle escapes, and the
    simulated mean escape time (SGD time) is within 15 % of the PDE's MFPT: the discrete walk
    overshoots the target by ~0.58 sigma sqrt(lr) (Siegmund's correction), measured +8 % at lr =
    0.005 with 4000 particles; the interval is the 95 % confidence interval of the mean."""
    ds = compute(loads_scenario(TEXT, "sim.yaml", tmp_path / "o.nc"))
    assert float(ds["escaped_fraction"]) == 1.0
    simulated, pde = float(ds["mean_escape_time"]), float(ds["mfpt_at_start"])
    assert simulated == pytest.approx(pde, rel=0.15)
    low, high = ds["mean_escape_time_ci"].values
    assert low < simulated < high and high - low < 0.2 * simulated
    assert float(ds["mean_escape_iterations"]) == pytest.approx(simulated / 0.005)
    survival = ds["survival"].values
    assert survival[0] == 1.0 and np.all(np.diff(survival) <= 0) and ds["iteration_time"].dims == ("iteration",)
    again = compute(loads_scenario(TEXT, "sim.yaml", tmp_path / "o.nc"))  # seeded: reproducible
    assert float(again["mean_escape_time"]) == simulated


def test_simulate_needs_an_optimizer(tmp_path):
    text = TEXT.replace("optimizer: {kind: gd_noise, lr: 0.005, sigma: 14.142}", "model: {temperature: 0.5}")
    with pytest.raises(ScenarioError, match="sim.yaml:7: tasks.simulate: simulate runs an optimizer"):
        loads_scenario(text, "sim.yaml", tmp_path / "o.nc")


def test_a_sweep_can_switch_the_simulation_off_per_run(tmp_path):
    """``tasks.simulate: null`` in some runs of a zip sweep (barriers too high to simulate): those
    runs are NaN in the simulator's variables, the others keep theirs, and the file is written
    with the swept task as its JSON text. The per-run simulation settings do not split the runs
    into separate series of the sharpness fits."""
    import xarray as xr

    from fpsolver.runner import run_file
    from fpsolver.scenario import load_runs

    text = """\
name: simoff
landscape: {expression: "x**4/4 - x**2/2", sharpness: 1.0}
grid: {x: {min: -1.3, max: 0.8, n: 200}}
optimizer: {kind: sgd, lr: 0.02, batch_size: 1, noise: {kind: hessian, delta: 16.0}}
tasks:
  mfpt: {start: [-1.0], target: "x >= 0.5", field: false}
sweep:
  mode: zip
  landscape.sharpness: [1.0, 1.1, 1.2]
  tasks.simulate:
    - null
    - {start: [-1.0], target: "x >= 0.5", particles: 200, max_iterations: 20000, seed: 1}
    - {start: [-1.0], target: "x >= 0.5", particles: 300, max_iterations: 20000, seed: 1}
"""
    path = tmp_path / "simoff.yaml"
    path.write_text(text)
    out, _ = run_file(load_runs(path, tmp_path / "simoff.nc"))
    ds = xr.open_dataset(out)
    times = ds["mean_escape_iterations"].values
    assert np.isnan(times[0]) and np.all(np.isfinite(times[1:]))
    assert np.all(np.isnan(ds["survival"].values[0])) and ds["survival"].values[1, 0] == 1.0
    assert ds["tasks_simulate"].values[0] in (None, "None", "") and '"particles": 200' in str(ds["tasks_simulate"].values[1])
    assert list(ds["group"].values) == ["all"] and np.isfinite(float(ds["fit_slope_inv_k"][0]))
    assert np.isnan(float(ds["fit_simulated_slope_inv_k"][0]))  # two simulated points: no fit


def test_a_run_that_only_simulates_does_not_check_the_model_it_never_solves(tmp_path):
    """EMA momentum at lr 0.02 on a sharp well is far from its overdamped limit (the check gives 7.3):
    with an mfpt task the build warns; with only the simulator, which runs the real update rule,
    it does not (flat_minima_2d.yaml's Momentum and Adai runs)."""
    from fpsolver.errors import FPSolverWarning

    text = """\
name: simonly
landscape: {expression: "0.307328*x**4 - 0.6272*x**2 + 0.07*x", sharpness: 4.0}
grid: {x: {min: -0.4, max: 0.8, n: 60}}
optimizer: {kind: momentum, form: ema, lr: 0.02, batch_size: 1, noise: {kind: hessian, delta: 8.0}, dynamics: overdamped}
tasks:
  simulate: {start: [0.4905], target: "x <= -0.25", particles: 200, max_iterations: 5000, seed: 1}
"""
    loads_scenario(text, "simonly.yaml", tmp_path / "o.nc")  # warnings are errors in the tests
    with pytest.warns(FPSolverWarning, match="overdamped model needs"):
        loads_scenario(text + '  mfpt: {start: [0.4905], target: "x <= -0.25", field: false}\n', "simonly.yaml", tmp_path / "o.nc")
