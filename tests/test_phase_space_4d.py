"""The 4-D phase space (x, y, r_x, r_y): the lean structured assembly and the Kronecker eigen-solver."""

from __future__ import annotations

import numpy as np
import pytest

import fpsolver as fp
from fpsolver import kronecker
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


# --- the Kronecker eigen-solver -----------------------------------------------------------------
AXES_4D = {"x": (-1.9, 1.9, 10), "y": (-1.4, 1.4, 6), "u": (-2.0, 2.0, 8), "v": (-2.0, 2.0, 6)}


def _four_d(expression: str, solver: str = "auto", axes: dict = AXES_4D, **model) -> fp.FokkerPlanck:
    land = fp.Landscape.from_expression(expression)
    return fp.FokkerPlanck(fp.Inertial(land, **{"damping": 1.0, "temperature": 0.1, **model}), fp.Grid.uniform(**axes), solver=solver)


def test_auto_picks_the_kronecker_solver_for_four_dimensional_phase_space():
    assert _four_d("x**4/4 - x**2/2 + y**2").solver == "kronecker"
    two = fp.FokkerPlanck(fp.Inertial(DOUBLE_WELL, damping=1.0, temperature=0.1), fp.Grid.uniform(x=(-1.9, 1.9, 10), u=(-2.0, 2.0, 8)))
    assert two.solver == "superlu"


def test_kronecker_inverse_solves_the_separable_system_exactly():
    # L = x^4/4 - x^2/2 + y^2 separates: the 4-D generator is the Kronecker sum, so the dense
    # eigen-decomposition solve is exact up to round-off amplified by the eigenbasis conditioning
    # (~1e2 here). Measured in the sqrt(w)-scaled coordinates the solver works in (the tails of a raw
    # vector are e^(-E/2T) smaller and carry no digits that matter).
    problem = _four_d("x**4/4 - x**2/2 + y**2", mass=(1.0, 2.0), damping=(1.0, 2.0))
    blocks, exact = kronecker.separable_blocks(problem.coefficients, problem.grid, problem.boundaries)
    assert exact
    inverse = kronecker.KroneckerInverse(blocks)
    inverse.sigma = 0.01
    log_w = problem.coefficients.log_density_reference(dict(zip(problem.grid.names, problem.grid.mesh()))).ravel()
    scale = np.exp(0.5 * (log_w - log_w.max()))
    xi = np.random.default_rng(1).standard_normal(problem.grid.size)
    x = inverse.solve(scale * xi)
    residual = (problem.operator @ x - inverse.sigma * x) / scale - xi
    assert np.linalg.norm(residual) <= 1e-10 * np.linalg.norm(xi)


def test_separable_four_dimensional_lambda1_equals_the_two_dimensional_one():
    # Independent check: the slowest non-zero rate of the Kronecker sum is the (x, u) problem's lambda_1
    # (the y-part relaxes faster), computed by SuperLU shift-invert on the 2-D grid.
    four = _four_d("x**4/4 - x**2/2 + y**2")
    two = fp.FokkerPlanck(fp.Inertial(DOUBLE_WELL, damping=1.0, temperature=0.1), fp.Grid.uniform(x=AXES_4D["x"], u=AXES_4D["u"]))
    modes = kronecker.kronecker_modes_with_info(four.operator, 2, None, (four.coefficients, four.grid, four.boundaries))
    assert modes.exact and modes.steps == 0  # the start vectors are the exact modes
    rates = four.spectrum(k=2)["rate"].values
    assert abs(rates[0]) <= 1e-12
    assert rates[1] == pytest.approx(two.spectrum(k=2)["rate"].values[1], rel=1e-10)


@pytest.mark.parametrize("coupling, max_steps", [(0.1, 150), (0.3, 150)])
def test_coupled_lambda1_matches_superlu_with_bounded_iterations(coupling, max_steps):
    # L = x^4/4 - x^2/2 + y^2 + c x y does not separate: the Kronecker solve of its restriction to the lines
    # through the minimum only preconditions Davidson. Reference: SuperLU shift-invert on the same matrix with
    # shift 1e-4 (its default shift, 1e-9 max|L_ii|, makes L - sigma I so nearly singular that lambda_1 moves by
    # 2.6e-9 here; shifts 1e-4 and 1e-3 agree to 1.5e-11). Measured: 92 steps at c = 0.3, 1.2e-11 from SuperLU.
    axes = {"x": (-1.9, 1.9, 8), "y": (-1.4, 1.4, 6), "u": (-2.0, 2.0, 7), "v": (-2.0, 2.0, 6)}
    problem = _four_d(f"x**4/4 - x**2/2 + y**2 + {coupling}*x*y", axes=axes)
    modes = kronecker.kronecker_modes_with_info(problem.operator, 2, None, (problem.coefficients, problem.grid, problem.boundaries))
    assert not modes.exact and modes.steps <= max_steps
    reference = _four_d(f"x**4/4 - x**2/2 + y**2 + {coupling}*x*y", solver="superlu", axes=axes).spectrum(k=2, shift=1e-4)["rate"].values[1]
    rates = np.sort(-modes.values.real)
    assert abs(rates[0]) <= 1e-12 * abs(problem.operator.diagonal()).max()  # the Maxwell-Boltzmann null mode
    assert rates[1] == pytest.approx(reference, rel=1e-10)


def test_kronecker_solver_refuses_position_dependent_coefficients():
    problem = _four_d("x**4/4 - x**2/2 + y**2", damping="1 + 0.1*x**2", temperature=0.1)
    with pytest.raises(fp.InputError, match="constant damping"):
        problem.spectrum(k=2)


def test_absorbing_separable_problem_has_the_two_dimensional_leak_rate():
    # Absorbing in x, reflecting in y: no null mode to deflate; the slowest 4-D rate is the (x, u) problem's
    # slowest (leak) rate plus the y-part's 0, exactly for the Kronecker sum.
    land = fp.Landscape.from_expression("x**4/4 - x**2/2 + y**2")
    model = fp.Inertial(land, damping=1.0, temperature=0.1)
    four = fp.FokkerPlanck(model, fp.Grid.uniform(**AXES_4D), boundary={"x": "absorbing"})
    two = fp.FokkerPlanck(
        fp.Inertial(DOUBLE_WELL, damping=1.0, temperature=0.1), fp.Grid.uniform(x=AXES_4D["x"], u=AXES_4D["u"]), boundary={"x": "absorbing"}
    )
    assert four.solver == "kronecker"
    assert four.spectrum(k=2)["rate"].values[0] == pytest.approx(two.spectrum(k=2)["rate"].values[0], rel=1e-10)


def test_three_slowest_coupled_modes_match_superlu():
    # spectrum()'s default k = 3: two modes besides the deflated null mode (measured 269 steps, 2e-11 from SuperLU).
    axes = {"x": (-1.9, 1.9, 8), "y": (-1.4, 1.4, 6), "u": (-2.0, 2.0, 7), "v": (-2.0, 2.0, 6)}
    rates = _four_d("x**4/4 - x**2/2 + y**2 + 0.3*x*y", axes=axes).spectrum()["rate"].values
    reference = _four_d("x**4/4 - x**2/2 + y**2 + 0.3*x*y", solver="superlu", axes=axes).spectrum(shift=1e-4)["rate"].values
    assert rates[1:] == pytest.approx(reference[1:], rel=1e-9)
