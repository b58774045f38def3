"""The 4-D phase space (x, y, r_x, r_y): the lean structured assembly and the Kronecker eigen-solver."""

from __future__ import annotations

import numpy as np
import pytest

import fpsolver as fp
from fpsolver.boundary import Boundaries
from tests.kk_face_reference import face_by_face_generator

DOUBLE_WELL = fp.Landscape.from_expression("x**4/4 - x**2/2")


def _both(model: fp.Inertial, axes: dict, boundary="reflecting"):
    problem = fp.FokkerPlanck(model, fp.Grid.uniform(**axes), boundary=boundary, solver="superlu")
    reference = face_by_face_generator(problem.coefficients, problem.grid, problem.boundaries)
    return problem.operator, reference


@pytest.mark.parametrize(
    "model, axes, boundary",
    [
        (fp.Inertial(DOUBLE_WELL, damping=0.3, temperature=0.05), {"x": (-1.9, 1.9, 14), "r": (-1.4, 1.4, 11)}, "reflecting"),
        (fp.Inertial(DOUBLE_WELL, damping=1.0, temperature=0.1), {"x": (-1.9, 1.9, 13), "r": (-2.0, 2.0, 9)}, {"x": "absorbing"}),
        (fp.Inertial(DOUBLE_WELL, damping=1.0, temperature=0.1), {"x": (-1.9, 1.9, 13), "r": (-2.0, 2.0, 9)}, {"x": ("reflecting", "absorbing")}),
        (fp.Inertial(fp.Landscape.from_expression("cos(x)"), damping=0.5, temperature=0.2), {"x": (0.0, 2 * np.pi, 12), "r": (-3.0, 3.0, 10)}, {"x": "periodic"}),
        (fp.Inertial(fp.Landscape.from_expression("cos(x)"), damping=0.5, temperature=0.2), {"x": (0.0, 2 * np.pi, 4), "r": (-3.0, 3.0, 10)}, {"x": "periodic"}),
        (fp.Inertial(DOUBLE_WELL, mass="1 + 0.1*x**2", damping="0.5 + 0.2*x**2", diffusion="0.02 + 0.01*x**2"), {"x": (-1.8, 1.8, 12), "r": (-2.6, 2.6, 12)}, "reflecting"),
        (
            fp.Inertial(fp.Landscape.from_expression("x**4/4 - x**2/2 + y**2 + 0.3*x*y"), mass=(1.0, 2.0), damping=(1.0, 0.5), temperature=0.1),
            {"x": (-1.9, 1.9, 7), "y": (-1.4, 1.4, 6), "u": (-2.0, 2.0, 6), "v": (-1.4, 1.4, 5)},
            {"x": "absorbing"},
        ),
    ],
)
def test_structured_assembly_reproduces_the_face_by_face_generator(model, axes, boundary):
    # Same scheme, different bookkeeping: the matrices agree to round-off (summation order only).
    new, old = _both(model, axes, boundary)
    assert new.shape == old.shape
    assert abs(new - old).max() <= 1e-13 * abs(old).max()
