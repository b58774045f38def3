"""Scenario keys of the scale work: evolve with rtol (adaptive TR-BDF2) and solver: auto."""

from __future__ import annotations

import numpy as np
import pytest

from fpsolver.errors import ScenarioError
from fpsolver.runner import compute
from fpsolver.scenario import loads_scenario

TEXT = """\
name: steps
landscape: {expression: "x**4/4 - x**2/2"}
grid: {x: {min: -2.5, max: 2.5, n: 400}}
model: {temperature: 0.1}
initial: {gaussian: {mean: -1.0, std: 0.1}}
tasks:
  evolve: {t_end: 5.0, rtol: 1.0e-4, save_every: 1.0}
"""


def test_adaptive_evolve_from_a_scenario_lands_on_the_save_times(tmp_path):
    """rtol alone picks TR-BDF2; the snapshots are at the save times and agree with a fine fixed
    step to the requested tolerance's order (measured 6e-6 of the peak at rtol = 1e-4)."""
    ds = compute(loads_scenario(TEXT, "s.yaml", tmp_path / "o.nc"))
    np.testing.assert_allclose(ds["time"].values, [0, 1, 2, 3, 4, 5], atol=1e-12)
    assert ds.attrs["scheme"] == "trbdf2" and ds.attrs["rtol"] == 1e-4 and ds.attrs["solver"] == "superlu"
    fixed = compute(loads_scenario(TEXT.replace("rtol: 1.0e-4", "dt: 0.005, scheme: trbdf2"), "s.yaml", tmp_path / "o.nc"))
    gap = np.abs(ds["p"].values - fixed["p"].values).max() / fixed["p"].values.max()
    assert gap < 1e-4


def test_evolve_needs_dt_or_rtol(tmp_path):
    with pytest.raises(ScenarioError, match=r"s.yaml:7: tasks.evolve: give dt \(fixed steps\) or rtol"):
        loads_scenario(TEXT.replace("rtol: 1.0e-4, ", ""), "s.yaml", tmp_path / "o.nc")


def test_unknown_solver_lists_auto(tmp_path):
    with pytest.raises(ScenarioError, match="choose one of auto, superlu"):
        loads_scenario(TEXT + "solver: magic\n", "s.yaml", tmp_path / "o.nc")
