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


def test_mfpt_field_keeps_its_digits_where_a_direct_solve_loses_them():
    """Barrier/T = 40 in 2-D (times ~1e17, where a direct LU returns garbage): the MFPT field from
    every cell equals the 1-D chain's exact log-space value on the same x-grid (the problem is
    separable and the target is an x-face), to round-off."""
    grid = fp.Grid.uniform(x=(-2.5, 0.5, 200), y=(-1.0, 1.0, 10))
    land = fp.Landscape.from_expression("x**4/4 - x**2/2 + y**2")
    problem = fp.FokkerPlanck(fp.Overdamped(land, temperature=0.25 / 40), grid, boundary={"x": ("reflecting", "absorbing")})
    tau = problem.mfpt().values
    line = fp.FokkerPlanck(
        fp.Overdamped(fp.Landscape.from_expression("x**4/4 - x**2/2"), temperature=0.25 / 40),
        fp.Grid.uniform(x=(-2.5, 0.5, 200)),
        boundary={"x": ("reflecting", "absorbing")},
    )
    exact = line.mfpt().values
    assert exact.max() > 1e16
    np.testing.assert_allclose(tau, np.repeat(exact[:, None], 10, axis=1), rtol=1e-11)


def test_committor_of_the_symmetric_double_well():
    """Forward committor q(x) = int_a^x e^{L/T} / int_a^b e^{L/T} between the wells (D constant);
    1/2 at the barrier top, second order in the grid."""
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
        exact = tail / tail[-1]
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


def _double_well(ratio, n=2000, lo=-2.0, hi=2.0):
    grid = fp.Grid.uniform(x=(lo, hi, n))
    return fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression("x**4/4 - x**2/2"), temperature=0.25 / ratio), grid)


def test_escape_rate_methods_agree():
    """Barrier/T = 10, start at a cell centre: mfpt and flux are the same chain quantity (Hill);
    the committor rate differs by the in-basin relaxation (measured 2e-5) and the survival
    decay rate by the quasi-stationary correction (4e-5)."""
    problem = _double_well(10)
    x0 = problem.grid.coords["x"][problem.grid.locate([-1.0])[0]]
    ds = problem.escape_rate([x0], target="x >= 1")
    rate = dict(zip(ds["estimator"].values, ds["escape_rate"].values))
    assert rate["flux"] == pytest.approx(rate["mfpt"], rel=1e-10)
    assert rate["committor"] == pytest.approx(rate["mfpt"], rel=1e-4)
    assert rate["eigen"] == pytest.approx(rate["mfpt"], rel=1e-4)
    assert float(ds["barrier"]) == pytest.approx(0.25)
    assert float(ds["minimum"][0]) == pytest.approx(-1.0) and float(ds["saddle"][0]) == pytest.approx(0.0, abs=1e-12)
    assert float(ds["hessian_minimum"][0]) == pytest.approx(2.0) and float(ds["hessian_saddle"][0]) == pytest.approx(-1.0)
    for name in ("escape_rate", "kramers_rate", "barrier"):
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"]


def test_tiny_rates_keep_their_digits_and_lossy_methods_say_so():
    """Barrier/T = 70 (rate ~1e-31): mfpt (exact chain) and committor (potential theory) agree to
    round-off; the direct flux solve and the shift-invert eigenvalue have no digits left and say so."""
    problem = _double_well(70)
    with pytest.warns(FPSolverWarning, match="no trustworthy digits"):
        ds = problem.escape_rate([-1.0], target="x >= 1")
    rate = dict(zip(ds["estimator"].values, ds["escape_rate"].values))
    assert rate["committor"] == pytest.approx(rate["mfpt"], rel=1e-10)
    assert 1e-32 < rate["mfpt"] < 1e-30
    assert np.isnan(rate["flux"]) and np.isnan(rate["eigen"]) and np.isnan(float(ds["steady_population"]))


def test_ratio_to_kramers_tends_to_one_like_t_over_barrier():
    """rate / Kramers = 1 - c T/dL + ...: (1 - ratio) dL/T settles near a constant (measured 0.48 -> 0.37)."""
    scaled = []
    for ratio in (10, 20, 40):
        ds = _double_well(ratio).escape_rate([-1.0], target="x >= 1", methods=("mfpt",))
        scaled.append((1 - float(ds["escape_rate"][0]) / float(ds["kramers_rate"])) * ratio)
    assert all(0.3 < s < 0.5 for s in scaled), scaled
    assert abs(scaled[2] - scaled[1]) < abs(scaled[1] - scaled[0])  # converging


def test_eyring_kramers_in_2d():
    """Coupled 2-D double well (x^2-1)^2 + y^2 + 0.4xy: committor rate / Eyring-Kramers = 1 - c T/dL
    with c ~ 0.4 (measured 0.42, 0.39, 0.34 at barrier/T = 10, 20, 40 on 400 x 240 cells)."""
    land = fp.Landscape.from_expression("(x**2 - 1)**2 + y**2 + 0.4*x*y")
    grid = fp.Grid.uniform(x=(-2.0, 2.0, 400), y=(-1.5, 1.5, 240))
    for ratio in (10, 40):
        problem = fp.FokkerPlanck(fp.Overdamped(land, temperature=1.0 / ratio), grid)
        ds = problem.escape_rate([-1.0, 0.15], target="x >= 1", methods=("committor",))
        scaled = (1 - float(ds["escape_rate"][0]) / float(ds["kramers_rate"])) * float(ds["barrier"]) * ratio
        assert 0.25 < scaled < 0.5, (ratio, scaled)


def test_separable_2d_mfpt_at_barrier_70_matches_the_quadrature():
    """x^4/4 - x^2/2 + y^2 with target x >= 0.5 (absorbing face): in 2-D both the committor rate and
    problem.mfpt match the 1-D log-domain quadrature (MFPT ~ 1e31) to 1e-4 (the grid's error,
    2.3e-5 at 3000 cells); the in-basin difference is ~e^-70."""
    temperature = 0.25 / 70
    grid = fp.Grid.uniform(x=(-2.5, 0.5, 3000), y=(-0.4, 0.4, 16))
    land = fp.Landscape.from_expression("x**4/4 - x**2/2 + y**2")
    problem = fp.FokkerPlanck(fp.Overdamped(land, temperature=temperature), grid, boundary={"x": ("reflecting", "absorbing")})
    ds = problem.escape_rate([-1.0, 0.0], methods=("committor",))
    reference = th.log_mfpt_1d(lambda x: -(x**3 - x), lambda x: temperature + 0 * x, -2.5, 0.5, -1.0)
    assert abs(-np.log(float(ds["escape_rate"][0])) - reference) < 1e-4
    # problem.mfpt itself switches to potential theory where the direct solve would lose digits
    assert abs(np.log(problem.mfpt(start=[-1.0, 0.0])) - reference) < 1e-4


def test_lambda1_is_twice_the_escape_rate_asymptotically():
    """Symmetric double well on a reflecting domain: lambda_1 = k_LR + k_RL = 2k, with k = 1/MFPT
    to the other well's bottom; the ratio tends to 1 as the barrier grows."""
    misfit = []
    for ratio in (5, 10, 15):
        problem = _double_well(ratio)
        lam = float(problem.spectrum(k=2)["rate"][1])
        misfit.append(abs(lam * problem.mfpt(start=[-1.0], target="x >= 1") / 2 - 1))
    assert misfit[0] > misfit[1] > misfit[2] and misfit[2] < 2e-3, misfit


def test_escape_rate_errors():
    grid = fp.Grid.uniform(x=(-2.0, 2.0, 200))
    bowl = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.quadratic(1.0), temperature=0.1), grid)
    with pytest.warns(FPSolverWarning, match="theory columns are NaN"):
        ds = bowl.escape_rate([0.0], target="x >= 1", methods=("mfpt", "flux"))
    assert np.isnan(float(ds["kramers_rate"])) and np.isnan(float(ds["barrier"]))
    assert ds["escape_rate"].sel(estimator="mfpt") == pytest.approx(float(ds["escape_rate"].sel(estimator="flux")), rel=0.05)
    problem = _double_well(10, n=200)
    with pytest.raises(InputError, match="unknown escape-rate method"):
        problem.escape_rate([-1.0], target="x >= 1", methods=("magic",))
    with pytest.raises(InputError, match="inside the target"):
        problem.escape_rate([1.5], target="x >= 1")


def test_flux_over_a_dividing_surface_during_an_evolution():
    """Symmetric well, barrier/T = 5, density started in the left well: the current through the
    saddle plane over the left population plateaus at k = lambda_1 / 2 (measured within 1.1 %);
    and the population changes by minus the time integral of the current."""
    grid = fp.Grid.uniform(x=(-2.0, 2.0, 800))
    problem = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression("x**4/4 - x**2/2"), temperature=0.05), grid)
    p0 = fp.gaussian(grid, [-1.0], [0.1])
    ds = problem.evolve(p0, t_end=40.0, dt=0.01, save_every=0.5, surface="auto")
    assert ds.attrs["surface"].startswith("x = ") and abs(float(ds.attrs["surface"][4:])) < 0.01
    lam = float(problem.spectrum(k=2)["rate"][1])
    assert float(ds["rate_plateau"]) == pytest.approx(lam / 2, rel=0.02)
    t, flux, n = ds["time"].values, ds["flux"].values, ds["population"].values
    transported = np.concatenate([[0.0], np.cumsum(0.5 * (flux[1:] + flux[:-1]) * np.diff(t))])
    np.testing.assert_allclose(n[0] - n, transported, atol=2e-3 * n[0])  # trapezoid on 0.5-spaced samples
    with pytest.raises(InputError, match="outside the grid"):
        problem.evolve(p0, t_end=1.0, dt=0.1, surface={"x": 3.0})


def test_forward_committor_keeps_relative_precision_when_tiny():
    """Barrier/T = 70: inside the start well q ~ e^-70; solved directly (not as 1 - h) it matches
    the closed form int_a^x e^{L/T} / int_a^b e^{L/T} in log space (grid error only)."""
    temperature = 0.25 / 70
    grid = fp.Grid.uniform(x=(-2.0, 2.0, 4000))
    problem = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression("x**4/4 - x**2/2"), temperature=temperature), grid)
    q = problem.committor(start="x <= -1.2", target="x >= 1")
    x = grid.coords["x"]
    a, b = x[x <= -1.2].max(), x[x >= 1].min()
    fine = np.linspace(a, b, 400001)
    log_w = (fine**4 / 4 - fine**2 / 2) / temperature
    log_cum = np.logaddexp.accumulate(np.concatenate([[-np.inf], np.logaddexp(log_w[1:], log_w[:-1]) + np.log(0.5 * np.diff(fine))]))
    probe = x[np.argmin(np.abs(x + 1.0))]
    exact = np.interp(probe, fine, log_cum) - log_cum[-1]
    assert exact < -50  # q ~ e^-59 here
    assert abs(np.log(float(q.sel(x=probe))) - exact) < 1e-3


def test_escape_rate_outputs_committor_and_reactive_current():
    land = fp.Landscape.from_expression("(x**2 - 1)**2 + y**2 + 0.4*x*y")
    grid = fp.Grid.uniform(x=(-2.0, 2.0, 100), y=(-1.5, 1.5, 60))
    problem = fp.FokkerPlanck(fp.Overdamped(land, temperature=0.1), grid)
    ds = problem.escape_rate([-1.0, 0.15], target="x >= 1", methods=("committor",))
    assert ds["committor"].dims == ("x", "y") and ds["reactive_current"].dims == ("component", "x", "y")
    assert float(ds["committor"].interp(x=0.0, y=0.0)) == pytest.approx(0.5, abs=1e-3)  # symmetric saddle
    assert float(ds["reactive_current"].sel({"component": "x"}).interp(x=0.0).min()) >= 0  # start -> target


@pytest.mark.parametrize("reversible", [True, False], ids=["detailed-balance", "no-detailed-balance"])
def test_transition_path_theory_with_and_without_detailed_balance(reversible):
    """x-diffusion that depends on y breaks detailed balance (detected); then the backward
    committor is not 1 - forward (they differ by 0.1 here), yet the net reactive current stays
    conserved: its flux out of the start set equals its flux into the target to round-off."""
    from fpsolver import rates

    land = fp.Landscape.from_expression("(x**2 - 1)**2 + y**2")
    grid = fp.Grid.uniform(x=(-2.0, 2.0, 80), y=(-1.5, 1.5, 50))
    diffusion = 0.15 if reversible else ["0.15*(1 + 0.8*y**2)", "0.15"]
    problem = fp.FokkerPlanck(fp.Overdamped(land, diffusion=diffusion), grid)
    assert (problem.chain.log_pi is not None) == reversible
    forward = problem.committor("x <= -1", "x >= 1").values
    backward = problem.committor("x <= -1", "x >= 1", direction="backward").values
    gap = np.abs(backward - (1 - forward)).max()
    assert gap < 1e-12 if reversible else gap > 0.05
    log_pi = problem.log_stationary_masses()
    _, out_of_start, into_target = rates.reactive_current(problem.chain, log_pi, forward.ravel(), backward.ravel())
    assert out_of_start > 0 and into_target == pytest.approx(out_of_start, rel=1e-10)
    ds = problem.reactive_current("x <= -1", "x >= 1")
    assert ds["reactive_current"].dims == ("component", "x", "y") and float(ds["reaction_rate"]) == pytest.approx(out_of_start)
