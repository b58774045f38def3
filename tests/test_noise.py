"""Gradient-noise models: per-sample covariances against exact matrices."""

from __future__ import annotations

import numpy as np
import pytest

import fpsolver as fp
from fpsolver.errors import InputError
from fpsolver.fields import MatrixField
from fpsolver.noise import NOISES, CovarianceNoise, HessianNoise, WhiteNoise, field_spec


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
