"""Time stepping against the exact Ornstein–Uhlenbeck solution, with convergence orders in time and space."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as spla

import fpsolver as fp
from fpsolver.errors import InputError, SolverError
from fpsolver.stepping import SCHEMES

from .conftest import slope

M0, S0, T_END = 2.0, 0.3, 1.0


def ou_problem(n, boundary="reflecting"):
    """L = x^2/2, T = 1 (D = 1) on [-8, 8]: the PERFORMANCE.md problem P1."""
    grid = fp.Grid.uniform(x=(-8.0, 8.0, n))
    model = fp.Overdamped(fp.Landscape.quadratic(1.0), temperature=1.0)
    return fp.FokkerPlanck(model, grid, boundary=boundary)


def ou_exact(x, t):
    """Exact OU density from a Gaussian start: mean m0 e^{-t}, variance 1 + (s0^2 - 1) e^{-2t}."""
    mean = M0 * np.exp(-t)
    var = 1.0 + (S0**2 - 1.0) * np.exp(-2 * t)
    return np.exp(-((x - mean) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var)


def _error(problem, scheme, dt):
    p0 = fp.gaussian(problem.grid, mean=[M0], std=[S0])
    p = problem.evolve(p0, t_end=T_END, dt=dt, scheme=scheme)["p"].isel(time=-1).values
    exact = ou_exact(problem.grid.coords["x"], T_END)
    return np.abs(p - exact).max() / exact.max()


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_every_scheme_matches_the_exact_ou_density(scheme):
    # N = 800 and dt = 1e-3: spatial error ~1e-5, temporal error <= ~1e-3 (first order) or ~1e-7.
    tol = 2e-3 if SCHEMES[scheme].order == 1 else 5e-5
    assert _error(ou_problem(800), scheme, 1e-3) < tol


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_temporal_order(scheme):
    """Error against the exact OU Gaussian on a fine grid (spatial error ~4e-6, far below these)."""
    problem = ou_problem(1600)
    dts = [0.1, 0.05, 0.025, 0.0125]
    errors = [_error(problem, scheme, dt) for dt in dts]
    order = slope(dts, errors)
    expected = SCHEMES[scheme].order
    assert expected - 0.2 < order < expected + 0.3, (errors, order)


def test_spatial_order():
    """Semi-discrete solution exp(tL) p0 (no time error) against the exact OU Gaussian: second order."""
    ns = [100, 200, 400, 800]
    errors = []
    for n in ns:
        problem = ou_problem(n)
        p0 = fp.gaussian(problem.grid, mean=[M0], std=[S0]).values
        p = spla.expm_multiply(problem.operator * T_END, p0)
        exact = ou_exact(problem.grid.coords["x"], T_END)
        errors.append(np.abs(p - exact).max() / exact.max())
    order = slope([16.0 / n for n in ns], errors)
    assert 1.9 < order < 2.1, (errors, order)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_mass_is_conserved_to_round_off(scheme, ndim):
    axes = {"x": (-3.0, 3.0, 30), "y": (-3.0, 3.0, 20), "z": (-3.0, 3.0, 10)}
    grid = fp.Grid.uniform(**dict(list(axes.items())[:ndim]))
    land = fp.Landscape.from_expression(" + ".join(f"({v}**2 - 1)**2" for v in grid.names), grid.names)
    problem = fp.FokkerPlanck(fp.Overdamped(land, temperature=0.5), grid)
    p0 = fp.gaussian(grid, mean=[-1.0] * ndim, std=[0.3] * ndim)
    ds = problem.evolve(p0, t_end=2.0, dt=0.05, scheme=scheme, save_every=0.5)
    assert ds.sizes["time"] == 5
    np.testing.assert_allclose(ds["mass"].values, 1.0, atol=1e-12)


def test_backward_euler_keeps_densities_non_negative():
    """The generator is an M-matrix, so (I - dt L)^{-1} >= 0: a point mass stays non-negative at any dt."""
    grid = fp.Grid.uniform(x=(-2.0, 2.0, 200))
    land = fp.Landscape.from_expression("x**4/4 - x**2/2 + 0.2*x")
    problem = fp.FokkerPlanck(fp.Overdamped(land, temperature=0.02), grid)
    p0 = np.zeros(grid.shape)
    p0[30] = 1.0 / grid.cell_volumes[30]
    for dt in (1e-4, 1e-1, 10.0):
        p = problem.evolve(p0, t_end=10 * dt, dt=dt, scheme="euler")["p"].values
        assert p.min() >= 0.0


def test_absorbing_boundary_loses_mass_monotonically():
    problem = ou_problem(400, boundary={"x": ("reflecting", "absorbing")})
    p0 = fp.gaussian(problem.grid, mean=[M0], std=[S0])
    mass = problem.evolve(p0, t_end=2.0, dt=0.01, save_every=0.1)["mass"].values
    assert np.all(np.diff(mass) <= 0) and mass[-1] < mass[0]


def test_one_factorisation_per_system():
    problem = ou_problem(100)
    p0 = fp.gaussian(problem.grid, mean=[M0], std=[S0])
    problem.evolve(p0, t_end=1.0, dt=0.01, scheme="trbdf2")
    assert problem._systems.factorisations == 1  # both TR-BDF2 stages share one matrix
    problem.evolve(p0, t_end=1.0, dt=0.01, scheme="trbdf2")
    assert problem._systems.factorisations == 1  # reused across runs with the same dt


def test_callbacks_can_stop_and_the_output_is_labelled():
    problem = ou_problem(100)
    p0 = fp.gaussian(problem.grid, mean=[M0], std=[S0])
    seen = []

    def stop_at_half(t, p):
        seen.append(t)
        return t >= 0.5

    ds = problem.evolve(p0, t_end=1.0, dt=0.1, callbacks=[stop_at_half])
    assert ds["time"].values[-1] == pytest.approx(0.5) and len(seen) == 5
    assert ds["p"].dims == ("time", "x") and ds["p"].attrs["units"] and ds["time"].attrs["units"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(t_end=1.0, dt=0.3), "whole multiple"),
        (dict(t_end=1.0, dt=0.1, save_every=0.25), "whole multiple"),
        (dict(t_end=1.0, dt=-0.1), "positive"),
        (dict(t_end=1.0, dt=0.1, scheme="rk4"), "unknown time-stepping scheme"),
    ],
)
def test_bad_evolve_arguments(kwargs, message):
    problem = ou_problem(50)
    p0 = fp.gaussian(problem.grid, mean=[M0], std=[S0])
    with pytest.raises(InputError, match=message):
        problem.evolve(p0, **kwargs)


def test_mass_check_catches_a_leaky_operator():
    from fpsolver.stepping import MassCheck

    check = MassCheck(np.ones(3))
    check(0.0, np.array([1.0, 0.0, 0.0]))
    with pytest.raises(SolverError, match="not conserved"):
        check(1.0, np.array([1.0, 1e-6, 0.0]))


def test_initial_density_shape_is_checked():
    problem = ou_problem(50)
    with pytest.raises(InputError, match="shape"):
        problem.evolve(np.ones(49), t_end=1.0, dt=0.1)


def test_progress_bar_runs_and_closes(capsys):
    problem = ou_problem(50)
    p0 = fp.gaussian(problem.grid, mean=[M0], std=[S0])
    ds = problem.evolve(p0, t_end=0.5, dt=0.1, progress=True)
    assert ds.sizes["time"] == 2
    assert "step" in capsys.readouterr().err  # tqdm wrote its bar to stderr
