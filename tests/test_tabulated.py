"""Tabulated landscapes: values on a table, derivatives from findiff stencils, cubic splines between nodes.

Checked against the exact landscape the table was sampled from: the claimed fourth order in the
node spacing for value, gradient and Hessian, composition (sharpness, added terms), and the same
rates and stationary state from a scenario as the expression gives.
"""

from __future__ import annotations

import numpy as np
import pytest

import fpsolver as fp
from fpsolver.errors import InputError, ScenarioError
from fpsolver.noise import HessianNoise
from fpsolver.runner import compute
from fpsolver.scenario import loads_scenario
from fpsolver.tabulated import TabulatedLandscape, read_table

FORMULA = "(x**2 - 1)**2 + y**2/2 + 0.3*x*y + sin(3*x)*cos(2*y)/10"
EXACT = fp.Landscape.from_expression(FORMULA, ["x", "y"])


def _table(n: int, formula: str = FORMULA) -> TabulatedLandscape:
    x, y = np.linspace(-2, 2, n + 1), np.linspace(-1.5, 1.5, n + 1)
    exact = fp.Landscape.from_expression(formula, ["x", "y"])
    return TabulatedLandscape({"x": x, "y": y}, exact.value(*np.meshgrid(x, y, indexing="ij")))


def test_value_gradient_and_hessian_converge_at_fourth_order():
    """Stencils (findiff, acc 4) and not-a-knot cubic splines are both O(h^4): the observed order over
    two halvings must lie in [3.5, 4.5] for every quantity (measured 3.9-4.2; from 40 nodes the first
    halving is still pre-asymptotic, 4.0-5.4)."""
    rng = np.random.default_rng(1)
    px, py = rng.uniform(-1.9, 1.9, 300), rng.uniform(-1.4, 1.4, 300)
    errors = []
    for n in (80, 160, 320):
        t = _table(n)
        errors.append([np.abs(t.value(px, py) - EXACT.value(px, py)).max(), np.abs(t.gradient(px, py) - EXACT.gradient(px, py)).max(), np.abs(t.hessian(px, py) - EXACT.hessian(px, py)).max()])
    order = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((order > 3.5) & (order < 4.5)), order


def test_sharpness_and_added_terms_compose_like_the_expression():
    t, k = _table(160), 4.0
    at = (np.array([0.1, -0.3]), np.array([0.2, 0.05]))  # inside the sharpened table ([-1, 1] x [-0.75, 0.75])
    np.testing.assert_allclose(t.with_sharpness(k).hessian(*at), EXACT.with_sharpness(k).hessian(*at), atol=1e-4)
    decay = fp.Landscape.from_expression("x**2 + y**2", ["x", "y"]).expr / 20
    np.testing.assert_allclose(t.plus(decay, "decayed").gradient(*at), EXACT.plus(decay, "decayed").gradient(*at), atol=1e-5)


def test_the_hessian_noise_of_a_table_is_diagonal_only_when_it_is_separable():
    assert not HessianNoise().is_diagonal(_table(40))
    assert HessianNoise().is_diagonal(_table(40, "(x**2 - 1)**2 + y**2/2"))


def test_evaluation_outside_the_table_is_refused_with_its_range():
    with pytest.raises(InputError, match=r"defined for x in \[-2, 2\]; it was evaluated at x=2.5"):
        _table(20).value(np.array([0.0, 2.5]), np.array([0.0, 0.0]))


@pytest.mark.parametrize(
    "coords, values, message",
    [
        ({"x": np.linspace(0, 1, 8)}, np.ones(7), "need \\(8,\\)"),
        ({"x": np.linspace(1, 0, 8)}, np.ones(8), "strictly increasing"),
        ({"x": np.linspace(0, 1, 4)}, np.ones(4), "at least 6 nodes"),
        ({"x": np.linspace(0, 1, 8)}, np.r_[np.ones(7), np.nan], "not finite at x=1"),
    ],
)
def test_bad_tables_are_refused(coords, values, message):
    with pytest.raises(InputError, match=message):
        TabulatedLandscape(coords, values)


def test_a_table_file_without_an_array_is_refused(tmp_path):
    np.savez(tmp_path / "t.npz", x=np.linspace(0, 1, 8), values=np.ones(8))
    with pytest.raises(InputError, match=r"has no arrays \['loss'\]"):
        read_table(tmp_path / "t.npz", ["x"])


SCENARIO = """name: tab
landscape: {landscape}
grid:
  x: {{min: -2.0, max: 2.0, n: 80}}
  y: {{min: -1.5, max: 1.5, n: 60}}
model: {{temperature: 0.25}}
tasks:
  stationary: true
  escape_rate: {{start: [-1.0, 0.15], target: "x >= 0.8"}}
"""


def _write_table(tmp_path, n: int = 200) -> None:
    x, y = np.linspace(-2, 2, n + 1), np.linspace(-1.5, 1.5, n + 1)
    np.savez(tmp_path / "loss.npz", x=x, y=y, loss=EXACT.value(*np.meshgrid(x, y, indexing="ij")))


def test_a_table_scenario_gives_the_rates_of_its_expression(tmp_path):
    """Tabulated at h = 0.02 (L error ~1e-7), the stationary state and every rate estimator match the
    expression's to 1e-5 relative, and so does the Eyring-Kramers rate (Hessians from the stencils)."""
    _write_table(tmp_path)
    table = compute(loads_scenario(SCENARIO.format(landscape="{kind: table, file: loss.npz, variables: [x, y]}"), str(tmp_path / "t.yaml")))
    exact = compute(loads_scenario(SCENARIO.format(landscape=f'{{expression: "{FORMULA}"}}'), str(tmp_path / "e.yaml")))
    np.testing.assert_allclose(table["p_stationary"], exact["p_stationary"], rtol=0, atol=1e-5 * float(exact["p_stationary"].max()))
    np.testing.assert_allclose(table["escape_rate"], exact["escape_rate"], rtol=1e-5)
    np.testing.assert_allclose(table["kramers_rate"], exact["kramers_rate"], rtol=1e-5)


@pytest.mark.parametrize(
    "landscape, message",
    [
        ("{kind: table, file: nowhere.npz, variables: [x, y]}", ":2: landscape.file: table file .* does not exist"),
        ("{kind: table, file: loss.npz, variables: [x, z]}", ":2: landscape.file: .*has no arrays \\['z'\\]"),
    ],
)
def test_bad_table_scenarios_are_located(landscape, message, tmp_path):
    _write_table(tmp_path, 20)
    with pytest.raises(ScenarioError, match=message):
        loads_scenario(SCENARIO.format(landscape=landscape), str(tmp_path / "t.yaml"))


def test_a_grid_beyond_the_table_is_refused_at_the_landscape(tmp_path):
    _write_table(tmp_path, 20)
    text = SCENARIO.format(landscape="{kind: table, file: loss.npz, variables: [x, y]}").replace("max: 2.0", "max: 2.5")
    with pytest.raises(ScenarioError, match=r":2: landscape.file: the tabulated landscape is defined for x in \[-2, 2\]"):
        loads_scenario(text, str(tmp_path / "t.yaml"))
