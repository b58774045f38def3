"""Landscapes: values and exact derivatives, checked against independent finite differences (findiff)."""

from __future__ import annotations

import numpy as np
import pytest
from findiff import Diff

import fpsolver as fp
from fpsolver.errors import InputError
from fpsolver.landscapes import library

LANDSCAPES = {
    "expression": lambda: fp.Landscape.from_expression("x**4/4 - x**2/2 + 0.3*x*y + cos(y)"),
    "quadratic": lambda: fp.Landscape.quadratic([[2.0, 0.5], [0.5, 1.0]], center=[0.1, -0.2]),
    "styblinski_tang": lambda: fp.Landscape.styblinski_tang(("x", "y")),
    "sharp": lambda: fp.Landscape.styblinski_tang(("x", "y")).with_sharpness(3.0),
}


@pytest.mark.parametrize("name", sorted(LANDSCAPES))
def test_gradient_and_hessian_match_finite_differences(name):
    land = LANDSCAPES[name]()
    n = 201
    x = np.linspace(-1.5, 1.5, n)
    h = x[1] - x[0]
    X, Y = np.meshgrid(x, x, indexing="ij")
    value = land(X, Y)
    grad = land.gradient(X, Y)
    hess = land.hessian(X, Y)
    for i in range(2):
        d = Diff(i, h, acc=6)
        np.testing.assert_allclose(d(value)[5:-5, 5:-5], grad[i][5:-5, 5:-5], atol=1e-7 * np.abs(value).max())
        for j in range(2):
            dd = Diff(j, h, acc=6)
            np.testing.assert_allclose(dd(grad[i])[5:-5, 5:-5], hess[i, j][5:-5, 5:-5], atol=1e-7 * np.abs(hess).max())


def test_library_shapes_and_known_values():
    dw = fp.Landscape.double_well()  # x^4/4 - x^2/2 + 1/4
    assert dw(np.array(1.0)) == 0.0 and dw(np.array(0.0)) == pytest.approx(0.25)
    cw = fp.Landscape.cubic_well(height=2.0, width=0.5)
    assert cw(np.array(0.5)) == pytest.approx(2.0)
    assert cw.hessian(np.array(0.0))[0, 0] == pytest.approx(6 * 2.0 / 0.25)
    assert cw.hessian(np.array(0.5))[0, 0] == pytest.approx(-6 * 2.0 / 0.25)
    st = fp.Landscape.styblinski_tang(("x",))
    assert st(np.array(-2.903534)) == pytest.approx(-39.16617 / 1, rel=1e-6)
    k = 4.0
    sharp = fp.Landscape.double_well().with_sharpness(k)
    assert sharp.hessian(np.array(1 / np.sqrt(k)))[0, 0] == pytest.approx(k * 2.0)
    assert sharp(np.array(0.0)) == pytest.approx(0.25) and sharp(np.array(1 / np.sqrt(k))) == pytest.approx(0.0, abs=1e-15)


def test_library_errors():
    with pytest.raises(InputError, match="unknown landscape kind"):
        library("banana")
    with pytest.raises(InputError, match="positive"):
        fp.Landscape.double_well(height=-1.0)
    with pytest.raises(InputError, match="symmetric"):
        fp.Landscape.quadratic([[1.0, 2.0], [0.0, 1.0]])
