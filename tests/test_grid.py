"""Grids and boundary specifications."""

from __future__ import annotations

import numpy as np
import pytest

import fpsolver as fp
from fpsolver.boundary import Boundaries
from fpsolver.errors import InputError
from fpsolver.grid import Axis


def test_uniform_axis_geometry():
    ax = Axis.uniform("x", -1.0, 3.0, 8)
    assert ax.n == 8 and ax.is_uniform
    np.testing.assert_allclose(ax.centers, -1.0 + 0.5 * (np.arange(8) + 0.5))
    np.testing.assert_allclose(ax.widths, 0.5)
    with pytest.raises(ValueError):
        ax.centers[0] = 1.0  # immutable


def test_grid_shape_order_volumes_and_integral():
    grid = fp.Grid.uniform(x=(0.0, 1.0, 4), y=(0.0, 2.0, 5), z=(-1.0, 1.0, 3))
    assert grid.names == ("x", "y", "z") and grid.shape == (4, 5, 3) and grid.size == 60
    np.testing.assert_allclose(grid.cell_volumes, 0.25 * 0.4 * (2 / 3))
    assert grid.integrate(np.ones(grid.shape)) == pytest.approx(4.0)
    x, y, z = grid.mesh()
    assert x.shape == (4, 1, 1) and y.shape == (1, 5, 1) and z.shape == (1, 1, 3)


def test_nonuniform_axis_volumes():
    ax = Axis("x", np.array([0.0, 0.1, 0.3, 0.7, 1.5]))
    grid = fp.Grid([ax])
    np.testing.assert_allclose(grid.cell_volumes, [0.1, 0.2, 0.4, 0.8])
    assert not ax.is_uniform


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"x": (0.0, 1.0, 2)}, "at least 3 cells"),
        ({"x": (1.0, 1.0, 10)}, "min must be smaller than max"),
        ({"x": (2.0, 1.0, 10)}, "min must be smaller than max"),
        ({"x": (0.0, np.inf, 10)}, "finite"),
        ({"x": (0.0, 1.0, 10.5)}, "integer"),
        ({"x": (0.0, 1.0)}, "(min, max, n)"),
    ],
)
def test_bad_axes_are_rejected(spec, message):
    with pytest.raises(InputError, match=message):
        fp.Grid.uniform(**spec)


def test_locate_and_errors():
    grid = fp.Grid.uniform(x=(0.0, 1.0, 10), y=(0.0, 1.0, 4))
    assert grid.locate([0.05, 0.99]) == (0, 3)
    assert grid.locate({"x": 1.0, "y": 0.0}) == (9, 0)
    with pytest.raises(InputError, match="outside"):
        grid.locate([1.5, 0.5])
    with pytest.raises(InputError, match="no axis"):
        grid.axis("q")


def test_boundary_resolution():
    grid = fp.Grid.uniform(x=(0, 1, 5), y=(0, 1, 5))
    assert Boundaries.resolve("periodic", grid).sides == (("periodic", "periodic"),) * 2
    b = Boundaries.resolve({"x": ("reflecting", "absorbing")}, grid)
    assert b.sides == (("reflecting", "absorbing"), ("reflecting", "reflecting"))
    assert not b.conserves_mass
    with pytest.raises(InputError, match="both sides"):
        Boundaries.resolve({"x": ("periodic", "reflecting")}, grid)
    with pytest.raises(InputError, match="unknown boundary kind"):
        Boundaries.resolve("sticky", grid)
    with pytest.raises(InputError, match="does not have"):
        Boundaries.resolve({"z": "absorbing"}, grid)
