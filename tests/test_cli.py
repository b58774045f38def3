"""The command line: exit codes, one-line errors without tracebacks, atomic outputs."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from fpsolver.cli import main

from .test_scenario import GOOD


@pytest.fixture
def runner():
    return CliRunner()


def _scenario(tmp_path, text=GOOD, name="s.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_run_writes_a_cf_style_dataset(runner, tmp_path):
    out = tmp_path / "out.nc"
    result = runner.invoke(main, ["run", str(_scenario(tmp_path)), "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    ds = xr.open_dataset(out)  # the default engine opens it: a real netCDF4/HDF5 file
    assert ds["p"].dims == ("time", "x") and ds["p_stationary"].dims == ("x",)
    for name in list(ds.data_vars) + list(ds.coords):
        assert ds[name].attrs.get("units") and ds[name].attrs.get("long_name"), name
    for key in ("Conventions", "title", "source", "history", "scenario"):
        assert ds.attrs[key], key
    assert ds.attrs["source"].startswith("fpsolver ") and "name: good" in ds.attrs["scenario"]
    np.testing.assert_allclose(ds["mass"].values, 1.0, atol=1e-12)


def test_validate_and_info(runner, tmp_path):
    result = runner.invoke(main, ["validate", str(_scenario(tmp_path))])
    assert result.exit_code == 0 and "ok (50 cells" in result.output
    result = runner.invoke(main, ["info"])
    assert result.exit_code == 0 and "bdf2" in result.output and "superlu" in result.output and "cores and threads" in result.output


def test_bad_scenario_exits_2_with_one_located_line_and_keeps_existing_output(runner, tmp_path):
    out = tmp_path / "out.nc"
    out.write_bytes(b"previous results")
    bad = _scenario(tmp_path, GOOD.replace("temperature: 0.1", "temperature: -1"), "bad.yaml")
    result = runner.invoke(main, ["run", str(bad), "-o", str(out)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [f"{bad}:8: model.temperature: Input should be greater than 0"]
    assert "Traceback" not in result.output
    assert out.read_bytes() == b"previous results"


def test_all_files_are_validated_before_anything_runs(runner, tmp_path):
    good, out = _scenario(tmp_path), tmp_path / "outputs"
    bad = _scenario(tmp_path, GOOD.replace("n: 50", "n: 1"), "bad.yaml")
    result = runner.invoke(main, ["run", str(good), str(bad)], catch_exceptions=False, env={"PWD": str(tmp_path)})
    assert result.exit_code == 2 and "grid.x.n" in result.output
    assert not out.exists() and not (tmp_path / "good.nc").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "missing.yaml"], "missing.yaml: file not found"),
        (["validate", "missing.yaml"], "missing.yaml: file not found"),
        (["plot", "missing.nc"], "missing.nc: file not found"),
    ],
)
def test_missing_files(runner, args, message):
    result = runner.invoke(main, args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_output_option_needs_a_single_file(runner, tmp_path):
    s = str(_scenario(tmp_path))
    result = runner.invoke(main, ["run", s, s, "-o", str(tmp_path / "x.nc")])
    assert result.exit_code == 2 and "single scenario" in result.output


def test_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    from fpsolver import io

    ds = xr.Dataset({"a": ("x", np.arange(3.0), {"units": "1", "long_name": "a"})})
    target = tmp_path / "out.nc"
    target.write_bytes(b"old")

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", explode)
    with pytest.raises(OSError, match="disk full"):
        io.write_dataset(ds, target)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]


def test_internal_errors_exit_1(runner, tmp_path, monkeypatch):
    import fpsolver.runner

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(fpsolver.runner, "run_file", broken)
    result = runner.invoke(main, ["run", str(_scenario(tmp_path)), "-o", str(tmp_path / "o.nc")])
    assert result.exit_code == 1 and "internal error: RuntimeError: boom" in result.output


def test_console_script_end_to_end(tmp_path):
    """The installed `fpsolver` entry point, as a user runs it: exit codes and stderr."""
    exe = [sys.executable, "-m", "fpsolver.cli"] if not _have_script() else ["fpsolver"]
    ok = subprocess.run([*exe, "run", str(_scenario(tmp_path)), "-o", str(tmp_path / "o.nc")], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    bad = _scenario(tmp_path, GOOD.replace('"x**4/4 - x**2/2"', "\"__import__('os')\""), "bad.yaml")
    failed = subprocess.run([*exe, "validate", str(bad)], capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2 and failed.stderr.startswith(f"{bad}:3: landscape.expression:")
    assert "Traceback" not in failed.stderr and len(failed.stderr.strip().splitlines()) == 1


def _have_script() -> bool:
    return any(os.access(os.path.join(d, "fpsolver"), os.X_OK) for d in os.environ.get("PATH", "").split(os.pathsep))
