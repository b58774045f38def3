"""Data-driven landscapes: a per-sample loss averaged over the rows of a data set.

The landscape is checked against the explicit mean written out by hand, its derivatives against
findiff stencils of its values (independent of the symbolic route), and the scenario path
(``landscape: {kind: data}`` with ``noise: {kind: empirical}``) against the linear-noise
(Lyapunov) stationary covariance of SGD.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg as sla
from findiff import Diff

import fpsolver as fp
from fpsolver.errors import InputError, ScenarioError
from fpsolver.noise import EmpiricalNoise
from fpsolver.optimizers import AdamW, SGD
from fpsolver.runner import compute
from fpsolver.scenario import loads_scenario

DATA = Path(__file__).parents[1] / "scenarios" / "data" / "logistic.csv"
LOSS = "log(1 + exp(-y*(w*x + b)))"


def _rows():
    table = np.genfromtxt(DATA, delimiter=",", names=True)
    return table["x"], table["y"]


def test_the_landscape_is_the_row_mean_of_the_loss_with_exact_derivatives():
    x, y = _rows()
    land = EmpiricalNoise(LOSS, DATA, ["w", "b"]).landscape
    w, b = np.meshgrid(np.linspace(0.5, 3.0, 101), np.linspace(-0.5, 2.0, 101), indexing="ij")
    by_hand = np.mean(np.log1p(np.exp(-y * (w[..., None] * x + b[..., None]))), axis=-1)
    np.testing.assert_allclose(land.value(w, b), by_hand, rtol=1e-13)
    # Independent derivatives: 6th-order stencils of the values at h = 0.025 (measured truncation
    # error <= 1e-9, largest at the one-sided boundary stencils).
    hw, hb = w[1, 0] - w[0, 0], b[0, 1] - b[0, 0]
    grad, hess = land.gradient(w, b), land.hessian(w, b)
    np.testing.assert_allclose(grad[0], Diff(0, hw, acc=6)(by_hand), atol=1e-8)
    np.testing.assert_allclose(grad[1], Diff(1, hb, acc=6)(by_hand), atol=1e-8)
    np.testing.assert_allclose(hess[0, 1], (Diff(0, hw, acc=6) * Diff(1, hb, acc=6))(by_hand), atol=1e-8)


def test_chunked_row_means_do_not_depend_on_the_chunk(monkeypatch):
    land = EmpiricalNoise(LOSS, DATA, ["w", "b"]).landscape
    w, b = np.linspace(0, 3, 7), np.linspace(-1, 2, 7)
    whole = land.hessian(w, b)
    monkeypatch.setattr(fp.Landscape, "CHUNK", 10)  # 10 points x 1 row per block: 100 blocks
    np.testing.assert_allclose(EmpiricalNoise(LOSS, DATA, ["w", "b"]).landscape.hessian(w, b), whole, rtol=1e-14)


def test_sharpness_and_weight_decay_act_on_the_per_sample_loss():
    land = fp.Landscape(fp.Landscape.from_expression("(w*x - y)**2/2", ["w", "x", "y"]).expr, ["w"], data={"x": [1.0, 2.0], "y": [0.0, 1.0]})
    # L(w) = ((w)^2 + (2w - 1)^2)/4: L'' = 5/2; sharpened by k: 5k/2; plus lambda/2 w^2: + lambda.
    assert land.hessian(np.array(0.3))[0, 0] == pytest.approx(2.5, rel=1e-14)
    assert land.with_sharpness(4.0).hessian(np.array(0.3))[0, 0] == pytest.approx(10.0, rel=1e-14)
    decayed = AdamW(0.01, 1, weight_decay=0.0).training_landscape(land)
    assert decayed.value(np.array(0.5)) == pytest.approx(land.value(np.array(0.5)))
    sgd_decay = SGD(0.01, 1).training_landscape(land.plus(0.1 * fp.Landscape.from_expression("w**2/2", ["w"]).expr, "decayed"))
    assert sgd_decay.hessian(np.array(0.0))[0, 0] == pytest.approx(2.6, rel=1e-14)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"x": [1.0, np.nan], "y": [1.0, -1.0]}, "contain NaN"),
        ({"x": [1.0, 2.0], "y": [1.0]}, "one length"),
        ({"x": [], "y": []}, "no rows"),
        ({"w": [1.0], "y": [1.0]}, "names of landscape variables"),
    ],
)
def test_bad_data_columns_are_refused(data, message):
    expr = fp.Landscape.from_expression("(w*x - y)**2", ["w", "x", "y"]).expr
    with pytest.raises(InputError, match=message):
        fp.Landscape(expr, ["w"], data=data)


SCENARIO = """name: logistic
landscape:
  kind: data
  loss: {loss}
  data: {data}
  variables: [w, b]
grid:
  w: {{min: 0.8, max: 2.8, n: 100}}
  b: {{min: -0.2, max: 1.8, n: 100}}
optimizer:
  kind: sgd
  lr: 0.5
  batch_size: 16
  noise: {noise}
tasks:
  stationary: true
"""


def _scenario(tmp_path, loss=LOSS, data=None, noise="{kind: empirical}"):
    return SCENARIO.format(loss=loss, data=data or DATA, noise=noise), str(tmp_path / "s.yaml")


def test_sgd_with_empirical_noise_has_the_lyapunov_covariance(tmp_path):
    """Near its minimum SGD is an OU process with H C + C H = (lr/B) Sigma (Sigma: per-sample noise at
    the minimum); the anharmonic correction is O(lr/B) relative (measured 1.1 % at B = 16, 2.2 % at B = 8),
    so 2 % bounds it here; the h = 0.02 grid error is 1e-4 relative."""
    text, source = _scenario(tmp_path)
    loaded = loads_scenario(text, source, output=tmp_path / "o.nc")
    ds = compute(loaded)
    p = ds["p_stationary"].values
    w, b = np.meshgrid(ds["w"].values, ds["b"].values, indexing="ij")
    mass = p * 0.02**2
    mean = np.array([(mass * w).sum(), (mass * b).sum()])
    d = np.stack([w - mean[0], b - mean[1]])
    cov = np.einsum("ikl,jkl,kl->ij", d, d, mass)
    noise = EmpiricalNoise(LOSS, DATA, ["w", "b"])
    at = [np.array(1.78188827), np.array(0.77269475)]  # the minimum (scipy.optimize, |grad| < 1e-8)
    h, sigma = noise.landscape.hessian(*at), noise.per_sample(noise.landscape, {"w": at[0], "b": at[1]})
    lyapunov = sla.solve_continuous_lyapunov(-h, -(0.5 / 16) * sigma)
    np.testing.assert_allclose(cov, lyapunov, rtol=0.02, atol=2e-4 * np.abs(lyapunov).max())


@pytest.mark.parametrize(
    "edit, where, message",
    [
        ({"loss": "log(1 + exp(-z*(w*x + b)))"}, ":4: landscape.loss:", "'z'"),
        ({"loss": "log(1 + exp(-y*(w*x + "}, ":4: landscape.loss:", "syntax"),
        ({"data": "missing.csv"}, ":5: landscape.data:", "does not exist"),
        ({"noise": "{kind: empirical, delta: 1.0}"}, "optimizer.noise", "does not take delta"),
    ],
)
def test_bad_data_scenarios_are_located(edit, where, message, tmp_path):
    text, source = _scenario(tmp_path, **edit)
    with pytest.raises(ScenarioError) as err:
        loads_scenario(text, source)
    assert where in str(err.value) and message in str(err.value)


def test_a_data_file_with_nans_is_refused_at_its_key(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1.0,1\nnan,-1\n")
    text, source = _scenario(tmp_path, data=bad)
    with pytest.raises(ScenarioError, match=r":5: landscape\.data: .*NaN"):
        loads_scenario(text, source)


def test_empirical_noise_needs_a_data_landscape(tmp_path):
    text = SCENARIO.replace("landscape:\n  kind: data\n  loss: {loss}\n  data: {data}\n  variables: [w, b]", 'landscape: {{expression: "w**2 + b**2"}}')
    with pytest.raises(ScenarioError, match=r"optimizer\.noise.*needs a data landscape"):
        loads_scenario(text.format(noise="{kind: empirical}"), str(tmp_path / "s.yaml"))
