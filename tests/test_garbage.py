"""No silent garbage: initial mass outside the domain is refused, negative densities warn."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import fpsolver as fp
from fpsolver.errors import FPSolverWarning, InputError
from fpsolver.runner import compute
from fpsolver.scenario import loads_scenario
from fpsolver.stepping import NegativeDensityCheck

from .test_scenario import GOOD


@pytest.mark.parametrize("mean, std", [([10.0], [0.2]), ([2.0], [0.2]), ([-1.9], [0.5])])
def test_initial_mass_outside_the_domain_is_an_error(mean, std):
    # Share outside: 100 %, 50 %, 41 % (erf), all far beyond the 1 % tolerance.
    with pytest.raises(InputError, match=r"% of the gaussian's mass .* lies outside the domain \(x in \[-2, 2\]\)"):
        fp.gaussian(fp.Grid.uniform(x=(-2.0, 2.0, 50)), mean, std)


def test_initial_mass_inside_the_domain_is_kept():
    # 5 std from the wall: 2.9e-7 of the mass outside, well inside the tolerance; unit discrete mass.
    grid = fp.Grid.uniform(x=(-2.0, 2.0, 50), y=(-1.0, 1.0, 20))
    p0 = fp.gaussian(grid, [-1.0, 0.0], [0.2, 0.2])
    assert grid.integrate(p0.values) == pytest.approx(1.0, abs=1e-14)


def _stiff(scheme: str, dt: float, interval: float | None = None) -> tuple[np.ndarray, NegativeDensityCheck, list[warnings.WarningMessage]]:
    # A Gaussian 4 cells wide on a 200-cell double well: its high modes decay ~ 1e3 times
    # faster than dt = 0.1, where Crank–Nicolson's amplification (1 - z/2)/(1 + z/2) -> -1
    # makes them ring with alternating sign instead of decaying.
    grid = fp.Grid.uniform(x=(-2.0, 2.0, 200))
    problem = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression("x**4/4 - x**2/2"), 0.1), grid)
    check = NegativeDensityCheck(problem.volumes, scheme, interval)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = problem.evolve(fp.gaussian(grid, [-1.0], [0.02]), 1.0, dt, scheme, callbacks=[check], progress=False)
    return ds["p"].values, check, caught


def test_crank_nicolson_ringing_warns_once_naming_the_scheme_and_a_fix():
    p, check, caught = _stiff("cn", 0.1)
    assert check.worst > 0.1  # measured: min p -5.95, 16 % of the mass negative after the first step
    messages = [str(w.message) for w in caught if issubclass(w.category, FPSolverWarning)]
    assert len(messages) == 1 and "the cn steps produced negative densities at t=0.1" in messages[0]
    assert "use scheme bdf2 or trbdf2" in messages[0]


def test_only_output_times_are_judged_but_every_step_is_recorded():
    # With output only at t = 1 the ringing has decayed there (p >= 0 at t = 1), so the
    # delivered density is sound: no warning, but the worst step is still on record.
    p, check, caught = _stiff("cn", 0.1, interval=1.0)
    assert p[-1].min() >= 0.0 and check.worst > 0.1 and not caught


@pytest.mark.parametrize("scheme", ["euler", "bdf2", "trbdf2"])
def test_suggested_schemes_stay_nonnegative_on_the_same_data(scheme):
    p, check, caught = _stiff(scheme, 0.1)
    assert check.worst <= 1e-10 and not caught  # zero to round-off on this data: far below the 1e-6 tolerance


def test_scenario_evolve_reports_negative_mass_and_warns(tmp_path):
    text = GOOD.replace("dt: 0.1, scheme: bdf2", "dt: 0.5, scheme: cn").replace("std: [0.2]", "std: [0.03]").replace("n: 50", "n: 300")
    scenario = loads_scenario(text, "s.yaml", tmp_path / "o.nc")
    with pytest.warns(FPSolverWarning, match="the cn steps produced negative densities"):
        ds = compute(scenario, progress=False)
    assert float(ds["negative_mass"].max()) > 1e-3 and float(ds["negative_mass"][0]) == 0.0


RATES = """\
name: rates
landscape: {expression: "x**4/4 - x**2/2"}
grid: {x: {min: -2.0, max: 2.0, n: 60}}
model: {temperature: 0.1}
tasks:
  escape_rate: {start: -1.0, target: "x >= 1", methods: [mfpt, committor]}
"""


def test_input_errors_found_while_computing_are_located_at_the_task(tmp_path, monkeypatch):
    from fpsolver.errors import ScenarioError

    scenario = loads_scenario(RATES, "r.yaml", tmp_path / "o.nc")

    def unreachable(self, *args, **kwargs):
        raise InputError("the target cannot be reached from the start")

    monkeypatch.setattr(type(scenario.problem), "escape_rate", unreachable)
    with pytest.raises(ScenarioError) as info:
        compute(scenario, progress=False)
    assert info.value.problems == [("r.yaml:6: tasks.escape_rate", "the target cannot be reached from the start")]
