"""Phase space: the Inertial model and the Klein–Kramers operator."""

from __future__ import annotations

import numpy as np
import pytest

import fpsolver as fp
from fpsolver.models import VELOCITY_WIDTH, InertialCoefficients

from .conftest import slope
from .hermite_reference import stable_rates

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


# --- the Klein–Kramers operator ----------------------------------------------------------------

P4 = fp.Landscape.from_expression("4*(x**2 - 1)**2")
#: P4's lambda_1 (U = 4(x^2-1)^2, gamma = M = T = 1) from tests/hermite_reference.py: the same to
#: 1e-9 at (half-width, n_x, n_hermite) = (2.2, 128, 80), (2.0, 160, 100) and (2.5, 192, 80).
P4_LAMBDA1 = 0.0222907925


def _maxwell_boltzmann(problem: fp.FokkerPlanck, temperature: float, mass: float) -> np.ndarray:
    grid = problem.grid
    n = len(grid) // 2
    mesh = [np.broadcast_to(c, grid.shape) for c in grid.mesh()]
    land = problem.model.landscape
    energy = land.value(**{v: mesh[i] for i, v in enumerate(land.variables)})
    energy = energy + sum(0.5 * mass * mesh[n + k] ** 2 for k in range(n))
    p = np.exp(-(energy - energy.min()) / temperature).ravel()
    return p / (problem.volumes @ p)


@pytest.mark.parametrize(
    ("landscape", "axes", "boundary", "damping"),
    [
        (DOUBLE_WELL, {"x": (-2, 2, 40), "r": (-1.6, 1.6, 30)}, "reflecting", 0.3),
        (DOUBLE_WELL, {"x": (-2, 2, 40), "r": (-1.6, 1.6, 30)}, "reflecting", "0.1 + x**2"),
        (fp.Landscape.from_expression("0.2*cos(x)"), {"x": (-np.pi, np.pi, 32), "r": (-1.6, 1.6, 30)}, {"x": "periodic"}, 1.0),
        (BOWL_2D, {"x": (-1, 1, 8), "y": (-1, 1, 7), "u": (-1.6, 1.6, 9), "v": (-1.2, 1.2, 10)}, "reflecting", [0.5, 2.0]),
    ],
)
def test_maxwell_boltzmann_is_an_exact_discrete_stationary_state(landscape, axes, boundary, damping):
    # mass 1 (and 2 for v in 2-D would change T/M: keep one mass); T = 0.05 -> sqrt(T/M) = 0.22, width 6 * 0.22 = 1.34.
    model = fp.Inertial(landscape, mass=1.0, damping=damping, temperature=0.05 if len(axes) == 2 else 0.04)
    problem = fp.FokkerPlanck(model, fp.Grid.uniform(**axes), boundary=boundary)
    p_eq = _maxwell_boltzmann(problem, model.temperature, 1.0)
    op = problem.operator
    # Exact up to round-off: the residual is measured against |L| |P| term by term.
    assert np.max(np.abs(op @ p_eq)) <= 1e-12 * np.max(abs(op) @ p_eq)


def test_stationary_solve_returns_maxwell_boltzmann_with_exact_moments():
    # THEORY §7: M = 2, gamma = 0.5, H = 3, D = 0.1 -> T = 0.1, Var theta = 1/30, Var r = 0.05, Cov = 0.
    model = fp.Inertial(fp.Landscape.from_expression("1.5*x**2"), mass=2.0, damping=0.5, diffusion=0.1)
    problem = fp.FokkerPlanck(model, fp.Grid.uniform(x=(-1.3, 1.3, 60), r=(-1.4, 1.4, 50)))
    p = problem.stationary().values
    p_eq = _maxwell_boltzmann(problem, 0.1, 2.0).reshape(p.shape)
    assert np.max(np.abs(p - p_eq)) <= 1e-10 * p_eq.max()  # the discrete state is exact: only solve round-off
    x, r = [np.broadcast_to(c, p.shape) for c in problem.grid.mesh()]
    weights = p * problem.grid.cell_volumes
    # Midpoint-rule moments of the exact Gaussian: second-order quadrature error (dx = 0.043, dr = 0.056).
    assert np.sum(weights * x**2) == pytest.approx(1 / 30, rel=2e-3)
    assert np.sum(weights * r**2) == pytest.approx(0.05, rel=2e-3)
    assert abs(np.sum(weights * x * r)) < 1e-15


@pytest.mark.parametrize("boundary", ["reflecting", {"x": "periodic"}])
def test_probability_is_conserved_to_round_off(boundary):
    model = fp.Inertial(fp.Landscape.from_expression("0.3*sin(x) + 0.1*cos(2*x)"), damping="0.2 + 0.1*sin(x)**2", temperature=0.1)
    problem = fp.FokkerPlanck(model, fp.Grid.uniform(x=(-np.pi, np.pi, 36), r=(-2, 2, 24)), boundary=boundary)
    column_sums = problem.volumes @ problem.operator
    assert np.max(np.abs(column_sums)) <= 1e-13 * abs(problem.operator).max()


def test_absorbing_wall_only_lets_outgoing_velocities_leave():
    model = fp.Inertial(DOUBLE_WELL, damping=0.5, temperature=0.05)
    grid = fp.Grid.uniform(x=(-2, 0, 16), r=(-1.5, 1.5, 14))
    problem = fp.FokkerPlanck(model, grid, boundary={"x": ("reflecting", "absorbing")})
    leak = (problem.volumes @ problem.operator).reshape(grid.shape)  # d(mass)/dt per unit density in a cell
    r = grid["r"].centers
    scale = abs(problem.operator).max()
    assert np.all(np.abs(leak[:-1]) <= 1e-13 * scale)  # only the wall layer loses probability
    assert np.all(np.abs(leak[-1, r < 0]) <= 1e-13 * scale)  # incoming velocities: nothing crosses
    assert np.all(leak[-1, r > 0] < 0)  # outgoing velocities leave
    assert np.linalg.eigvals(problem.operator.toarray()).real.max() < 0  # every mode decays


def test_inertial_ornstein_uhlenbeck_transient_matches_exact_moments():
    # Mean and covariance obey m' = A m, S' = A S + S A^T + Q (THEORY §4/§7 numbers: M = 2, gamma = 0.5, H = 3, D = 0.1).
    from scipy.integrate import solve_ivp

    hess, mass, damping, diffusion = 3.0, 2.0, 0.5, 0.1
    a = np.array([[0.0, 1.0], [-hess / mass, -damping]])
    q = np.diag([0.0, 2 * diffusion / mass**2])
    mean0, cov0 = np.array([0.4, 0.0]), np.diag([0.01, 0.005])

    def rhs(t, y):
        s = y[2:].reshape(2, 2)
        return np.concatenate([a @ y[:2], (a @ s + s @ a.T + q).ravel()])

    exact = solve_ivp(rhs, (0.0, 3.0), np.concatenate([mean0, cov0.ravel()]), rtol=1e-12, atol=1e-14).y[:, -1]
    model = fp.Inertial(fp.Landscape.from_expression("1.5*x**2"), mass=mass, damping=damping, diffusion=diffusion)
    grid = fp.Grid.uniform(x=(-1.2, 1.4, 80), r=(-1.4, 1.4, 60))
    problem = fp.FokkerPlanck(model, grid)
    x, r = [np.broadcast_to(c, grid.shape) for c in problem.grid.mesh()]
    p0 = np.exp(-0.5 * ((x - mean0[0]) ** 2 / cov0[0, 0] + r**2 / cov0[1, 1]))
    p = problem.evolve(p0, 3.0, 0.01)["p"].values[-1]
    w = p * grid.cell_volumes
    w = w / w.sum()
    mx, mr = np.sum(w * x), np.sum(w * r)
    got = [mx, mr, np.sum(w * (x - mx) ** 2), np.sum(w * (x - mx) * (r - mr)), np.sum(w * (r - mr) ** 2)]
    want = exact[[0, 1, 2, 3, 5]]
    # Measured errors on this grid (second order in space and time): means 8e-4, covariances <= 7e-5;
    # at 160 x 120 with dt / 2 they are 4x smaller.  Tolerances: 2x the measured errors.
    np.testing.assert_allclose(got[:2], want[:2], atol=1.6e-3)
    np.testing.assert_allclose(got[2:], want[2:], atol=1.4e-4)


@pytest.mark.slow
def test_p4_slowest_modes_match_the_hermite_reference_without_spurious_modes():
    reference = stable_rates("4*(x**2 - 1)**2", temperature=1.0, damping=1.0, k=4)
    assert reference[1] == pytest.approx(P4_LAMBDA1, rel=1e-8)
    model = fp.Inertial(P4, damping=1.0, temperature=1.0)
    problem = fp.FokkerPlanck(model, fp.Grid.uniform(x=(-2.2, 2.2, 160), r=(-6.5, 6.5, 128)))
    rates = problem.spectrum(k=4)["rate"].values
    # Third order: measured relative errors on this grid are 6.3e-4 (lambda_1), 1.5e-3 / 2.2e-3 (lambda_2, lambda_3).
    # A spurious slow mode (the centred scheme's checkerboard) would appear as an extra rate below these.
    assert abs(rates[0]) < 1e-10
    np.testing.assert_allclose(rates[1:], reference[1:], rtol=5e-3)


@pytest.mark.slow
def test_p4_lambda1_converges_at_third_order():
    model = fp.Inertial(P4, damping=1.0, temperature=1.0)
    sizes = [(40, 32), (80, 64), (160, 128)]
    errors = []
    for nx, nr in sizes:
        problem = fp.FokkerPlanck(model, fp.Grid.uniform(x=(-2.2, 2.2, nx), r=(-6.5, 6.5, nr)))
        errors.append(abs(problem.spectrum(k=2)["rate"].values[1] / P4_LAMBDA1 - 1))
    # Measured: errors 3.0e-2, 4.8e-3, 6.3e-4 (local orders 2.67, 2.92; 2.99 from 160 to 320).
    order = slope([1 / nx for nx, _ in sizes], errors)
    assert order > 2.6, (errors, order)
    assert errors[-1] < 1e-3


@pytest.mark.parametrize("damping", [0.03, 1.0])
def test_operator_is_stable_on_coarse_grids(damping):
    # All eigenvalues in the closed left half-plane (the transport's dissipation is w-norm dissipative by construction).
    model = fp.Inertial(DOUBLE_WELL, damping=damping, temperature=0.05)
    op = fp.FokkerPlanck(model, fp.Grid.uniform(x=(-2, 2, 20), r=(-1.5, 1.5, 16))).operator.toarray()
    assert np.linalg.eigvals(op).real.max() <= 1e-10 * np.abs(op).max()


@pytest.mark.slow
def test_gamma_lambda1_tends_to_the_overdamped_lambda1():
    land = fp.Landscape.from_expression("x**4/4 - x**2/2")
    temperature = 0.1
    overdamped = fp.FokkerPlanck(fp.Overdamped(land, temperature=temperature), fp.Grid.uniform(x=(-2.2, 2.2, 800)))
    limit = overdamped.spectrum(k=2)["rate"].values[1]
    gaps = []
    for damping in (5.0, 10.0, 20.0):
        model = fp.Inertial(land, damping=damping, temperature=temperature)
        problem = fp.FokkerPlanck(model, fp.Grid.uniform(x=(-2.2, 2.2, 160), r=(-2.1, 2.1, 120)))
        gaps.append(abs(damping * problem.spectrum(k=2)["rate"].values[1] / limit - 1))
    # Smoluchowski limit: gamma lambda_1 = lambda_1^od (1 + O(gamma^-2)), so doubling gamma cuts the gap ~4x.
    # Measured: 0.0253, 0.0065, 0.0015 (ratios 3.9, 4.4); the same to 2e-4 with 320 cells in x or 60 in r.
    assert 3.0 < gaps[0] / gaps[1] < 5.0
    assert 3.0 < gaps[1] / gaps[2] < 5.5
    assert gaps[2] < 2e-3


@pytest.mark.parametrize(
    ("boundary", "axes", "message"),
    [
        ({"r": "absorbing"}, {"x": (-2, 2, 10), "r": (-2, 2, 10)}, "velocity axis 'r' is truncated with zero flux"),
        ({"r": "periodic"}, {"x": (-2, 2, 10), "r": (-2, 2, 10)}, "velocity axis 'r' is truncated with zero flux"),
    ],
)
def test_operator_rejects_bad_velocity_boundaries(boundary, axes, message):
    model = fp.Inertial(DOUBLE_WELL, damping=1.0, temperature=0.05)
    with pytest.raises(fp.InputError, match=message):
        fp.FokkerPlanck(model, fp.Grid.uniform(**axes), boundary=boundary).operator


def test_operator_rejects_nonuniform_axes():
    model = fp.Inertial(DOUBLE_WELL, damping=1.0, temperature=0.05)
    grid = fp.Grid([fp.Axis("x", np.array([-2.0, -1.0, 0.0, 0.5, 2.0])), fp.Axis.uniform("r", -2, 2, 10)])
    with pytest.raises(fp.InputError, match="must be uniform"):
        fp.FokkerPlanck(model, grid).operator


def test_four_dimensional_phase_space_of_a_separable_landscape_has_the_two_dimensional_rates():
    # L = x^4/4 - x^2/2 + y^2 separates: every piece of the scheme acts per direction, so the 4-D
    # generator is the Kronecker sum of the (x, u) and (y, v) generators and its rates are sums of theirs.
    # The slowest nonzero rate is the (x, u) problem's lambda_1 (the y-part relaxes faster); equal to round-off.
    land = fp.Landscape.from_expression("x**4/4 - x**2/2 + y**2")
    x_axis, y_axis, u_axis, v_axis = (-1.9, 1.9, 10), (-1.4, 1.4, 6), (-2.0, 2.0, 8), (-2.0, 2.0, 6)
    four = fp.FokkerPlanck(fp.Inertial(land, damping=1.0, temperature=0.1), fp.Grid.uniform(x=x_axis, y=y_axis, u=u_axis, v=v_axis))
    two = fp.FokkerPlanck(fp.Inertial(DOUBLE_WELL, damping=1.0, temperature=0.1), fp.Grid.uniform(x=x_axis, u=u_axis))
    p_eq = _maxwell_boltzmann(four, 0.1, 1.0)
    assert np.max(np.abs(four.operator @ p_eq)) <= 1e-12 * np.max(abs(four.operator) @ p_eq)
    assert four.spectrum(k=2)["rate"].values[1] == pytest.approx(two.spectrum(k=2)["rate"].values[1], rel=1e-9)


def test_theta_dependent_noise_without_equilibrium_conserves_and_is_stable():
    # D(x) makes T = D / (gamma M) vary: no Maxwell-Boltzmann state, but the scheme must stay conservative and stable.
    model = fp.Inertial(DOUBLE_WELL, mass=1.0, damping=0.5, diffusion="0.02 + 0.01*x**2")
    problem = fp.FokkerPlanck(model, fp.Grid.uniform(x=(-1.8, 1.8, 18), r=(-1.9, 1.9, 16)))
    op = problem.operator
    assert np.max(np.abs(problem.volumes @ op)) <= 1e-13 * abs(op).max()
    assert np.linalg.eigvals(op.toarray()).real.max() <= 1e-10 * abs(op).max()
    p = problem.stationary().values
    assert p.min() >= -1e-6 * p.max()  # a density, to the scheme's (non-monotone) round-off


# --- scenarios ---------------------------------------------------------------------------------

INERTIAL_SCENARIO = """\
name: inertial
landscape: {expression: "x**4/4 - x**2/2"}
grid:
  x: {min: -1.9, max: 1.9, n: 40}
  r: {min: -1.35, max: 1.35, n: 20, kind: velocity}
model:
  kind: inertial
  damping: DAMPING
  temperature: 0.05
tasks:
  spectrum: {k: 2}
"""


def test_scenario_builds_the_inertial_model_with_velocity_axes(tmp_path):
    from fpsolver.scenario import loads_scenario

    loaded = loads_scenario(INERTIAL_SCENARIO.replace("DAMPING", "0.3"), "inertial.yaml", tmp_path / "out.nc")
    problem = loaded.problem
    assert isinstance(problem.model, fp.Inertial) and problem.grid["r"].kind == "velocity"
    direct = fp.FokkerPlanck(fp.Inertial(DOUBLE_WELL, damping=0.3, temperature=0.05), fp.Grid.uniform(x=(-1.9, 1.9, 40), r=(-1.35, 1.35, 20)))
    assert (problem.operator != direct.operator).nnz == 0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("DAMPING", "-0.3"), r"inertial.yaml:\d+: model: damping must be positive"),
        (("min: -1.35, max: 1.35", "min: -1.0, max: 1.0"), r"inertial.yaml:\d+: grid: velocity axis 'r' spans \[-1, 1\] but must cover"),
        (("kind: inertial", "kind: newtonian"), r"inertial.yaml:\d+: model.kind: unknown model kind 'newtonian'; choose one of overdamped, inertial"),
        (("  damping: DAMPING\n", ""), r"inertial.yaml:\d+: model.damping: required key is missing"),
    ],
)
def test_scenario_errors_for_the_inertial_model_are_located(edit, message, tmp_path):
    from fpsolver.scenario import loads_scenario

    text = INERTIAL_SCENARIO.replace(*edit).replace("DAMPING", "0.3")
    with pytest.raises(fp.ScenarioError, match=message):
        loads_scenario(text, "inertial.yaml", tmp_path / "out.nc")
    assert not (tmp_path / "out.nc").exists()
