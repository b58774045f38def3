"""Rates you can trust off the happy path (issue #7): starts away from minima, region targets at
tiny rates, the saddle on the lowest path, no barrier, compound regions in 2-D and 3-D, periodic
seams, user-built sympy landscapes, and the estimator dimension.

References are independent of the operators: the log-space double quadrature
:func:`fpsolver.theory.log_mfpt_1d` and transition-path theory by quadrature; and, to show that
the Markov decomposition is an exact identity, the 1-D chain's subtraction-free formula on the
same x-grid (separable problems with x-only targets have MFPTs that do not depend on y)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate as si
import sympy as sp

import fpsolver as fp
from fpsolver import theory as th
from fpsolver.errors import FPSolverWarning

from .conftest import slope

WELL = "(x**2 - 1)**2"


def _two_d(temperature: float, n: int, ny: int = 6) -> fp.FokkerPlanck:
    grid = fp.Grid.uniform(x=(-2.0, 2.0, n), y=(-0.5, 0.5, ny))
    return fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression(f"{WELL} + y**2"), temperature=temperature), grid)


def _one_d(temperature: float, n: int) -> fp.FokkerPlanck:
    grid = fp.Grid.uniform(x=(-2.0, 2.0, n))
    return fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression(WELL), temperature=temperature), grid)


def _quadrature(temperature: float, n: int, x0: float) -> float:
    """log MFPT of the continuous 1-D diffusion, absorbing at the first target cell centre
    (where the discrete chain's Dirichlet condition sits)."""
    centres = fp.Grid.uniform(x=(-2.0, 2.0, n))[0].centers
    edge = centres[centres >= 0.9].min()
    return th.log_mfpt_1d(lambda x: -(4 * x**3 - 4 * x), lambda x: temperature + 0 * x, -2.0, edge, x0)


@pytest.mark.parametrize("ratio", [40, 70])
@pytest.mark.parametrize("x0", [-1.0, -0.3, 0.5025, 0.8], ids=["minimum", "uphill", "target-side", "near-target"])
def test_mfpt_from_any_start_in_2d(ratio, x0):
    """Region target x >= 0.9 at barrier/T = 40 and 70 (times up to 3e30). From the far side of the
    barrier (x0 = 0.5025) the time is a rare excursion (probability ~e^-30) times the basin's
    huge MFPT: 4.7e8 at ratio 40. The decomposition equals the exact 1-D chain to 1e-10 (it is an
    identity), and the quadrature to the grid's second-order error (measured < 1e-3 at h = 2.5e-3)."""
    temperature, n = 1.0 / ratio, 1600
    problem = _two_d(temperature, n)
    tau = problem.mfpt([x0, 0.1], target="x >= 0.9")
    chain = _one_d(temperature, n).mfpt([x0], target="x >= 0.9")
    assert tau == pytest.approx(chain, rel=1e-10)
    assert abs(np.log(tau) - _quadrature(temperature, n, x0)) < 1e-3


def test_target_side_start_converges_at_second_order():
    errors = [abs(np.log(_two_d(1 / 40, n, 4).mfpt([0.5025, 0.0], "x >= 0.9")) - _quadrature(1 / 40, n, 0.5025)) for n in (400, 800, 1600)]
    assert 1.8 < slope([1, 0.5, 0.25], errors) < 2.2, errors


def test_escape_rate_estimators_at_tiny_rates_with_a_region_target():
    """Barrier/T = 70, region target: mfpt from the minimum and the committor (basin) rate agree to
    1e-10 (they differ by e^-70 relative); flux and eigen say they have no digits."""
    problem = _two_d(1 / 70, 800)
    with pytest.warns(FPSolverWarning, match="no trustworthy digits"):
        ds = problem.escape_rate([-1.0, 0.0], target="x >= 0.9")
    rate = ds["escape_rate"]
    assert 1e-31 < float(rate.sel(estimator="mfpt")) < 1e-29
    assert float(rate.sel(estimator="committor")) == pytest.approx(float(rate.sel(estimator="mfpt")), rel=1e-10)
    assert np.isnan(float(rate.sel(estimator="flux"))) and np.isnan(float(rate.sel(estimator="eigen")))
    assert float(ds["barrier"]) == pytest.approx(1.0)


def test_escape_rate_from_the_target_side_is_exact_and_the_basin_rate_refuses():
    problem = _two_d(1 / 40, 800)
    with pytest.warns(FPSolverWarning) as record:
        ds = problem.escape_rate([0.5025, 0.05], target="x >= 0.9", methods=("mfpt", "committor"))
    messages = " ".join(str(w.message) for w in record)
    assert "in no metastable basin" in messages and "theory columns are NaN" in messages
    assert 1.0 / float(ds["escape_rate"].sel(estimator="mfpt")) == pytest.approx(4.727e8, rel=1e-3)
    assert np.isnan(float(ds["escape_rate"].sel(estimator="committor")))
    assert np.isnan(float(ds["kramers_rate"]))


def test_saddle_on_the_lowest_path_of_styblinski_tang():
    """From the global minimum (2.7468, 2.7468) to x <= 0 the lowest path crosses (0.157, 2.747)
    at barrier 25.23; the grid's lowest saddle (0.157, -2.904), barrier 11.09, is on no such path."""
    grid = fp.Grid.uniform(x=(-5.0, 5.0, 120), y=(-5.0, 5.0, 120))
    problem = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.styblinski_tang(), temperature=2.0), grid)
    ds = problem.escape_rate([2.7468, 2.7468], target="x <= 0", methods=("mfpt",))
    np.testing.assert_allclose(ds["minimum"].values, [2.746803, 2.746803], atol=1e-5)
    np.testing.assert_allclose(ds["saddle"].values, [0.156731, 2.746803], atol=1e-5)
    assert float(ds["barrier"]) == pytest.approx(25.2251, abs=1e-3)
    assert (ds["hessian_saddle"].values < 0).sum() == 1


def test_saddle_on_the_targets_edge_still_gives_every_rate():
    """1-D double well, target x >= 0: the saddle is on the target's edge; every estimator runs
    and the theory column is Kramers with the true barrier."""
    problem = _one_d(0.1, 800)
    ds = problem.escape_rate([-1.0], target="x >= 0")
    assert np.all(np.isfinite(ds["escape_rate"].values)) and np.all(ds["escape_rate"].values > 0)
    assert float(ds["saddle"][0]) == pytest.approx(0.0, abs=1e-12) and float(ds["barrier"]) == pytest.approx(1.0)
    assert np.isfinite(float(ds["kramers_rate"]))


@pytest.mark.parametrize(
    "condition, expected",
    [
        ("x >= 1 and y < 0", lambda x, y, z: (x >= 1) & (y < 0)),
        ("x >= 1 or not (y < 0 and z > 0.5)", lambda x, y, z: (x >= 1) | ~((y < 0) & (z > 0.5))),
        ("-1 < y <= 0.5", lambda x, y, z: (-1 < y) & (y <= 0.5) & (x == x)),
        ("x + y > z", lambda x, y, z: x + y > z),
    ],
)
def test_compound_regions_broadcast_in_3d(condition, expected):
    grid = fp.Grid.uniform(x=(-2.0, 2.0, 8), y=(-1.5, 1.5, 6), z=(-1.0, 1.0, 4))
    mesh = np.meshgrid(*(a.centers for a in grid), indexing="ij")
    np.testing.assert_array_equal(fp.regions.region_mask(grid, condition, "target"), expected(*mesh).ravel())


def test_compound_region_target_in_2d():
    """x >= 1 and y < 0: the MFPT is finite and larger than to the whole half-plane x >= 1."""
    problem = _two_d(0.2, 200, 20)
    corner = problem.mfpt([-1.0, 0.0], target="x >= 1 and y < 0")
    half = problem.mfpt([-1.0, 0.0], target="x >= 1")
    assert np.isfinite(corner) and corner > half > 0


def test_transition_path_theory_across_a_periodic_seam():
    """Ring x in [0, 1), 0.3 cos(2 pi x), T = 0.2: A = x <= 0.1, B = 0.5 <= x <= 0.6. Reactive
    trajectories use both arcs, one through the seam: rate = T/Z (1/I_1 + 1/I_2) with
    I = int e^{U/T} over each arc between the regions' outer cell centres. Second order: measured
    3.0e-6 at 800 cells, 7.5e-7 at 1600; out of A equals into B to round-off."""
    temperature = 0.2

    def potential(x):
        return 0.3 * np.cos(2 * np.pi * x)

    errors = []
    for n in (800, 1600):
        grid = fp.Grid.uniform(x=(0.0, 1.0, n))
        ring = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression("0.3*cos(2*pi*x)"), temperature=temperature), grid, boundary="periodic")
        ds = ring.reactive_current("x <= 0.1", "x >= 0.5 and x <= 0.6")
        c = grid[0].centers
        a_first, a_last = c[c <= 0.1].min(), c[c <= 0.1].max()
        b_first, b_last = c[c >= 0.5].min(), c[(c >= 0.5) & (c <= 0.6)].max()

        def integral(f, lo, hi):
            return si.quad(f, lo, hi, epsabs=1e-15, epsrel=1e-13)[0]

        z = integral(lambda x: np.exp(-potential(x) / temperature), 0.0, 1.0)
        arcs = [integral(lambda x: np.exp(potential(x) / temperature), lo, hi) for lo, hi in ((a_last, b_first), (b_last, a_first + 1.0))]
        exact = temperature / z * sum(1.0 / i for i in arcs)
        errors.append(abs(float(ds["reaction_rate"]) / exact - 1))
        assert float(ds["reaction_rate_in"]) == pytest.approx(float(ds["reaction_rate"]), rel=1e-10)
    assert errors[1] < 1e-6 and 3.0 < errors[0] / errors[1] < 5.0, errors


def test_user_built_sympy_landscapes_have_their_derivatives():
    """Plain sympy symbols (no assumptions) and Piecewise: the gradient and Hessian are right, and a
    model given diffusion= (no reference potential) drifts: its stationary mean is off-centre."""
    x = sp.Symbol("x")
    land = fp.Landscape(sp.Piecewise((2 * x**2, x < 0), (x**2, True)), ["x"])
    np.testing.assert_allclose(land.gradient(np.array([1.0, -1.0]))[0], [2.0, -4.0])
    np.testing.assert_allclose(land.hessian(np.array([1.0, -1.0]))[0, 0], [2.0, 4.0])
    y = sp.Symbol("y", positive=True)
    tilted = fp.Landscape((x - 1) ** 2 + y**2, ["x", "y"])
    np.testing.assert_allclose(tilted.gradient(0.0, 1.0), [-2.0, 2.0])
    grid = fp.Grid.uniform(x=(-4.0, 4.0, 400))
    p = fp.FokkerPlanck(fp.Overdamped(fp.Landscape((x - 1) ** 2, ["x"]), diffusion=0.1), grid).stationary()
    assert float((p * p.x).sum() * 8 / 400) == pytest.approx(1.0, abs=1e-6)


def test_estimator_dimension_selects_naturally():
    ds = _one_d(0.1, 400).escape_rate([-1.0], target="x >= 1", methods=("mfpt", "flux"))
    assert ds["escape_rate"].dims == ("estimator",)
    assert float(ds["escape_rate"].sel(estimator="flux")) == pytest.approx(float(ds["escape_rate"][1]))
    assert float(ds["escape_rate"].sel({"method": "flux"})) == float(ds["escape_rate"].sel(estimator="flux"))
    np.testing.assert_allclose(ds["escape_time"].values, 1 / ds["escape_rate"].values)


def test_rates_are_never_negative_or_garbage_at_extreme_barriers():
    """T = 1e-4 on the quartic double well (barrier/T = 2500): nothing fits in float64; every
    estimator is NaN with a warning, none is negative."""
    problem = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression("x**4/4 - x**2/2"), temperature=1e-4), fp.Grid.uniform(x=(-2.0, 2.0, 400)))
    with pytest.warns(FPSolverWarning):
        ds = problem.escape_rate([-1.0], target="x >= 1")
    assert np.all(np.isnan(ds["escape_rate"].values))


@pytest.mark.slow
def test_three_dimensional_region_target_at_barrier_50():
    """3-D separable well (x^2-1)^2 + y^2 + z^2, barrier/T = 50, target x >= 0.9, from the minimum
    and from the target side: equal to the 1-D chain on the same x-grid to 1e-9."""
    temperature, n = 1 / 50, 200
    grid = fp.Grid.uniform(x=(-2.0, 2.0, n), y=(-0.6, 0.6, 8), z=(-0.6, 0.6, 8))
    problem = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression(f"{WELL} + y**2 + z**2"), temperature=temperature), grid)
    line = _one_d(temperature, n)
    for x0 in (-1.0, 0.51):
        assert problem.mfpt([x0, 0.05, -0.05], "x >= 0.9") == pytest.approx(line.mfpt([x0], "x >= 0.9"), rel=1e-9)


@pytest.mark.slow
def test_three_wells_in_two_dimensions_against_the_one_dimensional_chain():
    """A triple well in x (two metastable wells outside the target, so the trace chain has two
    seeds coupled through a barrier) times a harmonic y: exact against the 1-D chain from every
    start, at barrier/T ~ 30-45."""
    expr = "x**6/6 - 1.25*x**4 + 2.25*x**2/2 + 0.2*x"
    temperature, n = 0.04, 900
    grid = fp.Grid.uniform(x=(-2.5, 2.5, n), y=(-0.5, 0.5, 6))
    problem = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression(f"{expr} + y**2"), temperature=temperature), grid)
    line = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression(expr), temperature=temperature), fp.Grid.uniform(x=(-2.5, 2.5, n)))
    tau2 = problem.mfpt(target="x >= 1.4").values
    tau1 = line.mfpt(target="x >= 1.4").values
    assert tau1.max() > 1e12
    np.testing.assert_allclose(tau2, np.repeat(tau1[:, None], 6, axis=1), rtol=1e-9)


def test_optimizer_models_report_times_in_iterations():
    """A model with iteration_time = eta (SGD time t = k eta) also reports escape times in iterations."""
    land = fp.Landscape.from_expression("x**4/4 - x**2/2")
    problem = fp.FokkerPlanck(fp.Overdamped(land, temperature=0.05, iteration_time=0.01), fp.Grid.uniform(x=(-2.0, 2.0, 400)))
    ds = problem.escape_rate([-1.0], target="x >= 1", methods=("mfpt",))
    np.testing.assert_allclose(ds["escape_iterations"].values, ds["escape_time"].values / 0.01, rtol=1e-14)
    assert ds["escape_iterations"].attrs["units"] == "1"
    with pytest.raises(fp.InputError, match="iteration_time"):
        fp.Overdamped(land, temperature=0.05, iteration_time=-1.0)


def test_basin_rate_without_detailed_balance():
    """x-diffusion that depends on y breaks detailed balance: the 'committor' estimator uses the
    backward committor of the time-reversed chain and the reactive flux as capacity
    (Gaudillière-Landim); at barrier/T = 10 it agrees with the exact MFPT from the minimum to the
    in-basin relaxation (measured 4e-4), and the survival rate likewise (1e-4)."""
    land = fp.Landscape.from_expression("(x**2 - 1)**2 + y**2")
    grid = fp.Grid.uniform(x=(-2.0, 2.0, 160), y=(-1.5, 1.5, 80))
    problem = fp.FokkerPlanck(fp.Overdamped(land, diffusion=["0.1*(1 + 0.8*y**2)", "0.1"]), grid)
    assert problem.chain.log_pi is None
    ds = problem.escape_rate([-1.0, 0.0], target="x >= 1", methods=("mfpt", "committor", "eigen"))
    rate = ds["escape_rate"]
    assert float(rate.sel(estimator="committor")) == pytest.approx(float(rate.sel(estimator="mfpt")), rel=1e-3)
    assert float(rate.sel(estimator="eigen")) == pytest.approx(float(rate.sel(estimator="mfpt")), rel=1e-3)
