"""Gradient-noise models: per-sample covariances against exact matrices."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import fpsolver as fp
from fpsolver.errors import InputError
from fpsolver.fields import MatrixField
from fpsolver.noise import NOISES, CovarianceNoise, EmpiricalNoise, HessianNoise, WhiteNoise, field_spec
from fpsolver.optimizers import SGD


def test_white_noise_is_sigma_squared_over_batch():
    land = fp.Landscape.quadratic([1.0, 3.0])
    pts = {"x": np.linspace(-1, 1, 5), "y": np.zeros(5)}
    c = WhiteNoise(0.5).covariance(land, pts, batch_size=4)
    assert c.shape == (2, 2, 5)
    np.testing.assert_allclose(c[:, :, 2], 0.25 / 4 * np.eye(2), rtol=0, atol=1e-15)


def test_hessian_noise_takes_the_matrix_absolute_value():
    """A saddle rotated by 30 degrees: eigenvalues (2, -0.5); |H| = V diag(2, 0.5) V^T exactly."""
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    v = np.array([[c, -s], [s, c]])
    h = v @ np.diag([2.0, -0.5]) @ v.T
    land = fp.Landscape.quadratic(h)
    noise = HessianNoise(delta=0.1)
    assert not noise.is_diagonal(land)
    got = noise.per_sample(land, {"x": np.array([0.3]), "y": np.array([-1.0])})[:, :, 0]
    exact = v @ np.diag([2.1, 0.6]) @ v.T
    np.testing.assert_allclose(got, exact, rtol=1e-12)


def test_hessian_noise_of_a_separable_landscape_is_diagonal_and_positive_at_inflections():
    land = fp.Landscape.double_well()  # L'' = 3x^2 - 1 vanishes at x = 1/sqrt(3)
    noise = HessianNoise(delta=1e-3)
    assert noise.is_diagonal(land)
    x = np.array([0.0, 1 / np.sqrt(3), 1.0])
    np.testing.assert_allclose(noise.per_sample(land, {"x": x})[0, 0], [1.001, 1e-3, 2.001], rtol=1e-9)


def test_covariance_noise_evaluates_its_expressions():
    land = fp.Landscape.from_expression("x**2 + y**2")
    noise = CovarianceNoise([["1 + x**2", "0.1"], ["0.1", "2"]])
    got = noise.covariance(land, {"x": np.array([2.0]), "y": np.array([0.0])}, batch_size=2)[:, :, 0]
    np.testing.assert_allclose(got, [[2.5, 0.05], [0.05, 1.0]])
    assert CovarianceNoise(["1", "x**2 + 1"]).is_diagonal(land)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: WhiteNoise(0.0), "sigma"),
        (lambda: HessianNoise(delta=0), "delta"),
        (lambda: HessianNoise(delta=-1), "delta"),
        (lambda: CovarianceNoise([["1", "x"], ["0", "1"]]), "symmetric"),
        (lambda: CovarianceNoise([["1", "2"]]), "square"),
    ],
)
def test_bad_noise_parameters_raise_input_error(make, message):
    with pytest.raises(InputError, match=message):
        make()


def test_covariance_noise_of_the_wrong_size_or_names_is_refused():
    land = fp.Landscape.from_expression("x**2")
    with pytest.raises(InputError, match="2x2"):
        CovarianceNoise([["1", "0"], ["0", "1"]]).covariance(land, {"x": np.zeros(1)})
    with pytest.raises(InputError, match="not landscape variables"):
        CovarianceNoise(["1 + z"]).covariance(land, {"x": np.zeros(1)})
    with pytest.raises(InputError, match="batch_size"):
        WhiteNoise(1.0).covariance(land, {"x": np.zeros(1)}, batch_size=0)


def test_field_spec_refuses_a_reordered_grid():
    """Entries are indexed by the landscape's variable order; a grid in another order would permute them."""
    land = fp.Landscape.quadratic([1.0, 3.0])
    spec = field_spec(lambda p: HessianNoise().per_sample(land, p), land.variables, diagonal=True)
    field = MatrixField(spec, ("x", "y"), "diffusion")
    np.testing.assert_allclose(field({"x": np.zeros(1), "y": np.zeros(1)})[:, :, 0], np.diag([1.001, 3.001]))
    with pytest.raises(InputError, match="in this order"):
        MatrixField(spec, ("y", "x"), "diffusion")({"y": np.zeros(1), "x": np.zeros(1)})


def test_registry_names():
    assert NOISES["white"] is WhiteNoise and NOISES["hessian"] is HessianNoise and NOISES["covariance"] is CovarianceNoise


# Empirical noise from a per-sample loss and data ---------------------------------------------
DATA = Path(__file__).parents[1] / "scenarios" / "data" / "logistic.csv"
LOGISTIC = "log(1 + exp(-y*(w*x + b)))"


def test_shipped_data_is_what_its_script_makes():
    spec = importlib.util.spec_from_file_location("make_logistic", DATA.with_name("make_logistic.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    np.testing.assert_array_equal(np.loadtxt(DATA, delimiter=",", skiprows=1), module.make())


def test_empirical_noise_of_a_logistic_regression_matches_hand_derived_gradients():
    """∇ℓ = −y σ(−y(wx + b))·(x, 1) per row; Σ = mean ∇ℓ∇ℓᵀ − ∇L∇Lᵀ. Round-off only (1e-13)."""
    noise = EmpiricalNoise(LOGISTIC, DATA, ["w", "b"])
    x, y = np.loadtxt(DATA, delimiter=",", skiprows=1).T
    pts = {"w": np.array([0.5, 2.0]), "b": np.array([0.1, -0.4])}
    sigma = noise.covariance(noise.landscape, pts, batch_size=4)
    for k in range(2):
        w, b = pts["w"][k], pts["b"][k]
        s = 1 / (1 + np.exp(y * (w * x + b)))
        g = np.stack([-y * x * s, -y * s])
        exact = (g @ g.T / len(x) - np.outer(g.mean(axis=1), g.mean(axis=1))) / 4
        np.testing.assert_allclose(sigma[:, :, k], exact, rtol=0, atol=1e-13)
        assert float(noise.landscape.value(w=np.array([w]), b=np.array([b]))[0]) == pytest.approx(np.mean(np.log1p(np.exp(-y * (w * x + b)))), rel=1e-13)
        np.testing.assert_allclose(noise.landscape.gradient(w=np.array([w]), b=np.array([b]))[:, 0], g.mean(axis=1), rtol=1e-12)


def test_empirical_noise_reads_npz_and_gives_an_sgd_model(tmp_path):
    """A 1-parameter least-squares loss ℓ = (w x − y)²/2: the SGD model's stationary mean is the least-squares w*."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=30)
    y = 0.7 * x + 0.1 * rng.normal(size=30)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    noise = EmpiricalNoise("(w*x - y)**2/2", tmp_path / "d.npz", ["w"])
    w_star = np.sum(x * y) / np.sum(x * x)
    model = SGD(0.01, 2).model(noise.landscape, noise)
    grid = fp.Grid.uniform(w=(w_star - 0.5, w_star + 0.5, 400))
    p = fp.FokkerPlanck(model, grid).stationary().values
    w = grid.coords["w"]
    # the mean sits within the (small) stationary spread of w*: sd ~ sqrt(eta Sigma/(2 B H)) ~ 0.005
    assert np.sum(p * w) / np.sum(p) == pytest.approx(w_star, abs=2e-3)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"x": [1.0, 2.0]}, r"not parameters \['w', 'b'\] nor columns"),
        ({"x": [1.0, np.nan], "y": [1.0, -1.0]}, "NaN"),
        ({"x": [1.0, 2.0], "y": [1.0]}, "one length"),
        ("nowhere.csv", "does not exist"),
    ],
)
def test_bad_data_raises_input_error(data, message):
    with pytest.raises(InputError, match=message):
        EmpiricalNoise(LOGISTIC, data, ["w", "b"])


def test_bad_data_files(tmp_path):
    (tmp_path / "d.txt").write_text("x,y\n1,2\n")
    with pytest.raises(InputError, match="csv"):
        EmpiricalNoise(LOGISTIC, tmp_path / "d.txt", ["w", "b"])
    (tmp_path / "d.csv").write_text("x,z\n1,2\n3,4\n")
    with pytest.raises(InputError, match=r"\['y'\]"):
        EmpiricalNoise(LOGISTIC, tmp_path / "d.csv", ["w", "b"])


@pytest.mark.parametrize(
    "noise, landscape",
    [
        (HessianNoise(0.3), fp.Landscape.styblinski_tang()),
        (HessianNoise(0.3), fp.Landscape.quadratic([[2.0, 0.5], [0.5, 1.0]])),
        (WhiteNoise(0.7), fp.Landscape.styblinski_tang()),
    ],
    ids=["hessian-separable", "hessian-full", "white"],
)
def test_variances_are_the_covariance_diagonal(noise, landscape):
    """The simulator's shortcut (only the diagonal Hessian entries when Σ is diagonal) gives the
    diagonal of C = Σ/B exactly: the same operations on the same numbers."""
    x, y = np.meshgrid(np.linspace(-4, 4, 7), np.linspace(-3, 3, 5), indexing="ij")
    points = {"x": x, "y": y}
    full = noise.covariance(landscape, points, 3)
    np.testing.assert_array_equal(noise.variances(landscape, points, 3), np.stack([full[0, 0], full[1, 1]]))
