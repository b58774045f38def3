"""Phase space: the Inertial model and the Klein–Kramers operator."""

from __future__ import annotations

import numpy as np
import pytest

import fpsolver as fp
from fpsolver.models import VELOCITY_WIDTH, InertialCoefficients

DOUBLE_WELL = fp.Landscape.from_expression("x**4/4 - x**2/2")
BOWL_2D = fp.Landscape.from_expression("x**2 + 2*y**2")


# --- the model --------------------------------------------------------------------------------


def test_inertial_binds_positions_then_velocities_and_labels_velocity_axes():
    model = fp.Inertial(BOWL_2D, mass=[1.0, 2.0], damping="1 + x**2", temperature=0.1)
    grid = fp.Grid.uniform(x=(-2, 2, 8), y=(-2, 2, 6), u=(-2, 2, 5), v=(-2, 2, 4))
    coeffs = model.on(grid)
    assert isinstance(coeffs, InertialCoefficients)
    assert [a.kind for a in coeffs.grid] == ["position", "position", "velocity", "velocity"]
    assert coeffs.grid.names == ("x", "y", "u", "v")
    assert coeffs.velocities == ("u", "v")
    points = {"x": np.array([0.0, 1.0]), "y": np.array([0.5, 0.5])}
    np.testing.assert_allclose(coeffs.mass(points), [[1, 1], [2, 2]])
    np.testing.assert_allclose(coeffs.damping(points), [[1, 2], [1, 2]])
    # D = gamma * M * T per direction (fluctuation-dissipation), exactly.
    np.testing.assert_allclose(coeffs.diffusion(points), 0.1 * np.array([[1, 2], [2, 4]]))
    np.testing.assert_allclose(coeffs.gradient(points), [[0, 2], [2, 2]])
    assert coeffs.equilibrium_temperature == 0.1


def test_inertial_with_diffusion_has_local_temperature():
    model = fp.Inertial(DOUBLE_WELL, mass=2.0, damping=0.5, diffusion=0.1)
    coeffs = model.on(fp.Grid.uniform(x=(-2, 2, 10), r=(-2, 2, 10)))
    # T = D / (gamma M) = 0.1 / (0.5 * 2) (THEORY §7's inertial OU numbers).
    assert coeffs.equilibrium_temperature == pytest.approx(0.1, rel=1e-15)
    varying = fp.Inertial(DOUBLE_WELL, mass=1.0, damping=1.0, diffusion="0.1 + x**2").on(
        fp.Grid.uniform(x=(-1, 1, 10), r=(-8, 8, 10))
    )
    assert varying.equilibrium_temperature is None
    np.testing.assert_allclose(varying.temperature({"x": np.array([1.0])}), [[1.1]])


def test_inertial_describe_names_the_kind_and_parameters():
    info = fp.Inertial(DOUBLE_WELL, damping=0.3, temperature=0.05).describe()
    assert info["kind"] == "inertial" and info["damping"] == "0.3" and info["temperature"] == 0.05


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"damping": 1.0, "temperature": 0.0}, "temperature must be a positive number"),
        ({"damping": 1.0, "temperature": -1.0}, "temperature must be a positive number"),
        ({"mass": -1.0, "damping": 1.0, "temperature": 1.0}, "mass must be positive"),
        ({"mass": 0.0, "damping": 1.0, "temperature": 1.0}, "mass must be positive"),
        ({"damping": 0.0, "temperature": 1.0}, "damping must be positive"),
        ({"damping": 1.0, "diffusion": -0.5}, "diffusion must be positive"),
        ({"damping": 1.0}, "exactly one of temperature"),
        ({"damping": 1.0, "temperature": 1.0, "diffusion": 1.0}, "exactly one of temperature"),
        ({"temperature": 1.0}, "needs a damping"),
        ({"damping": [[1.0, 0.0], [0.0, 1.0]], "temperature": 1.0}, "damping must be"),
    ],
)
def test_inertial_rejects_bad_parameters(kwargs, message):
    with pytest.raises(fp.InputError, match=message):
        fp.Inertial(DOUBLE_WELL, **kwargs)


def test_inertial_rejects_field_that_turns_negative_on_the_grid():
    model = fp.Inertial(DOUBLE_WELL, damping="x", temperature=0.1)
    with pytest.raises(fp.InputError, match="damping must be positive definite at some cell"):
        model.on(fp.Grid.uniform(x=(-1, 1, 10), r=(-3, 3, 10)))


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ({"x": (-2, 2, 8)}, "needs 4 grid axes"),
        ({"x": (-2, 2, 8), "y": (-2, 2, 8), "u": (-3, 3, 8)}, "needs 4 grid axes"),
        ({"y": (-2, 2, 8), "x": (-2, 2, 8), "u": (-3, 3, 8), "v": (-3, 3, 8)}, r"must be the landscape variables \['x', 'y'\]"),
        ({"x": (-2, 2, 8), "u": (-3, 3, 8), "y": (-2, 2, 8), "v": (-3, 3, 8)}, "must be the landscape variables"),
    ],
)
def test_inertial_rejects_axes_that_do_not_match(axes, message):
    model = fp.Inertial(BOWL_2D, damping=1.0, temperature=0.1)
    with pytest.raises(fp.InputError, match=message):
        model.on(fp.Grid.uniform(**axes))


def test_inertial_names_the_velocity_width_needed():
    # sqrt(T/M) = sqrt(0.5/2) = 0.5, so the axis must cover +-3 (VELOCITY_WIDTH = 6).
    model = fp.Inertial(DOUBLE_WELL, mass=2.0, damping=1.0, temperature=0.5)
    assert VELOCITY_WIDTH == 6.0
    with pytest.raises(fp.InputError, match=r"velocity axis 'r' spans \[-3, 2.9\] but must cover at least \[-3, 3\]"):
        model.on(fp.Grid.uniform(x=(-2, 2, 8), r=(-3, 2.9, 8)))
    model.on(fp.Grid.uniform(x=(-2, 2, 8), r=(-3, 3, 8)))  # exactly wide enough
