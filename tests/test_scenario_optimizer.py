"""The scenario ``optimizer:`` block: built models give the theory's numbers; bad input is located."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fpsolver.errors import FPSolverWarning, ScenarioError
from fpsolver.runner import compute, compute_runs
from fpsolver.scenario import load_runs, loads_scenario

BASE = """name: opt
landscape: {kind: quadratic, hessian: [2.0]}
grid:
  x: {min: -0.8, max: 0.8, n: 400}
optimizer:
  kind: sgd
  lr: 0.05
  batch_size: 4
  noise: {kind: hessian, delta: 1.0e-9}
tasks:
  stationary: true
"""


def _variance(ds, **sel) -> float:
    p = ds["p_stationary"].sel(**sel).values if sel else ds["p_stationary"].values
    x = ds["x"].values
    return float(np.sum(p * x**2) / p.sum() - (np.sum(p * x) / p.sum()) ** 2)


def test_sgd_block_gives_the_isotropic_variance(tmp_path):
    """Var = η/(2B) = 0.00625 (THEORY §7); the ±10σ grid and the exact discrete OU state give ~1e-9."""
    ds = compute(loads_scenario(BASE, "opt.yaml", tmp_path / "o.nc"))
    assert _variance(ds) == pytest.approx(0.05 / 8, rel=1e-6)


def test_a_sweep_over_optimizer_keys_gives_each_temperature(tmp_path):
    """Sweeping optimizer.kind: SGD η/(2B), Adam frozen at the minimum η/(2√(BH)), EMA-free Adai = SGD."""
    # lr small enough for Adam's overdamped limit (no warning); freeze_at is a model key that
    # every kind accepts (it matters only for adaptive ones)
    text = BASE.replace("lr: 0.05", "lr: 0.001").replace("  noise:", "  freeze_at: [0.0]\n  noise:")
    text = text.replace("min: -0.8, max: 0.8", "min: -0.12, max: 0.12") + "sweep:\n  optimizer.kind: [sgd, adam, adai]\n"
    path = tmp_path / "opt.yaml"
    path.write_text(text)
    ds = compute_runs(load_runs(path, tmp_path / "o.nc"))
    assert list(ds["kind"].values) == ["sgd", "adam", "adai"]
    assert _variance(ds, kind="sgd") == pytest.approx(0.001 / 8, rel=1e-6)
    assert _variance(ds, kind="adai") == pytest.approx(0.001 / 8, rel=1e-6)
    assert _variance(ds, kind="adam") == pytest.approx(0.001 / (2 * np.sqrt(4 * 2.0)), rel=1e-6)


@pytest.mark.parametrize(
    "edit, where, message",
    [
        (("  batch_size: 4\n", "  batch_size: 4\n  beta1: 1.5\n", "kind: sgd", "kind: momentum"), "opt.yaml:9: optimizer.beta1", "beta1 must lie in [0, 1)"),
        (("  batch_size: 4\n", "  batch_size: 4\n  beta0: 0.1\n"), "opt.yaml:9: optimizer.beta0", "sgd does not take 'beta0'"),
        (("kind: sgd", "kind: lion"), "opt.yaml:6: optimizer.kind", "unknown optimizer kind 'lion'"),
        (("  batch_size: 4\n", "  batch_size: 0\n"), "opt.yaml:8: optimizer.batch_size", "batch_size"),
        (("lr: 0.05", "lr: -0.05"), "opt.yaml:7: optimizer.lr", "greater than 0"),
        (("{kind: hessian, delta: 1.0e-9}", "{kind: white, delta: 1.0}"), "opt.yaml:9: optimizer.noise", "white noise does not take delta"),
        (("optimizer:", "model: {temperature: 0.1}\noptimizer:"), "opt.yaml", "exactly one of 'model' or 'optimizer'"),
    ],
)
def test_bad_optimizer_blocks_are_located(edit, where, message, tmp_path):
    text = BASE
    for old, new in zip(edit[::2], edit[1::2]):
        text = text.replace(old, new)
    with pytest.raises(ScenarioError) as info:
        loads_scenario(text, "opt.yaml", tmp_path / "o.nc")
    assert where in str(info.value) and message in str(info.value), str(info.value)


def test_adam_outside_the_bounded_update_region_warns_from_a_scenario(tmp_path):
    text = BASE.replace("kind: sgd", "kind: adam").replace("lr: 0.05", "lr: 0.0001")
    text = text.replace("  batch_size: 4\n", "  batch_size: 4\n  beta1: 0.95\n  beta2: 0.9\n")
    with pytest.warns(FPSolverWarning, match=r"beta1\*\*2 < beta2"):
        loads_scenario(text, "opt.yaml", tmp_path / "o.nc")


def test_momentum_far_from_its_overdamped_limit_warns(tmp_path):
    """PyTorch momentum, β₁ = 0.9: 4η|H|/(1−β₁)² = 4·0.05·2/0.01 = 40 at the minimum."""
    text = BASE.replace("kind: sgd", "kind: momentum")
    with pytest.warns(FPSolverWarning, match="reaches 40"):
        loads_scenario(text, "opt.yaml", tmp_path / "o.nc")


def test_bundled_optimizer_comparison_orders_the_escape_times(tmp_path):
    """The bundled comparison: Adam (colder in the sharp minimum, T ∝ √H) escapes far later than SGD;
    Adai in 1-D is SGD in the overdamped limit (identical numbers)."""
    path = Path(__file__).parents[1] / "scenarios" / "optimizers_double_well.yaml"
    ds = compute_runs(load_runs(path, tmp_path / "o.nc"))
    tau = ds["mfpt_at_start"]
    assert float(tau.sel(kind="sgd")) == float(tau.sel(kind="adai"))
    assert float(tau.sel(kind="adam")) > 1e3 * float(tau.sel(kind="sgd"))
