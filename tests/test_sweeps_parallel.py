"""`fpsolver sweep`: the runs of a sweep in parallel (local processes or a dask cluster), the same
numbers as one after the other, failed runs recorded, and finished runs not computed twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from fpsolver.cli import main
from fpsolver.runner import compute_runs
from fpsolver.scenario import load_runs
from fpsolver import sweeps

SCENARIO = """\
name: par
landscape: {kind: double_well, tilt: 0.0}
grid: {x: {min: -2.0, max: 2.0, n: 300}}
model: {temperature: 0.1}
tasks:
  escape_rate: {start: -1.0, target: "x >= 1", methods: [mfpt, committor]}
sweep:
  model.temperature: [0.1, 0.07, 0.05, 0.04]
"""


def _file(tmp_path, text=SCENARIO):
    path = tmp_path / "par.yaml"
    path.write_text(text)
    return path


def test_parallel_sweep_equals_the_sequential_run(tmp_path):
    path = _file(tmp_path)
    result = CliRunner().invoke(main, ["sweep", str(path), "-o", str(tmp_path / "par.nc"), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "4 sweep runs, 0 failed" in result.output
    sequential = compute_runs(load_runs(path, tmp_path / "seq.nc"))
    with xr.open_dataset(tmp_path / "par.nc") as ds:
        assert ds["escape_rate"].dims == ("temperature", "estimator")
        np.testing.assert_array_equal(ds["escape_rate"].values, sequential["escape_rate"].values)
        np.testing.assert_array_equal(ds["temperature"].values, [0.1, 0.07, 0.05, 0.04])
        assert not any(ds["run_error"].values)
    assert not sweeps.cache_dir(tmp_path / "par.nc").exists()  # removed once everything landed


class _Counting:
    """An in-process executor that counts the runs submitted to it."""

    submitted = 0

    def __init__(self, workers, scheduler):
        self._pool = ThreadPoolExecutor(max_workers=1)

    def __enter__(self):
        outer = self

        class Pool:
            def submit(self, fn, *args):
                type(outer).submitted += 1
                return outer._pool.submit(fn, *args)

        return Pool()

    def __exit__(self, *exc):
        self._pool.shutdown()


def test_a_rerun_computes_only_the_runs_that_did_not_land(tmp_path, monkeypatch):
    import fpsolver.runner
    from fpsolver.errors import SolverError

    original = fpsolver.runner.TASKS["escape_rate"]

    def flaky(scenario, task, progress):
        if scenario.spec.model.temperature == 0.05:
            raise SolverError("injected failure")
        return original(scenario, task, progress)

    monkeypatch.setattr(sweeps, "_Workers", _Counting)
    monkeypatch.setitem(fpsolver.runner.TASKS, "escape_rate", flaky)
    path, out = _file(tmp_path), tmp_path / "par.nc"
    _, ds, failed = sweeps.run_sweep(path, out)
    assert failed == 1 and _Counting.submitted == 4
    assert "injected failure (in the sweep run model.temperature=0.05)" in str(ds["run_error"].values[2])
    assert np.isnan(ds["escape_rate"].values[2]).all() and np.isfinite(ds["escape_rate"].values[[0, 1, 3]]).all()
    assert len(list(sweeps.cache_dir(out).glob("*.nc"))) == 3
    monkeypatch.setitem(fpsolver.runner.TASKS, "escape_rate", original)  # the cause is fixed
    _, again, failed = sweeps.run_sweep(path, out)
    assert failed == 0 and _Counting.submitted == 5  # only the missing run was computed
    np.testing.assert_array_equal(again["escape_rate"].values[[0, 1, 3]], ds["escape_rate"].values[[0, 1, 3]])
    assert not sweeps.cache_dir(out).exists()


def test_sweep_on_a_local_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    path = _file(tmp_path)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        _, ds, failed = sweeps.run_sweep(path, tmp_path / "dask.nc", scheduler=cluster.scheduler_address)
    sequential = compute_runs(load_runs(path, tmp_path / "seq.nc"))
    assert failed == 0
    np.testing.assert_array_equal(ds["escape_rate"].values, sequential["escape_rate"].values)


def test_sweep_needs_a_sweep_block(tmp_path):
    text = SCENARIO.split("sweep:")[0]
    result = CliRunner().invoke(main, ["sweep", str(_file(tmp_path, text)), "-o", str(tmp_path / "o.nc")])
    assert result.exit_code == 2 and "has no sweep block" in result.output
