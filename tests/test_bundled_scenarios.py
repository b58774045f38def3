"""Every bundled scenario validates and runs from the CLI; results checked where an answer is known."""

from __future__ import annotations

import contextlib
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


#: Scenarios whose low-temperature runs include methods that lose digits, and say so.
WARNS = {"kramers_1d"}


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_bundled_scenario_runs(path, tmp_path):
    out = tmp_path / f"{path.stem}.nc"
    runner = CliRunner()
    assert runner.invoke(main, ["validate", str(path)]).exit_code == 0
    expected = pytest.warns(FPSolverWarning, match="digits") if path.stem in WARNS else contextlib.nullcontext()
    with expected:
        result = runner.invoke(main, ["run", str(path), "-o", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    ds = xr.open_dataset(out)
    assert any(v in ds for v in ("p", "p_stationary", "rate", "escape_rate"))
    assert runner.invoke(main, ["plot", str(out), "-o", str(tmp_path / "fig.png")]).exit_code == 0


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
