"""Escape rates in phase space (Klein–Kramers) that keep their digits down to rates of 1e-20.

The third-order transport makes the chain non-monotone (negative "rates"), so neither the
subtraction-free trace chain nor a direct solve gives times at high barriers. The times at the
bottoms of the wells come from potential theory with the Maxwell–Boltzmann weights and the
time-reversed chain (:func:`fpsolver.rates.mfpt_log_from_basin`), an identity of linear algebra.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

import fpsolver as fp
from fpsolver import rates

DOUBLE_WELL = fp.Landscape.from_expression("x**4/4 - x**2/2")
BARRIER = 0.25


def _problem(ratio: float, damping: float = 1.0, per_sigma: float = 6.0, x=(-1.6, 0.6), boundary=None) -> fp.FokkerPlanck:
    """L = x^4/4 - x^2/2, M = 1, at barrier / T = ``ratio``; ``per_sigma`` cells per thermal length sqrt(T)."""
    temperature = BARRIER / ratio
    sigma = np.sqrt(temperature)
    nx = int(round((x[1] - x[0]) * per_sigma / sigma))
    grid = fp.Grid.uniform(x=(x[0], x[1], nx), r=(-6.05 * sigma, 6.05 * sigma, int(12 * per_sigma)))
    return fp.FokkerPlanck(fp.Inertial(DOUBLE_WELL, damping=damping, temperature=temperature), grid, boundary=boundary or "reflecting")


def test_the_chain_is_not_monotone():
    # The premise: the third-order transport has negative off-diagonals (else the trace chain would do).
    assert not _problem(10.0, per_sigma=3.0).chain.monotone


@pytest.mark.parametrize("weights", ["maxwell-boltzmann", "hotter", "noisy"])
def test_single_cell_potential_time_is_the_mfpt_for_any_positive_weights(weights):
    # E_a tau_B = sum_y pi_y h*(y) / cap(a, B) is an identity of linear algebra (the reversed
    # chain's Green function is Pi^-1 G^T Pi): it holds for any positive weights pi, also with an
    # absorbing face, where Maxwell-Boltzmann is not stationary. Reference: a dense LU solve at
    # barrier/T = 5, where it keeps ~13 digits (eps * scale * tau ~ 4e-11).
    problem = _problem(5.0, damping=0.5, per_sigma=3.0, x=(-1.6, 0.5), boundary={"x": ("reflecting", "absorbing")})
    chain = problem.chain
    start = problem.cell_index([-1.0, 0.0])
    exact = np.linalg.solve(-chain.qt.toarray(), np.ones(chain.size))[start]
    log_pi = problem.log_weight() + np.log(chain.volumes)
    log_pi = {"maxwell-boltzmann": log_pi, "hotter": log_pi / 1.3, "noisy": log_pi + 0.1 * np.random.default_rng(1).standard_normal(chain.size)}[weights]
    alone = np.zeros(chain.size, bool)
    alone[start] = True
    result = rates.mfpt_log_from_basin(chain, alone, np.zeros(chain.size, bool), log_pi)
    assert np.exp(result.log_time) == pytest.approx(exact, rel=1e-11)
    assert result.error < 1e-10


def test_rate_of_1e_minus_20_keeps_its_digits():
    # barrier/T = 45, gamma = 1: rate 4e-21. A direct solve has no digits (flux, eigen: NaN with a
    # warning); mfpt (from the point) and committor (from the thermal basin) agree to round-off
    # (they differ by the in-basin relaxation, e^-45) and lie 0.5 % below Langer-Kramers, the
    # O(T / barrier) correction (measured: 0.99484, c = 45 (1 - ratio) = 0.232 with 6 cells per
    # thermal length; 5 here).
    problem = _problem(45.0, per_sigma=5.0)
    with pytest.warns(fp.FPSolverWarning, match="no trustworthy digits") as record:
        ds = problem.escape_rate([-1.0, 0.0], target="x >= 0.5", methods=("mfpt", "committor", "eigen"))
    assert {str(w.message).split(":")[0] for w in record} == {"escape rate by 'eigen' (shift-invert)"}
    rate = ds["escape_rate"]
    mfpt, committor = float(rate.sel(estimator="mfpt")), float(rate.sel(estimator="committor"))
    assert np.isnan(float(rate.sel(estimator="eigen")))
    assert mfpt < 1e-20
    assert committor == pytest.approx(mfpt, rel=1e-9)
    assert 0.99 < mfpt / float(ds["theory_kramers_moderate"]) < 0.999


def test_rate_with_an_absorbing_face_keeps_its_digits():
    # The same with the target an absorbing face at x = 0.5 (Maxwell-Boltzmann is then not
    # stationary at the wall; the identity does not need it). Both estimators agree to round-off.
    problem = _problem(45.0, per_sigma=5.0, x=(-1.6, 0.5), boundary={"x": ("reflecting", "absorbing")})
    ds = problem.escape_rate([-1.0, 0.0], methods=("mfpt", "committor"))
    rate = ds["escape_rate"]
    assert float(rate.sel(estimator="mfpt")) == pytest.approx(float(rate.sel(estimator="committor")), rel=1e-9)
    assert 0.99 < float(rate.sel(estimator="mfpt")) / float(ds["theory_kramers_moderate"]) < 0.999


def test_mfpt_field_in_the_well_is_exact_and_nan_only_where_no_digits_exist():
    # barrier/T = 30: the field from every cell. Below half the barrier energy in the well it equals
    # the time from the start to 1e-5 (a direct escape from there has probability ~e^-15); past the barrier,
    # where tau = u + H tau_a cancels (H ~ e^-30 known only absolutely), the cells are NaN with one
    # warning rather than wrong.
    problem = _problem(30.0, per_sigma=4.0)
    with pytest.warns(fp.FPSolverWarning, match="cells have no trustworthy digits"):
        tau = problem.mfpt(target="x >= 0.5")
    at_start = problem.mfpt([-1.0, 0.0], target="x >= 0.5")
    x = np.broadcast_to(problem.grid.mesh()[0], problem.grid.shape)
    r = np.broadcast_to(problem.grid.mesh()[1], problem.grid.shape)
    energy = x**4 / 4 - x**2 / 2 + r**2 / 2 + 0.25  # above the minimum
    well = (x < 0) & (energy < BARRIER / 2)
    np.testing.assert_allclose(tau.values[well], at_start, rtol=1e-5)
    assert np.isnan(tau.values).sum() < 0.2 * tau.size
    assert not np.isnan(tau.values[x < -0.3]).any()  # every cell on the start's side of the barrier has digits


@pytest.mark.slow
def test_rate_over_langer_kramers_tends_to_one_like_t_over_barrier():
    # barrier/T = 10, 20, 30, 45 at gamma = 1 (rates 6e-6 .. 4e-21), 6 cells per thermal length:
    # mfpt / Langer = 1 - c T / barrier with c = 0.251, 0.237, 0.233, 0.232 (measured), smooth, no
    # NaN. With 8 cells per thermal length c changes by < 0.002. The eigen estimator agrees while
    # it has digits (barrier/T <= 20; beyond, NaN with a warning).
    cs = []
    for ratio in (10.0, 20.0, 30.0, 45.0):
        problem = _problem(ratio)
        with pytest.warns(fp.FPSolverWarning) if ratio > 10 else contextlib.nullcontext():
            ds = problem.escape_rate([-1.0, 0.0], target="x >= 0.5", methods=("mfpt", "committor", "eigen"))
        rate = ds["escape_rate"]
        mfpt = float(rate.sel(estimator="mfpt"))
        # mfpt from the minimum and the basin's committor rate differ by the in-basin relaxation (~e^-ratio).
        assert float(rate.sel(estimator="committor")) == pytest.approx(mfpt, rel=10 * np.exp(-ratio) + 1e-9)
        eigen = float(rate.sel(estimator="eigen"))
        if ratio <= 20:
            assert eigen == pytest.approx(mfpt, rel=1e-4)
        else:
            assert np.isnan(eigen)
        cs.append(ratio * (1 - mfpt / float(ds["theory_kramers_moderate"])))
    assert all(0.2 < c < 0.3 for c in cs), cs
    assert np.all(np.abs(np.diff(cs)) < 0.02) and np.all(np.diff(cs) <= 0), cs



COSINE = fp.Landscape.from_expression("-0.25*cos(2*pi*x)")


def _wells(ratio: float) -> fp.FokkerPlanck:
    """-cos(2 pi x)/4 on [-1.5, 1.5]: with the target x >= 1.45, three wells outside the target."""
    temperature = 0.5 / ratio
    sigma = np.sqrt(temperature)
    grid = fp.Grid.uniform(x=(-1.5, 1.5, int(round(3 * 4 / sigma))), r=(-6.05 * sigma, 6.05 * sigma, 48))
    return fp.FokkerPlanck(fp.Inertial(COSINE, damping=0.5, temperature=temperature), grid)


def _centre(problem: fp.FokkerPlanck, x0: float) -> tuple[int, list[float]]:
    """The cell at (x0, 0) and its centre."""
    cell = problem.cell_index([x0, 0.0])
    i, j = np.unravel_index(cell, problem.grid.shape)
    return cell, [problem.grid["x"].centers[i], problem.grid["r"].centers[j]]


@pytest.mark.parametrize("ratio", [4.0, pytest.param(12.0, marks=pytest.mark.slow)])
def test_several_wells_outside_the_target_equal_a_dense_solve(ratio):
    # Three seeds. Each seed's time to reach the target or another seed, and where it arrives,
    # come from potential theory with every other seed absorbing (no metastable well is left in
    # the system), then the trace chain of the seeds by subtraction-free elimination. Against a
    # dense LU solve, which keeps >= 8 digits here (measured differences 4e-13 and 9e-10).
    problem = _wells(ratio)
    chain = problem.chain
    target = problem.target_mask("x >= 1.45")
    assert rates.seed_cells(chain, problem.log_weight(), target).size == 3
    exact = np.zeros(chain.size)
    exact[~target] = np.linalg.solve(-chain.qt.toarray()[~target][:, ~target], np.ones(int((~target).sum())))
    for x0 in (-1.0, 0.0, 1.0):
        cell, point = _centre(problem, x0)
        assert problem.mfpt(point, target="x >= 1.45") == pytest.approx(exact[cell], rel=1e-7)


@pytest.mark.slow
def test_several_wells_at_a_high_barrier_keep_their_digits():
    # barrier/T = 30 (times ~1e14: a direct solve has no digits; a single-cell committor crossing
    # the other wells was ill-conditioned, SuperLU and LAPACK differing by 0.06): finite, silent
    # from the start well, and ordered by the number of barriers still to cross.
    problem = _wells(30.0)
    times = [problem.mfpt([-1.0, 0.0], target="x >= 1.45")]
    with pytest.warns(fp.FPSolverWarning, match="digits are left"):  # off the seed cell: a few digits fewer
        times += [problem.mfpt(_centre(problem, x0)[1], target="x >= 1.45") for x0 in (0.0, 1.0)]
    assert times[0] > 1e14 and times[0] > times[1] > times[2] > 1e13


@pytest.mark.slow
def test_potential_theory_without_digits_falls_back_to_the_direct_solve():
    """Adai's phase-space model with Hessian noise has a temperature that varies along the path: the
    Maxwell-Boltzmann reference is far from stationary and the potential-theory sums lose their sign.
    The MFPT must then come from the direct solve (with its survival-rate error estimate), not raise
    "the target cannot be reached". At this barrier the direct solve has digits: the time agrees with
    that on a velocity axis twice as fine to 1e-3 (the velocity grid error; tau = 148.27 here)."""
    from fpsolver.validation import escape_case

    case = escape_case("adai", 0.04, "inertial")
    tau = float(fp.FokkerPlanck(case.model, case.grid).mfpt(start=case.start + [0.0], target=case.target))
    assert np.isfinite(tau) and tau > 0
    finer = fp.Grid([case.grid[0], fp.Axis.uniform("r", case.grid[1].lo, case.grid[1].hi, 2 * case.grid[1].n)])
    assert tau == pytest.approx(float(fp.FokkerPlanck(case.model, finer).mfpt(start=case.start + [0.0], target=case.target)), rel=1e-3)


# θ-dependent temperature (optimizers with Hessian noise): the local-equilibrium reference.

def _optimizer_problem(kind: str, lr: float, **hyper) -> fp.FokkerPlanck:
    """The flat-minima well at k = 1: L = x^4/4 - x^2/2, C = |L''| + 2, phase space, 480 x 64 cells."""
    from fpsolver.noise import HessianNoise
    from fpsolver.optimizers import OPTIMIZERS

    model = OPTIMIZERS[kind](lr, 1, **hyper).model(DOUBLE_WELL, HessianNoise(delta=2.0), dynamics="inertial")
    return fp.FokkerPlanck(model, model.phase_grid(fp.Grid.uniform(x=(-1.6, 0.8, 480)), cells=64))


def test_local_equilibrium_reference_carries_the_exact_exponent():
    # Its x-marginal is exp(-Phi), Phi = int L'/T: checked against adaptive quadrature of the
    # model's own temperature (an independent integration, told where |L''| has its kinks), and
    # its velocity part is the local Maxwellian. On the 480 cell centres, 8-point Gauss-Legendre
    # per cell is exact to round-off except in the two cells holding a kink of |L''|, where its
    # error is O(h^2) of the jump in the slope's derivative (2e-7 measured, carried on past them).
    from scipy.integrate import quad

    coefficients = _optimizer_problem("momentum", 0.01, form="ema").coefficients
    x = fp.Grid.uniform(x=(-1.6, 0.8, 480))["x"].centers
    r = np.linspace(-2.0, 2.0, x.size)
    log_density = coefficients.log_density_reference({"x": x, "r_x": r})
    at = {"x": x, "r_x": np.zeros_like(x)}
    temperature, mass = coefficients.temperature(at)[0], coefficients.mass(at)[0]

    def slope(s: float) -> float:
        point = {"x": np.array([s]), "r_x": np.zeros(1)}
        return float(coefficients.gradient(point)[0][0] / coefficients.temperature(point)[0][0])

    kinks = [-1 / np.sqrt(3), 1 / np.sqrt(3)]
    steps = [quad(slope, a, b, epsabs=1e-15, epsrel=1e-11, points=[k for k in kinks if a < k < b] or None)[0] for a, b in zip(x[:-1], x[1:])]
    phi = np.concatenate([[0.0], np.cumsum(steps)])
    expected = -phi - 0.5 * np.log(temperature / mass) - 0.5 * mass * r**2 / temperature
    shift = log_density[0] - expected[0]  # the reference is defined up to a constant
    np.testing.assert_allclose(log_density - shift, expected, rtol=0, atol=1e-6)


def test_one_temperature_keeps_the_maxwell_boltzmann_reference():
    problem = _problem(10.0)
    points = {"x": np.array([-1.0, 0.2]), "r": np.array([0.3, -0.7])}
    temperature = BARRIER / 10.0
    expected = -(DOUBLE_WELL.value(x=points["x"]) + 0.5 * points["r"] ** 2) / temperature
    np.testing.assert_allclose(problem.coefficients.log_density_reference(points), expected, rtol=1e-14)


@pytest.mark.slow
def test_momentum_with_hessian_noise_keeps_every_digit_where_the_direct_solve_keeps_four():
    # EMA momentum at lr 0.01 (tau ~ 1.3e9): with the pointwise -(L + M r^2/2)/T(x) reference the
    # potential-theory sums were not positive and the direct solve was the fallback, with ~4
    # digits (estimated error 3e-4). The local equilibrium keeps the potential-theory route:
    # silent, and equal to the direct solve within that solve's own error.
    problem = _optimizer_problem("momentum", 0.01, form="ema")
    with warnings.catch_warnings():
        warnings.simplefilter("error", fp.FPSolverWarning)
        tau = problem.mfpt([-1.0, 0.0], target="x >= 0.5")
    target = problem.target_mask("x >= 0.5")
    direct = rates.backward_mfpt(problem.chain, target)[problem.cell_index([-1.0, 0.0])]
    assert tau == pytest.approx(direct, rel=1e-3)
    assert 1e9 < tau < 2e9


@pytest.mark.slow
def test_adam_with_hessian_noise_at_a_rate_of_1e_minus_15_matches_its_closed_form():
    # Adam (v-hat following theta) at lr 0.01: tau ~ 7e14, where the pointwise reference left no
    # digits (NaN). Against Kramers-Langer with the exact exponent (escape_theory's closed form),
    # whose own error is O(T / barrier) ~ 1 / Delta Phi ~ 3 % here (measured: 0.14 %).
    from fpsolver.comparison import escape_theory

    problem = _optimizer_problem("adam", 0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error", fp.FPSolverWarning)
        tau = problem.mfpt([-1.0, 0.0], target="x >= 0.5")
    theory = float(escape_theory(problem, [-1.0], "x >= 0.5")["theory_escape_time"])
    assert tau == pytest.approx(theory, rel=0.03)
