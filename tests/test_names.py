"""Axis names that an output already uses are refused at validation."""

from __future__ import annotations

import warnings

import pytest

from fpsolver.errors import ScenarioError
from fpsolver.runner import compute_runs
from fpsolver.scenario import load_runs, load_scenario

from .test_scenario import GOOD

EVERY_TASK = """\
name: every_task
landscape:
  expression: "x**4/4 - x**2/2 + y**2"
grid:
  x: {min: -2.0, max: 2.0, n: 24}
  y: {min: -1.5, max: 1.5, n: 6}
model:
  temperature: 0.2
initial:
  gaussian: {mean: [-1.0, 0.0], std: [0.3, 0.3]}
tasks:
  evolve: {t_end: 0.4, dt: 0.1, save_every: 0.2, surface: auto}
  stationary: {}
  spectrum: {k: 3}
  mfpt: {start: [-1.0, 0.0], target: "x >= 1"}
  escape_rate: {start: [-1.0, 0.0], target: "x >= 1"}
sweep:
  model.temperature: [0.2, 0.25]
"""


@pytest.mark.slow  # 3-5 s (subprocess imports / every task computed), more when the machine is shared
def test_reserved_names_cover_everything_an_output_contains(tmp_path):
    # Independent of the list: whatever the code writes today (every task, in a sweep)
    # must be reserved, or an axis of that name would clash with it.
    path = tmp_path / "every.yaml"
    path.write_text(EVERY_TASK)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rate-method caveats at this coarse resolution are not under test
        ds = compute_runs(load_runs(path, tmp_path / "out.nc"))
    written = set(map(str, ds.variables)) | set(map(str, ds.dims))
    from fpsolver.scenario.names import reserved_clashes

    unreserved = sorted(written - {"x", "y", "temperature"} - set(reserved_clashes(sorted(written))))
    assert not unreserved, unreserved


@pytest.mark.parametrize("name", ["time", "rate", "method", "estimator", "mode", "p", "mass", "component", "coordinate"])
def test_axis_names_used_by_the_output_are_refused(name, tmp_path):
    text = GOOD.replace("  x: {", f"  {name}: {{").replace("x**4/4 - x**2/2", f"{name}**4/4 - {name}**2/2")
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, tmp_path / "out.nc")
    where, message = info.value.problems[0]
    assert where == f"{path}:5: grid.{name}" and f"the axis name {name!r} is used by the output" in message
    assert "reserved: barrier, bound, committor" in message
