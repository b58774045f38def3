"""Scenario sweeps and the rate tasks, end to end through the loader, runner and plot."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from fpsolver.errors import ScenarioError
from fpsolver.plotting import plot_dataset
from fpsolver.runner import compute_runs, run_file
from fpsolver.scenario import load_runs, load_scenario

BASE = """\
name: sweep_test
landscape: {{expression: "x**4/4 - x**2/2"}}
grid: {{x: {{min: -2.0, max: 2.0, n: 400}}}}
model: {{temperature: 0.1}}
tasks:
  escape_rate: {{start: -1.0, target: "x >= 1", methods: [mfpt, committor]}}
  mfpt: {{start: -1.0, target: "x >= 1"}}
{sweep}
"""


def _write(tmp_path, sweep: str, name: str = "s.yaml"):
    path = tmp_path / name
    path.write_text(BASE.format(sweep=sweep))
    return path


def test_temperature_sweep_stacks_runs_along_temperature(tmp_path):
    path = _write(tmp_path, "sweep:\n  model.temperature: [0.1, 0.05, 0.025]\n")
    run = load_runs(path, tmp_path / "out.nc")
    assert run.is_sweep and len(run.runs) == 3
    out, ds = run_file(run)
    ds = xr.open_dataset(out)
    assert ds["escape_rate"].dims == ("temperature", "estimator")
    np.testing.assert_allclose(ds["temperature"].values, [0.1, 0.05, 0.025])
    ratio = (ds["escape_rate"].sel(estimator="mfpt") / ds["kramers_rate"]).values
    assert np.all(np.diff(ratio) > 0) and ratio[-1] < 1  # approaches 1 from below as T falls
    assert ds["mfpt"].dims == ("temperature", "x") and ds["escape_rate"].attrs["units"]
    assert "model_temperature" not in ds.attrs and "model.temperature" in ds.attrs["sweep"]
    assert plot_dataset(ds, tmp_path / "fig.png").stat().st_size > 0


def test_zip_sweep_over_two_keys_uses_a_run_dimension(tmp_path):
    sweep = "sweep:\n  mode: zip\n  model.temperature: [0.1, 0.05]\n  grid.x.n: [300, 500]\n"
    ds = compute_runs(load_runs(_write(tmp_path, sweep), tmp_path / "o.nc"))
    assert ds["escape_rate"].dims == ("run", "estimator")
    assert list(ds["grid_x_n"].values) == [300, 500]


@pytest.mark.parametrize(
    "sweep, line, message",
    [
        # the sweep block starts on line 8; its first entry is on line 9
        ("sweep:\n  model.temperature: [0.1, -0.05]\n", 9, "greater than 0 (in the sweep run model.temperature=-0.05)"),
        ("sweep:\n  model.nonsense.key: [1]\n", 9, "has no such mapping"),
        ("sweep:\n  model.temperature: []\n", 9, "non-empty list"),
        ("sweep:\n  mode: zip\n  model.temperature: [0.1]\n  grid.x.n: [300, 400]\n", 8, "equal length"),
        ("sweep:\n  mode: diagonal\n  model.temperature: [0.1]\n", 9, "sweep mode"),
    ],
)
def test_bad_sweeps_are_located(tmp_path, sweep, line, message):
    path = _write(tmp_path, sweep)
    with pytest.raises(ScenarioError) as info:
        load_runs(path)
    where, text = info.value.problems[0]
    assert where.startswith(f"{path}:{line}") and message in text


def test_load_scenario_refuses_a_sweep(tmp_path):
    with pytest.raises(ScenarioError, match="contains a sweep"):
        load_scenario(_write(tmp_path, "sweep:\n  model.temperature: [0.1, 0.05]\n"))


@pytest.mark.parametrize(
    "task, key, message",
    [
        ('escape_rate: {start: -1.0, target: "x >= 9"}', "tasks.escape_rate.target", "contains no cell"),
        ('escape_rate: {start: 1.5, target: "x >= 1"}', "tasks.escape_rate.start", "inside the target"),
        ('escape_rate: {start: [-1.0, 0.0], target: "x >= 1"}', "tasks.escape_rate.start", "needs 1 value"),
        ('escape_rate: {start: -1.0, target: "x >= 1", methods: [magic]}', "tasks.escape_rate.methods", "unknown method"),
        ("mfpt: {start: -1.0}", "tasks.mfpt.target", "no target"),
    ],
)
def test_bad_rate_tasks_are_located(tmp_path, task, key, message):
    text = BASE.format(sweep="").replace(
        '  escape_rate: {start: -1.0, target: "x >= 1", methods: [mfpt, committor]}\n  mfpt: {start: -1.0, target: "x >= 1"}',
        f"  {task}",
    )
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_runs(path)
    where, text = info.value.problems[0]
    assert where == f"{path}:6: {key}" and message in text


TILT = """\
name: tilt
landscape: {kind: double_well, tilt: 0.0}
grid: {x: {min: -2.0, max: 2.0, n: 200}}
model: {temperature: 0.1}
tasks:
  escape_rate: {start: -1.0, target: "x >= 1", methods: [mfpt, committor]}
sweep:
  landscape.tilt: TILTS
"""


def _fail_at_tilts(monkeypatch, tilts):
    """Make the escape-rate task fail at run time (as a solver can) for the given tilts."""
    import fpsolver.runner
    from fpsolver.errors import SolverError

    original = fpsolver.runner.TASKS["escape_rate"]

    def flaky(scenario, task, progress):
        if scenario.spec.landscape.tilt in tilts:
            raise SolverError("the eigen-solver did not converge")
        return original(scenario, task, progress)

    monkeypatch.setitem(fpsolver.runner.TASKS, "escape_rate", flaky)


def test_a_failing_sweep_run_is_recorded_and_the_others_land(tmp_path, monkeypatch):
    # A run that fails while computing (here: a solver failure injected at tilt 2) is recorded; the others land.
    from click.testing import CliRunner

    from fpsolver.cli import main

    _fail_at_tilts(monkeypatch, (2.0,))
    path = tmp_path / "tilt.yaml"
    path.write_text(TILT.replace("TILTS", "[0.0, 2.0, 0.1]"))
    result = CliRunner().invoke(main, ["run", str(path), "-o", str(tmp_path / "out.nc")])
    assert result.exit_code == 1, result.output
    assert f"{path}:8: sweep.landscape.tilt: tasks.escape_rate: the eigen-solver did not converge" in result.output
    assert "(in the sweep run landscape.tilt=2.0)" in result.output and "Traceback" not in result.output
    with xr.open_dataset(tmp_path / "out.nc") as ds:
        rates = ds["escape_rate"].values
        assert np.all(np.isfinite(rates[[0, 2]])) and np.all(np.isnan(rates[1]))
        assert [bool(e) for e in ds["run_error"].values] == [False, True, False]
        # the good runs are the same numbers as when computed alone
        alone = compute_runs(load_runs(_tilt(tmp_path, "[0.1]"), tmp_path / "o.nc"))
        np.testing.assert_array_equal(rates[2], alone["escape_rate"].values[0])


def _tilt(tmp_path, tilts: str):
    path = tmp_path / "alone.yaml"
    path.write_text(TILT.replace("TILTS", tilts))
    return path


def test_a_sweep_whose_runs_all_fail_writes_nothing(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from fpsolver.cli import main

    _fail_at_tilts(monkeypatch, (2.0, 3.0))
    out = tmp_path / "out.nc"
    result = CliRunner().invoke(main, ["run", str(_tilt(tmp_path, "[2.0, 3.0]")), "-o", str(out)])
    assert result.exit_code == 1 and not out.exists()
    assert result.output.count("sweep.landscape.tilt: tasks.escape_rate: the eigen-solver did not converge") == 2


def test_warnings_name_the_file_sweep_run_and_task(tmp_path):
    from fpsolver.errors import FPSolverWarning

    text = """\
name: cn
landscape: {expression: "x**4/4 - x**2/2"}
grid: {x: {min: -2.0, max: 2.0, n: 300}}
model: {temperature: 0.1}
initial: {gaussian: {mean: -1.0, std: 0.03}}
tasks:
  evolve: {t_end: 1.0, dt: 0.5, scheme: cn}
sweep:
  model.temperature: [0.1]
"""
    path = tmp_path / "cn.yaml"
    path.write_text(text)
    with pytest.warns(FPSolverWarning, match=r"cn.yaml: sweep run model.temperature=0.1: evolve: the cn steps produced negative"):
        compute_runs(load_runs(path, tmp_path / "o.nc"))


def test_a_swept_key_named_like_an_axis_gets_a_run_dimension(tmp_path):
    # An axis called 'temperature' and a sweep of model.temperature: the sweep may not take
    # the axis' name, so it stacks along 'run' with the coordinate 'model_temperature'.
    text = BASE.format(sweep="sweep:\n  model.temperature: [0.1, 0.2]\n")
    for old, new in (("x**4/4 - x**2/2", "temperature**4/4 - temperature**2/2"), ("{x: {", "{temperature: {"), ('"x >= 1"', '"temperature >= 1"')):
        text = text.replace(old, new)
    path = tmp_path / "t.yaml"
    path.write_text(text)
    ds = compute_runs(load_runs(path, tmp_path / "o.nc"))
    assert ds["escape_rate"].dims == ("run", "estimator") and ds["mfpt"].dims == ("run", "temperature")
    assert list(ds["model_temperature"].values) == [0.1, 0.2]


def test_a_swept_point_is_written_as_text_and_the_times_are_drawn(tmp_path):
    # A swept start point (a list per run, as in flat_minima_2d.yaml) is one coordinate entry
    # per run, its text; with field: false only mfpt_at_start is left, and it gets its panel.
    text = BASE.format(sweep="sweep:\n  tasks.mfpt.start: [[-1.0], [-0.5]]\n")
    text = text.replace('  mfpt: {start: -1.0, target: "x >= 1"}', '  mfpt: {start: -1.0, target: "x >= 1", field: false}')
    text = text.replace('  escape_rate: {start: -1.0, target: "x >= 1", methods: [mfpt, committor]}\n', "")
    path = tmp_path / "p.yaml"
    path.write_text(text)
    ds = compute_runs(load_runs(path, tmp_path / "o.nc"))
    assert list(ds["start"].values) == ["[-1.0]", "[-0.5]"] and "mfpt" not in ds
    assert 0 < ds["mfpt_at_start"].values[1] < ds["mfpt_at_start"].values[0]  # closer to the barrier: sooner
    from fpsolver.plotting import draw

    fig = draw(ds)
    assert [ax.get_title() for ax in fig.axes] == ["mean first-passage time"]
    import matplotlib.pyplot as plt

    plt.close(fig)
