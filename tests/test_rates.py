"""Mean first-passage times, committors and flux-over-population on the discrete operator,
against the independent log-domain quadrature and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

import fpsolver as fp
from fpsolver import theory as th
from fpsolver.errors import FPSolverWarning, InputError

from .conftest import slope
from .test_theory import B, C, D0, X0, exact_state_dependent_mfpt

QUARTIC = ("x**4/4 - x**2/2", lambda x: x**3 - x, 0.25, (-2.5, 0.5), -1.0)
CUBIC = ("3*x**2 - 2*x**3", lambda x: 6 * x - 6 * x**2, 1.0, (-1.5, 1.3), 0.0)


def _mfpt_error(case, ratio, n):
    text, grad, barrier, (lo, hi), start = case
    temperature = barrier / ratio
    grid = fp.Grid.uniform(x=(lo, hi, n))
    model = fp.Overdamped(fp.Landscape.from_expression(text), temperature=temperature)
    problem = fp.FokkerPlanck(model, grid, boundary={"x": ("reflecting", "absorbing")})
    reference = th.log_mfpt_1d(lambda x: -grad(x), lambda x: temperature + 0 * x, lo, hi, start)
    return abs(np.log(problem.mfpt(start=[start])) - reference)  # = relative error to first order


@pytest.mark.parametrize("case", [QUARTIC, CUBIC], ids=["quartic", "cubic"])
@pytest.mark.parametrize("ratio", [5, 10, 20, 40])
def test_discrete_mfpt_converges_to_the_quadrature_at_second_order(case, ratio):
    ns = [750, 1500, 3000, 6000]
    errors = [_mfpt_error(case, ratio, n) for n in ns]
    assert 1.9 < slope([1 / n for n in ns], errors) < 2.1, errors
    assert errors[-1] < 1e-5


def test_mfpt_of_order_1e31_keeps_its_digits():
    """Barrier/T = 70: MFPT ~ e^71.5 ~ 1e31, where a direct LU solve returns garbage (THEORY.md §6)."""
    assert _mfpt_error(QUARTIC, 70, 3000) < 1e-4


@pytest.mark.parametrize("convention", ["ito", "stratonovich", "isothermal"])
def test_state_dependent_diffusion_mfpt_per_convention(convention):
    """Zero drift, D = D0 (1 + c x^2): discrete MFPT -> the closed form of each convention at second order,
    and the three conventions differ from one another by far more than the discretisation error."""
    errors = []
    for n in (200, 400, 800):
        grid = fp.Grid.uniform(x=(0.0, B, n))
        model = fp.Overdamped(fp.Landscape.from_expression("0*x"), diffusion=f"{D0}*(1 + {C}*x**2)", convention=convention)
        problem = fp.FokkerPlanck(model, grid, boundary={"x": ("reflecting", "absorbing")})
        errors.append(abs(problem.mfpt(start=[X0]) / exact_state_dependent_mfpt(convention) - 1))
    assert 1.9 < slope([1, 0.5, 0.25], errors) < 2.1, errors
    values = sorted(exact_state_dependent_mfpt(c) for c in ("ito", "stratonovich", "isothermal"))
    assert min(np.diff(values)) / values[-1] > 100 * errors[-1]


def test_sgd_like_noise_mfpt_per_convention():
    """D = eta/(2B) (|L''| + delta) on the quartic well (THEORY.md §2's regularised SGD noise): the
    discrete MFPT matches the quadrature in every convention, and the conventions differ.

    |L''| has kinks at ±1/sqrt(3) that the grid does not align with, so the scheme is first order
    there: the measured error is 0.17 h at 4000-8000 cells (sign set by where the kink falls in its
    cell). The reference quadrature splits at the kinks and is good to 1e-12."""
    noise = "0.02*(abs(3*x**2 - 1) + 0.1)"
    kinks = [-1 / np.sqrt(3), 1 / np.sqrt(3)]

    def diffusion(x):
        return 0.02 * (np.abs(3 * x**2 - 1) + 0.1)

    n = 4000
    h = 2.5 / n
    logs = {}
    for convention in ("ito", "stratonovich", "isothermal"):
        grid = fp.Grid.uniform(x=(-2.0, 0.5, n))
        model = fp.Overdamped(fp.Landscape.from_expression("x**4/4 - x**2/2"), diffusion=noise, convention=convention)
        problem = fp.FokkerPlanck(model, grid, boundary={"x": ("reflecting", "absorbing")})
        reference = th.log_mfpt_1d(lambda x: -(x**3 - x), diffusion, -2.0, 0.5, -1.0, convention=convention, breakpoints=kinks)
        logs[convention] = np.log(problem.mfpt(start=[-1.0]))
        assert abs(logs[convention] - reference) < 0.5 * h, convention
    spread = np.diff(sorted(logs.values()))
    assert spread.min() > 100 * 0.5 * h  # the prefactors differ by far more than the error


def test_hill_relation_holds_to_round_off():
    """Steady population for a unit source at x0 equals the MFPT from x0 (same discrete chain)."""
    grid = fp.Grid.uniform(x=(-2.5, 2.5, 1000))
    problem = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression("x**4/4 - x**2/2"), temperature=0.05), grid)
    cell = grid.locate([-1.0])[0]
    x0 = grid.coords["x"][cell]
    population = float(problem.flux_over_population([x0], target="x >= 1")["population"])
    assert population == pytest.approx(problem.mfpt(start=[x0], target="x >= 1"), rel=1e-10)


def test_mfpt_field_and_2d_direct_solve():
    """A separable 2-D landscape with the target a plane x >= b has the 1-D MFPT in every row."""
    grid2 = fp.Grid.uniform(x=(-2.5, 0.5, 300), y=(-2.0, 2.0, 40))
    land2 = fp.Landscape.from_expression("x**4/4 - x**2/2 + y**2")
    p2 = fp.FokkerPlanck(fp.Overdamped(land2, temperature=0.05), grid2, boundary={"x": ("reflecting", "absorbing")})
    tau2 = p2.mfpt()
    assert tau2.dims == ("x", "y") and tau2.attrs["units"]
    grid1 = fp.Grid.uniform(x=(-2.5, 0.5, 300))
    p1 = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression("x**4/4 - x**2/2"), temperature=0.05), grid1, boundary={"x": ("reflecting", "absorbing")})
    tau1 = p1.mfpt().values
    np.testing.assert_allclose(tau2.values, np.repeat(tau1[:, None], 40, axis=1), rtol=1e-9)


def test_direct_solve_warns_when_it_loses_digits():
    grid = fp.Grid.uniform(x=(-2.5, 0.5, 200), y=(-1.0, 1.0, 10))
    land = fp.Landscape.from_expression("x**4/4 - x**2/2 + y**2")
    problem = fp.FokkerPlanck(fp.Overdamped(land, temperature=0.25 / 40), grid, boundary={"x": ("reflecting", "absorbing")})
    with pytest.warns(FPSolverWarning, match="loses digits"):
        problem.mfpt()


def test_committor_of_the_symmetric_double_well():
    """q(x) = int_x^b e^{L/T} / int_a^b e^{L/T} between the wells (D constant); 1/2 at the barrier top."""
    temperature = 0.1
    errors = []
    for n in (500, 1000, 2000):
        grid = fp.Grid.uniform(x=(-2.0, 2.0, n))
        problem = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression("x**4/4 - x**2/2"), temperature=temperature), grid)
        h = problem.committor(start="x <= -1", target="x >= 1")
        assert float(h.interp(x=0.0)) == pytest.approx(0.5, abs=1e-12)
        x = grid.coords["x"]
        # The discrete boundary sits at the last start cell and the first target cell.
        a, b = x[x <= -1].max(), x[x >= 1].min()
        fine = np.linspace(a, b, 200001)
        weight = np.exp((fine**4 / 4 - fine**2 / 2) / temperature)
        tail = np.concatenate([[0.0], np.cumsum(0.5 * (weight[1:] + weight[:-1]) * np.diff(fine))])
        exact = 1 - tail / tail[-1]
        inside = (x > a) & (x < b)
        errors.append(np.abs(h.values[inside] - np.interp(x[inside], fine, exact)).max())
    assert 1.8 < slope([4 / 500, 4 / 1000, 4 / 2000], errors) < 2.2, errors


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(target="x >= 5"), "contains no cell"),
        (dict(target="x >= -5"), "whole grid"),
        (dict(start=[1.5], target="x >= 1"), "inside the target"),
        (dict(), "no target"),
        (dict(start=[9.0], target="x >= 1"), "outside"),
        (dict(target="x >> 1"), "not allowed"),
    ],
)
def test_bad_targets(kwargs, message):
    grid = fp.Grid.uniform(x=(-2.0, 2.0, 100))
    problem = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression("x**4/4 - x**2/2"), temperature=0.1), grid)
    with pytest.raises(InputError, match=message):
        problem.mfpt(**kwargs)
