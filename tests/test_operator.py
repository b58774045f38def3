"""Properties of the overdamped generator: conservation, M-matrix sign pattern, exact Gibbs state,
the stationary densities of the three conventions (second order), and the cross-diffusion stencil."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse.linalg as spla

import fpsolver as fp
from fpsolver.errors import FPSolverWarning, InputError

from .conftest import slope

# The coarse test grids below do not resolve exp(-L/T) far up the walls; the warning is tested on its own.
pytestmark = pytest.mark.filterwarnings("ignore:off-diagonal diffusion on a grid that does not resolve")

# The structural properties below (conservation, the exact Gibbs state, the M-matrix pattern) hold on
# any grid; the full-mobility cases use grids too coarse for the cross-diffusion stencil's stability
# (the operator says so with a warning, tested in test_cross_diffusion_on_an_unresolved_grid_warns).

# 1-D, 2-D and 3-D problems with gradient drift; axes are deliberately of unequal size.
GRIDS = {
    1: dict(x=(-2.5, 2.5, 60)),
    2: dict(x=(-2.5, 2.5, 24), y=(-2.0, 2.0, 17)),
    3: dict(x=(-2.5, 2.5, 12), y=(-2.0, 2.0, 9), z=(-1.5, 1.5, 7)),
}
LANDSCAPES = {
    1: "x**4/4 - x**2/2 + 0.1*x",
    2: "(x**2 - 1)**2 + y**2 + 0.4*x*y",
    3: "(x**2 - 1)**2 + y**2 + 0.4*x*y + 0.5*z**2 - 0.2*y*z",
}
PERIODIC_LANDSCAPES = {
    1: "cos(2*pi*x/5)",
    2: "cos(2*pi*x/5) + sin(2*pi*y/4)**2",
    3: "cos(2*pi*x/5) + sin(2*pi*y/4)**2 + cos(2*pi*z/3)",
}
BOUNDARIES = ["reflecting", "periodic", "absorbing"]


def _problem(ndim, boundary, mobility=1.0, temperature=0.3, **kwargs):
    grid = fp.Grid.uniform(**GRIDS[ndim])
    text = (PERIODIC_LANDSCAPES if boundary == "periodic" else LANDSCAPES)[ndim]
    land = fp.Landscape.from_expression(text, grid.names)
    if "diffusion" in kwargs:
        model = fp.Overdamped(land, mobility=mobility, **kwargs)
    else:
        model = fp.Overdamped(land, temperature, mobility=mobility, **kwargs)
    return fp.FokkerPlanck(model, grid, boundary=boundary)


def _full_mobility(ndim):
    a = np.eye(ndim) + 0.3 * (np.ones((ndim, ndim)) - np.eye(ndim))
    return a.tolist()


def _column_sums(problem):
    """Volume-weighted column sums of L, and the sums of the magnitudes they cancel (per column)."""
    volumes = problem.grid.cell_volumes.ravel()
    return volumes @ problem.operator, volumes @ abs(problem.operator)


MODELS = {
    "scalar": dict(),
    "diagonal": dict(mobility_diag=True),
    "full": dict(mobility_full=True),
    "ito-D(x)": dict(diffusion="0.2*(1 + 0.3*x**2)", convention="ito"),
    "strat-D(x)": dict(diffusion="0.2*(1 + 0.3*x**2)", convention="stratonovich"),
    "iso-D(x)": dict(diffusion="0.2*(1 + 0.3*x**2)", convention="isothermal"),
}


def _model_kwargs(name, ndim):
    kw = dict(MODELS[name])
    if kw.pop("mobility_diag", False):
        kw["mobility"] = [1.0 + 0.5 * i for i in range(ndim)]
    if kw.pop("mobility_full", False):
        kw["mobility"] = _full_mobility(ndim)
    return kw


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("boundary", ["reflecting", "periodic"])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_columns_sum_to_zero(ndim, boundary, model):
    """Probability is conserved to round-off: volume-weighted column sums of L vanish."""
    problem = _problem(ndim, boundary, **_model_kwargs(model, ndim))
    sums, scale = _column_sums(problem)
    assert np.all(np.abs(sums) <= 1e-14 * scale)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_absorbing_faces_only_lose_probability(ndim):
    # T = 2 keeps the outflow resolvable: at T = 0.3 the inward drift near x = -2.3 makes the
    # ghost half-edge exponent ~32 and the (correct) leak ~1e-13, i.e. at round-off level.
    problem = _problem(ndim, "absorbing", temperature=2.0)
    sums, scale = _column_sums(problem)
    grid = problem.grid
    at_edge = np.zeros(grid.shape, bool)
    for axis in range(ndim):
        index = [slice(None)] * ndim
        for end in (0, -1):
            index[axis] = end
            at_edge[tuple(index)] = True
    at_edge = at_edge.ravel()
    assert np.all(sums[at_edge] < -1e-12 * scale[at_edge])  # boundary cells leak (beyond round-off)
    assert np.all(np.abs(sums[~at_edge]) <= 1e-14 * scale[~at_edge])  # interior cells conserve


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("model", ["scalar", "diagonal", "ito-D(x)", "strat-D(x)", "iso-D(x)"])
def test_m_matrix_sign_pattern_for_diagonal_diffusion(ndim, boundary, model):
    """Off-diagonal entries are non-negative (positivity) whenever D is diagonal."""
    op = _problem(ndim, boundary, **_model_kwargs(model, ndim)).operator.tocoo()
    off = op.row != op.col
    assert np.all(op.data[off] >= 0.0)
    assert np.all(op.diagonal() <= 0.0)


def _gibbs_residual(problem):
    """Relative residual |L pi| / (|L| pi) of the sampled Gibbs density pi = exp(-L/T)."""
    grid = problem.grid
    mesh = dict(zip(grid.names, grid.mesh()))
    land = problem.model.landscape
    energy = np.broadcast_to(land(**{v: mesh[v] for v in land.variables}), grid.shape).ravel()
    pi = np.exp(-(energy - energy.min()) / problem.model.temperature)
    op = problem.operator
    return np.abs(op @ pi).max() / np.abs(abs(op) @ pi).max()


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("boundary", ["reflecting", "periodic"])
@pytest.mark.parametrize("mobility", ["scalar", "diagonal", "full"])
def test_gibbs_density_is_an_exact_discrete_steady_state(ndim, boundary, mobility):
    kw = _model_kwargs(mobility, ndim)
    problem = _problem(ndim, boundary, temperature=0.25, **kw)
    assert _gibbs_residual(problem) < 1e-13


@pytest.mark.parametrize("ndim", [1, 2])
def test_gibbs_exact_for_state_dependent_mobility_isothermal(ndim):
    """D = T A(theta) in the isothermal convention has the Gibbs state for any A(theta) (THEORY.md §2)."""
    mobility = "1 + 0.5*x**2" if ndim == 1 else [["1 + 0.5*x**2", "0.2"], ["0.2", "1.5 + 0.1*y**2"]]
    problem = _problem(ndim, "reflecting", mobility=mobility, temperature=0.2, convention="isothermal")
    assert _gibbs_residual(problem) < 1e-13
    # The Ito convention of the same model is *not* Gibbs: the spurious drift changes the state.
    ito = _problem(ndim, "reflecting", mobility=mobility, temperature=0.2, convention="ito")
    assert _gibbs_residual(ito) > 1e-4


def _convention_error(n, convention):
    """Max relative error of the discrete stationary density for L = x^2/2, D = 0.5(1 + 0.5 x^2).

    Exact (no-flux) density: P ∝ D^{-s} exp(-∫ x/D) = D^{-s} (1 + x^2/2)^{-2}.
    """
    s = {"ito": 1.0, "stratonovich": 0.5, "isothermal": 0.0}[convention]
    grid = fp.Grid.uniform(x=(-4.0, 4.0, n))
    model = fp.Overdamped(fp.Landscape.from_expression("x**2/2"), diffusion="0.5*(1 + 0.5*x**2)", convention=convention)
    ps = fp.FokkerPlanck(model, grid).stationary().values
    x = grid.coords["x"]
    d = 0.5 * (1 + 0.5 * x**2)
    exact = d ** (-s) * (1 + 0.5 * x**2) ** (-2.0)
    exact /= grid.integrate(exact)
    return np.abs(ps - exact).max() / exact.max(), ps


@pytest.mark.parametrize("convention", ["ito", "stratonovich", "isothermal"])
def test_convention_stationary_density_converges_at_second_order(convention):
    ns = [50, 100, 200, 400]
    errors = [_convention_error(n, convention)[0] for n in ns]
    order = slope([1 / n for n in ns], errors)
    assert 1.8 < order < 2.2, (errors, order)
    assert errors[-1] < 1e-4


def test_conventions_differ_as_theory_says():
    """The three stationary densities differ by the factor D^{-s}: far more than the discretisation error."""
    dens = {c: _convention_error(400, c)[1] for c in ("ito", "stratonovich", "isothermal")}
    grid = fp.Grid.uniform(x=(-4.0, 4.0, 400))
    x = grid.coords["x"]
    ratio = dens["ito"] / dens["isothermal"]
    expected = 1.0 / (1 + 0.5 * x**2)  # D^{-1} up to normalisation
    np.testing.assert_allclose(ratio / ratio[200], expected / expected[200], rtol=1e-3)
    assert np.abs(dens["ito"] - dens["stratonovich"]).max() > 0.05 * dens["ito"].max()


def test_separable_2d_state_dependent_diffusion():
    """Diagonal D = diag(D1(x), D2(y)) in 2-D: the Ito density is the product of the 1-D ones."""
    grid = fp.Grid.uniform(x=(-4.0, 4.0, 120), y=(-4.0, 4.0, 100))
    model = fp.Overdamped(
        fp.Landscape.from_expression("x**2/2 + y**2/2"),
        diffusion=["0.5*(1 + 0.5*x**2)", "0.3 + 0.1*y**2"],
        convention="ito",
    )
    ps = fp.FokkerPlanck(model, grid).stationary().values
    x, y = grid.mesh()
    # 1-D Ito densities: D^{-1} exp(-∫ x/D); ∫ y/(0.3 + 0.1 y^2) dy = 5 ln(0.3 + 0.1 y^2)
    px = (0.5 * (1 + 0.5 * x**2)) ** -1 * (1 + 0.5 * x**2) ** -2.0
    py = (0.3 + 0.1 * y**2) ** -1 * (0.3 + 0.1 * y**2) ** -5.0
    exact = px * py
    exact = exact / grid.integrate(exact)
    assert np.abs(ps - exact).max() / exact.max() < 2e-3


@pytest.mark.parametrize("n", [40, 80])
def test_cross_diffusion_spreads_a_gaussian_with_the_right_covariance(n):
    """Free anisotropic diffusion dP/dt = div(D grad P), full constant D, periodic box:
    the covariance grows exactly as Sigma0 + 2 D t (checks the cross stencil's sign and size)."""
    d = np.array([[0.5, 0.3], [0.3, 0.4]])
    grid = fp.Grid.uniform(x=(-6.0, 6.0, n), y=(-6.0, 6.0, n))
    model = fp.Overdamped(fp.Landscape.from_expression("0*x + 0*y", ["x", "y"]), diffusion=d.tolist())
    problem = fp.FokkerPlanck(model, grid, boundary="periodic")
    p0 = fp.gaussian(grid, mean=[0.0, 0.0], std=[0.6, 0.6]).values.ravel()
    t = 1.0
    p = spla.expm_multiply(problem.operator * t, p0)
    x, y = (np.broadcast_to(c, grid.shape).ravel() for c in grid.mesh())
    w = p * grid.cell_volumes.ravel()
    cov = np.array([[w @ (x * x), w @ (x * y)], [w @ (x * y), w @ (y * y)]])
    expected = 0.36 * np.eye(2) + 2 * d * t
    # The covariance of the discrete density is exact up to O(h^2) corrections.
    h = 12.0 / n
    assert np.abs(cov - expected).max() < 0.1 * h**2 + 1e-6


def test_not_positive_definite_diffusion_is_rejected():
    land = fp.Landscape.from_expression("x**2 + y**2")
    with pytest.raises(InputError, match="positive definite"):
        fp.FokkerPlanck(fp.Overdamped(land, diffusion=[[1.0, 2.0], [2.0, 1.0]]), fp.Grid.uniform(x=(-1, 1, 5), y=(-1, 1, 5)))
    with pytest.raises(InputError, match="positive definite"):
        fp.Overdamped(land, diffusion=-1.0)
    with pytest.raises(InputError, match="positive definite"):
        fp.FokkerPlanck(fp.Overdamped(land, diffusion="x"), fp.Grid.uniform(x=(-1, 1, 5), y=(-1, 1, 5)))
    with pytest.raises(InputError, match="exactly one"):
        fp.Overdamped(land)


def test_callable_coefficients_equal_their_expression_form():
    """A diffusion given as a Python callable builds the same operator as the same formula as a string."""
    grid = fp.Grid.uniform(x=(-2.0, 2.0, 40), y=(-1.0, 1.0, 20))
    land = fp.Landscape.from_expression("x**2 + y**2", grid.names)
    as_text = fp.Overdamped(land, diffusion=["0.2*(1 + x**2)", "0.1 + 0.05*y**2"], convention="stratonovich")
    as_code = fp.Overdamped(land, diffusion=[lambda x, y: 0.2 * (1 + x**2), lambda x, y: 0.1 + 0.05 * y**2], convention="stratonovich")
    a = fp.FokkerPlanck(as_text, grid).operator
    b = fp.FokkerPlanck(as_code, grid).operator
    assert abs(a - b).max() <= 1e-12 * abs(a).max()


def test_cross_diffusion_is_stable_and_exact_on_unresolved_grids():
    """Mobility [[1, .3], [.3, 1]] on x^2/2 + y^2/2, 20^2 cells: the former Slotboom cross stencil had
    eigenvalues up to +205 at T = 0.04 (a potential step of 14 per cell). The symmetric corner stencil
    is similar to a symmetric negative semi-definite matrix at every temperature (largest real part at
    round-off), keeps exp(-L/T) an exact steady state and conserves probability."""
    land = fp.Landscape.from_expression("x**2/2 + y**2/2")
    grid = fp.Grid.uniform(x=(-2.5, 2.5, 20), y=(-2.5, 2.5, 20))
    x, y = np.meshgrid(grid[0].centers, grid[1].centers, indexing="ij")
    for temperature in (0.1, 0.04, 0.01, 0.002):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FPSolverWarning)  # the limited corners (tested below)
            op = fp.FokkerPlanck(fp.Overdamped(land, temperature=temperature, mobility=[[1.0, 0.3], [0.3, 1.0]]), grid).operator
        scale = abs(op).max()
        assert np.linalg.eigvals(op.toarray()).real.max() <= 1e-12 * scale, temperature
        gibbs = np.exp(-(x**2 + y**2) / (2 * temperature)).ravel()
        assert abs(op @ gibbs).max() <= 1e-13 * scale * gibbs.max()
        assert abs(grid.cell_volumes.ravel() @ op).max() <= 1e-13 * scale * grid.cell_volumes.max()


def test_cross_diffusion_is_stable_in_three_dimensions_beyond_the_two_dimensional_proof():
    """The stability proof is two-dimensional (in n dimensions it covers correlations up to 1/(n-1));
    a 3-D mobility with correlations 0.7 on a coarse grid at a low temperature stays stable."""
    land = fp.Landscape.from_expression("x**2/2 + y**2 + z**2/2 + x*y/2")
    grid = fp.Grid.uniform(x=(-2.0, 2.0, 9), y=(-2.0, 2.0, 8), z=(-2.0, 2.0, 7))
    mobility = [[1.0, 0.7, 0.7], [0.7, 1.0, 0.7], [0.7, 0.7, 1.0]]
    for temperature in (1.0, 0.05):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FPSolverWarning)
            op = fp.FokkerPlanck(fp.Overdamped(land, temperature=temperature, mobility=mobility), grid).operator
        assert np.linalg.eigvals(op.toarray()).real.max() <= 1e-12 * abs(op).max(), temperature


def test_cross_diffusion_converges_at_second_order_to_the_exact_ou_spectrum():
    """L = x^2/2 + y^2, mobility A = [[1, .5], [.5, 1]]: the process is Ornstein-Uhlenbeck with drift
    -A H theta, whose relaxation rates are the eigenvalues of A H (lambda_1 exact). The error of
    lambda_1 falls by 4 per halving of h (observed order in [1.8, 2.2])."""
    land = fp.Landscape.from_expression("x**2/2 + y**2")
    mobility = np.array([[1.0, 0.5], [0.5, 1.0]])
    exact = np.linalg.eigvals(mobility @ np.diag([1.0, 2.0])).real.min()
    errors = []
    for n in (24, 48, 96):
        grid = fp.Grid.uniform(x=(-3.5, 3.5, n), y=(-2.5, 2.5, n))
        spec = fp.FokkerPlanck(fp.Overdamped(land, temperature=0.5, mobility=mobility.tolist()), grid).spectrum(k=2)
        errors.append(abs(float(spec["rate"][1]) - exact))
    order = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all((order > 1.8) & (order < 2.2)), (errors, order)


def test_cross_diffusion_limited_where_the_density_lives_warns():
    """The stability bound binds where L/T changes by several units per cell: a warning when those
    corners carry more than 1e-8 of the Gibbs weight (20^2 cells at T = 0.01: 8.6 %), none on a
    grid that resolves the density (80^2 at T = 0.1, where it binds nowhere)."""
    land = fp.Landscape.from_expression("x**2/2 + y**2/2")
    mobility = [[1.0, 0.3], [0.3, 1.0]]
    coarse = fp.Grid.uniform(x=(-2.5, 2.5, 20), y=(-2.5, 2.5, 20))
    with pytest.warns(FPSolverWarning, match="corners carrying 0.086 of the Gibbs weight"):
        fp.FokkerPlanck(fp.Overdamped(land, temperature=0.01, mobility=mobility), coarse).operator
    fine = fp.Grid.uniform(x=(-2.5, 2.5, 80), y=(-2.5, 2.5, 80))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FPSolverWarning)
        fp.FokkerPlanck(fp.Overdamped(land, temperature=0.1, mobility=mobility), fine).operator
