"""The Python examples in the README and docs run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = [
    pytest.param(block, id=f"{page.name}:{i}")
    for page in PAGES
    for i, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S))
    if "outputs/" not in block  # needs a prior CLI run; covered by the CLI tests
]


def test_docs_have_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", BLOCKS)
def test_example_runs(block):
    exec(compile(block, "<docs>", "exec"), {})


YAML_EXAMPLES = [
    pytest.param(block, id=f"{page.name}:{i}")
    for page in PAGES
    for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", page.read_text(encoding="utf-8"), re.S))
    if block.lstrip().startswith("name:")
]


def test_docs_have_scenario_examples():
    assert YAML_EXAMPLES


@pytest.mark.parametrize("text", YAML_EXAMPLES)
def test_scenario_example_runs(text, tmp_path):
    """Complete scenarios in the docs validate and run (all tasks in one file, so their
    output variables must not clash)."""
    from fpsolver.runner import compute
    from fpsolver.scenario import loads_scenario

    ds = compute(loads_scenario(text, "example.yaml", tmp_path / "example.nc"))
    assert ds.data_vars


def test_readme_example_numbers():
    """The README's Python example gives what its comments claim: a normalised Gibbs state, mass
    conserved, lambda_1 ~ 2 k (measured 0.915 of 2 x Kramers at barrier/T = 5, where 1 - cT/dL with
    c ~ 0.4 predicts 0.92) and four escape rates that agree to 1 % and lie 0.90-0.91 of Kramers."""
    import numpy as np

    block = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)[0]
    names: dict = {}
    exec(compile(block, "<README>", "exec"), names)
    grid, ps, spec, rates = names["grid"], names["ps"], names["spec"], names["rates"]
    assert grid.integrate(ps.values) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(names["ds"]["mass"].values, 1.0, atol=1e-12)
    kramers = float(rates["kramers_rate"])
    assert 0.8 < float(spec["rate"][1]) / (2 * kramers) < 1.0
    values = rates["escape_rate"].values
    np.testing.assert_allclose(values, values[0], rtol=0.02)
    assert 0.85 < values[0] / kramers < 1.0


def test_the_gallery_shows_every_bundled_scenario():
    gallery = (ROOT / "docs" / "gallery.md").read_text(encoding="utf-8")
    for scenario in sorted((ROOT / "scenarios").glob("*.yaml")):
        figure = f"figures/gallery_{scenario.stem}.png"
        assert f"`{scenario.name}`" in gallery and f"({figure})" in gallery, scenario.name
        assert (ROOT / "docs" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
