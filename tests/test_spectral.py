"""Stationary states and spectra, against exact results and an independent high-order discretisation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.sparse as sps
from findiff import coefficients

import fpsolver as fp
from fpsolver.errors import InputError
from fpsolver.linalg import SOLVERS, factorize
from fpsolver.spectral import DENSE_LIMIT

from .conftest import slope


def double_well_problem(n, temperature=0.05, lo=-2.5, hi=2.5):
    grid = fp.Grid.uniform(x=(lo, hi, n))
    model = fp.Overdamped(fp.Landscape.from_expression("x**4/4 - x**2/2"), temperature=temperature)
    return fp.FokkerPlanck(model, grid)


def schroedinger_rates(temperature, n=6000, lo=-2.5, hi=2.5, k=3):
    """Independent reference: the symmetrised operator -T d2/dx2 + V, V = L'^2/(4T) - L''/2,
    discretised with findiff's 6th-order central stencil (Dirichlet far away), banded eigen-solve."""
    x = np.linspace(lo, hi, n + 2)[1:-1]
    h = x[1] - x[0]
    lp, lpp = x**3 - x, 3 * x**2 - 1
    potential = lp**2 / (4 * temperature) - lpp / 2
    stencil = coefficients(deriv=2, acc=6)["center"]["coefficients"]
    bands = np.zeros((4, n))  # upper form for eig_banded: row 3 = diagonal
    for offset in range(4):
        bands[3 - offset, offset:] = -temperature * stencil[3 + offset] / h**2
    bands[3] += potential
    return sla.eig_banded(bands, select="i", select_range=(0, k - 1), eigvals_only=True)


def test_ou_rates_are_the_integers_at_second_order():
    """OU (L = x^2/2, T = 1): exact rates n. The scheme's error follows -n(n+1) h^2 / 12 + O(h^4),
    checked to O(h^2) in the constant (a sharper statement than any fixed tolerance)."""
    errors, ns = [], [200, 400, 800]
    modes = np.arange(4)
    for n in ns:
        h = 16.0 / n
        grid = fp.Grid.uniform(x=(-8.0, 8.0, n))
        problem = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.quadratic(1.0), temperature=1.0), grid)
        rates = problem.spectrum(k=4)["rate"].values
        errors.append(np.abs(rates - modes).max())
        # next term is O(h^4), i.e. O(h^2) in this ratio (measured ~0.23 h^2 for mode 3)
        np.testing.assert_allclose((rates - modes)[1:] / h**2, -modes[1:] * (modes[1:] + 1) / 12, atol=0.5 * h**2)
    assert 1.9 < slope([1 / n for n in ns], errors) < 2.1


def test_double_well_rate_matches_an_independent_high_order_reference():
    reference = schroedinger_rates(0.05)
    assert abs(reference[0]) < 1e-9  # the ground state of the symmetrised operator has energy 0
    ns = [500, 1000, 2000, 4000]
    errors = []
    for n in ns:
        rate = double_well_problem(n).spectrum(k=3)["rate"].values
        errors.append(abs(rate[1] / reference[1] - 1))
    assert 1.8 < slope([1 / n for n in ns], errors) < 2.2, errors
    assert errors[ns.index(2000)] < 1e-4  # the target: lambda_1 converged to 1e-4 relative
    rate = double_well_problem(2000).spectrum(k=3)["rate"].values
    assert rate[2] == pytest.approx(reference[2], rel=1e-4)


def test_sparse_and_dense_eigen_solves_agree():
    n = DENSE_LIMIT + 200
    problem = double_well_problem(n)
    sparse = problem.spectrum(k=3)["rate"].values
    dense = np.sort(-np.linalg.eigvals(problem.operator.toarray()).real)[:3]
    # The dense reference itself is good to about eps * ||L||_2 = 1.3e-12 absolute (||L||_2 = 6.1e3),
    # i.e. 5e-10 relative at lambda_1 = 2.8e-3; measured 1.3e-9 with single-threaded BLAS.
    np.testing.assert_allclose(sparse[1:], dense[1:], rtol=5e-9)
    assert abs(sparse[0]) < 1e-9 * sparse[1]


def test_spectrum_dataset_layout():
    ds = double_well_problem(300).spectrum(k=3)
    assert ds["rate"].dims == ("mode",) and ds["eigenfunction"].dims == ("mode", "x")
    assert np.all(np.diff(ds["rate"].values) > 0)
    grid = fp.Grid.uniform(x=(-2.5, 2.5, 300))
    assert grid.integrate(ds["eigenfunction"].isel(mode=0).values) == pytest.approx(1.0)
    # mode 1 is odd for the symmetric well: its mass vanishes
    assert abs(grid.integrate(ds["eigenfunction"].isel(mode=1).values)) < 1e-8
    for name in ("rate", "eigenfunction"):
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"]


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_stationary_is_normalised_gibbs(ndim):
    axes = dict(list({"x": (-2.5, 2.5, 40), "y": (-2.0, 2.0, 30), "z": (-2.0, 2.0, 20)}.items())[:ndim])
    grid = fp.Grid.uniform(**axes)
    text = " + ".join(["(x**2 - 1)**2", "y**2", "0.5*z**2"][:ndim])
    land = fp.Landscape.from_expression(text, grid.names)
    ps = fp.FokkerPlanck(fp.Overdamped(land, temperature=0.2), grid).stationary()
    mesh = dict(zip(grid.names, grid.mesh()))
    gibbs = np.broadcast_to(np.exp(-land(**{v: mesh[v] for v in land.variables}) / 0.2), grid.shape)
    gibbs = gibbs / grid.integrate(gibbs)
    assert ps.dims == grid.names
    assert grid.integrate(ps.values) == pytest.approx(1.0, abs=1e-13)
    assert np.abs(ps.values - gibbs).max() / gibbs.max() < 1e-11


def test_stationary_at_large_barrier_stays_finite():
    """Barrier/T = 250: the density spans e^{-250}; anchoring at the minimum keeps the solve in range."""
    problem = double_well_problem(800, temperature=0.001)
    ps = problem.stationary().values
    assert np.all(np.isfinite(ps)) and ps.min() >= 0
    x = problem.grid.coords["x"]
    assert abs(x[np.argmax(ps)]) == pytest.approx(1.0, abs=0.01)


def test_stationary_with_absorbing_boundary_is_an_error():
    grid = fp.Grid.uniform(x=(-2.0, 2.0, 50))
    problem = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.quadratic(1.0), temperature=1.0), grid, boundary="absorbing")
    with pytest.raises(InputError, match="absorbing"):
        problem.stationary()
    rates = problem.spectrum(k=2)["rate"].values  # the slowest decay mode exists instead
    assert rates[0] > 0


def test_tilted_ring_has_a_uniform_steady_state_and_the_exact_complex_spectrum():
    """Constant force F = 0.7 on a ring of length 1 (L = -F x, D = 1): the steady state is uniform
    and the slowest modes are lambda = -(2 pi)^2 D +- 2 pi i F (drifting Fourier modes)."""
    grid = fp.Grid.uniform(x=(0.0, 1.0, 400))
    model = fp.Overdamped(fp.Landscape.from_expression("-0.7*x"), temperature=1.0)
    problem = fp.FokkerPlanck(model, grid, boundary="periodic")
    np.testing.assert_allclose(problem.stationary().values, 1.0, rtol=1e-12)
    spec = problem.spectrum(k=3)
    # second-order discretisation error at h = 1/400: ~ (2 pi h)^2 / 12 relative
    np.testing.assert_allclose(spec["rate"].values[1:], (2 * np.pi) ** 2, rtol=5e-5)
    np.testing.assert_allclose(np.sort(np.abs(spec["frequency"].values[1:])), 2 * np.pi * 0.7, rtol=5e-5)


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_registered_solvers_agree(solver):
    problem = double_well_problem(400, temperature=0.2)
    system = sps.identity(400, format="csc") - 0.1 * problem.operator
    b = np.linspace(0.0, 1.0, 400)
    x = factorize(system, solver).solve(b)
    np.testing.assert_allclose(system @ x, b, atol=1e-10)


def test_bad_spectrum_requests():
    problem = double_well_problem(50)
    with pytest.raises(InputError, match="positive integer"):
        problem.spectrum(k=0)
    with pytest.raises(InputError, match="only 50 cells"):
        problem.spectrum(k=51)


def _covariance(problem):
    ps = problem.stationary().values
    grid = problem.grid
    coords = [np.broadcast_to(c, grid.shape) for c in grid.mesh()]
    w = ps * grid.cell_volumes
    mean = [float((w * c).sum()) for c in coords]
    return np.array([[float((w * (a - ma) * (b - mb)).sum()) for b, mb in zip(coords, mean)] for a, ma in zip(coords, mean)])


def test_sgd_on_a_quadratic_has_isotropic_stationary_covariance():
    """THEORY.md §7: SGD on L = θᵀHθ/2 with D = (η/2B) H (full, non-diagonal, not of the
    Einstein form): the stationary covariance is (η/2B) I for any H. Exercises the cross stencil.
    The error is second order: measured 2.3 h^2 (relative) on the off-diagonal."""
    h = np.array([[3.0, 1.2], [1.2, 1.0]])
    c = 0.05  # η / 2B
    errors = []
    for n in (75, 150):
        grid = fp.Grid.uniform(x=(-1.5, 1.5, n), y=(-1.5, 1.5, n))
        model = fp.Overdamped(fp.Landscape.quadratic(h.tolist()), diffusion=(c * h).tolist())
        errors.append(np.abs(_covariance(fp.FokkerPlanck(model, grid)) - c * np.eye(2)).max() / c)
    assert 1.9 < np.log2(errors[0] / errors[1]) < 2.1, errors
    assert errors[1] < 3.0 * (3.0 / 150) ** 2


def test_adam_with_frozen_preconditioner_has_the_predicted_variances():
    """THEORY.md §7: mobility P = (H/B)^{-1/2}, D = P (η/2B) H P = η/2: Var θ_i = η / (2 sqrt(B H_i))."""
    eta, batch, hess = 0.02, 4.0, np.array([4.0, 0.25])
    precond = np.sqrt(batch / hess)
    grid = fp.Grid.uniform(x=(-0.3, 0.3, 120), y=(-0.6, 0.6, 120))
    model = fp.Overdamped(fp.Landscape.quadratic(hess.tolist()), mobility=precond.tolist(), diffusion=[eta / 2, eta / 2])
    cov = _covariance(fp.FokkerPlanck(model, grid))
    np.testing.assert_allclose(np.diag(cov), eta / (2 * np.sqrt(batch * hess)), rtol=2e-3)
    assert abs(cov[0, 1]) < 1e-6 * cov[0, 0]
