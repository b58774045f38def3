"""Optimizer maps: exact stationary covariances from the PDE (THEORY.md §7), Adai's inertia, validation, update rules."""

from __future__ import annotations

import numpy as np
import pytest

import fpsolver as fp
from fpsolver import theory
from fpsolver.errors import FPSolverWarning, InputError
from fpsolver.noise import HessianNoise
from fpsolver.optimizers import (
    OPTIMIZERS,
    SGD,
    AdaMomentum,
    Adai,
    AdaiW,
    Adam,
    AdamW,
    GDNoise,
    Momentum,
    SAdam,
    SAMSGrad,
)

from .conftest import slope

ETA, B = 0.05, 4
# delta only regularises inflection points; on a quadratic it shifts Var by delta/H = 1e-9 relative.
EXACT_NOISE = HessianNoise(delta=1e-9)


def _stationary_covariance(model, grid) -> np.ndarray:
    p = fp.FokkerPlanck(model, grid).stationary().values
    w = p * grid.cell_volumes
    w = w / w.sum()
    mesh = grid.mesh()
    mean = [np.sum(w * m) for m in mesh]
    return np.array([[np.sum(w * (a - ma) * (b - mb)) for b, mb in zip(mesh, mean)] for a, ma in zip(mesh, mean)])


def _rotated(hessian_eigs, degrees):
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    v = np.array([[c, -s], [s, c]])
    return v @ np.diag(hessian_eigs) @ v.T


GRID = fp.Grid.uniform(x=(-1.5, 1.5, 100), y=(-1.5, 1.5, 100))


def test_sgd_stationary_covariance_is_isotropic_for_an_axis_aligned_hessian():
    """SGD on L = θᵀHθ/2 with D = (η/2B)H: covariance (η/2B)·I for any H (THEORY §7).

    Tolerance 1e-6 relative: δ = 1e-9 shifts it by 1e-9, the ±6σ domain truncates ~1e-8, and
    the discrete stationary density of this separable OU process is exact to ~1e-9 (measured).
    """
    land = fp.Landscape.quadratic([2.0, 0.5])
    cov = _stationary_covariance(SGD(ETA, B).model(land, EXACT_NOISE), GRID)
    np.testing.assert_allclose(cov, ETA / (2 * B) * np.eye(2), rtol=0, atol=1e-6 * ETA / (2 * B))


@pytest.mark.slow
def test_sgd_stationary_covariance_with_cross_diffusion_converges_to_isotropic_at_second_order():
    """A Hessian rotated by 30° makes D full; the cross-diffusion discretisation is second order."""
    land = fp.Landscape.quadratic(_rotated([2.0, 1.0], 30.0))
    model = SGD(ETA, B).model(land, EXACT_NOISE)
    ns = [90, 180]
    errors = []
    for n in ns:
        cov = _stationary_covariance(model, fp.Grid.uniform(x=(-1.5, 1.5, n), y=(-1.5, 1.5, n)))
        errors.append(np.abs(cov / (ETA / (2 * B)) - np.eye(2)).max())
    assert errors[-1] < 5e-3
    assert slope([1 / n for n in ns], errors) > 1.8


def test_adam_with_frozen_preconditioner_has_variance_eta_over_2_sqrt_BH():
    """Adam overdamped with P = (H/B)^(-1/2) frozen at the minimum: Var θᵢ = η/(2√(B Hᵢ)) (THEORY §7).

    eps = 1e-8 shifts P by 1e-8 relative; the domain holds ±6σ; the discrete stationary
    density of a constant-coefficient separable OU process is exact to ~1e-9 (measured).
    """
    h = np.array([2.0, 0.5])
    land = fp.Landscape.quadratic(h)
    model = Adam(ETA, B).model(land, EXACT_NOISE, freeze_at=[0.0, 0.0])
    cov = _stationary_covariance(model, fp.Grid.uniform(x=(-0.6, 0.6, 100), y=(-0.8, 0.8, 100)))
    np.testing.assert_allclose(np.diag(cov), ETA / (2 * np.sqrt(B * h)), rtol=1e-6)
    assert abs(cov[0, 1]) < 1e-12


def test_adam_with_theta_dependent_preconditioner_differs_by_order_eta():
    """Unfrozen, v̂ = H/B + (Hθ)² grows away from the minimum: Var rises by O(η√(BH)) relative."""
    h = np.array([2.0, 0.5])
    land = fp.Landscape.quadratic(h)
    cov = _stationary_covariance(Adam(ETA, B).model(land, EXACT_NOISE), fp.Grid.uniform(x=(-0.6, 0.6, 100), y=(-0.8, 0.8, 100)))
    excess = np.diag(cov) / (ETA / (2 * np.sqrt(B * h))) - 1
    assert np.all(excess > 0) and np.all(excess < ETA * np.sqrt(B * h))


@pytest.mark.parametrize("form, factor", [("pytorch", 1 / (1 - 0.9)), ("ema", 1.0)])
def test_momentum_overdamped_limit_temperature(form, factor):
    """PyTorch momentum's temperature is ηH/(2B(1−β₁)), EMA's ηH/(2B): Var = η/(2B) times 10 or 1."""
    land = fp.Landscape.quadratic([2.0, 0.5])
    grid = fp.Grid.uniform(x=(-1.6, 1.6, 100), y=(-1.6, 1.6, 100)) if form == "pytorch" else GRID
    cov = _stationary_covariance(Momentum(ETA, B, form=form).model(land, EXACT_NOISE), grid)
    # +-6.4 sigma domain for PyTorch's wider density: truncation below 1e-8.
    np.testing.assert_allclose(np.diag(cov), factor * ETA / (2 * B), rtol=1e-4)


def test_adamomentum_frozen_temperature():
    """AdaMomentum (ε → 0) near a minimum: T = √((1+β₁)/(1−β₁))·(η/2√B)√Hᵢ, so Var = √19·η/(2√(BHᵢ))."""
    h = np.array([2.0, 0.5])
    land = fp.Landscape.quadratic(h)
    model = AdaMomentum(ETA, B, eps=1e-16).model(land, EXACT_NOISE, freeze_at=[0.0, 0.0])
    cov = _stationary_covariance(model, fp.Grid.uniform(x=(-1.2, 1.2, 100), y=(-1.7, 1.7, 100)))
    np.testing.assert_allclose(np.diag(cov), np.sqrt(19) * ETA / (2 * np.sqrt(B * h)), rtol=1e-6)


def test_adai_is_sgd_in_the_overdamped_limit():
    land = fp.Landscape.quadratic([2.0, 0.5])
    cov = _stationary_covariance(Adai(ETA, B).model(land, EXACT_NOISE), GRID)
    np.testing.assert_allclose(np.diag(cov), ETA / (2 * B), rtol=1e-6)


@pytest.mark.parametrize("vhat, beta1", [((1.0, 9.0), (0.98, 0.82)), ((1.0, 1e4), (0.999, 0.80002))])
def test_adai_inertia_values(vhat, beta1):
    """THEORY §7: β₁ = clip(1 − β₀ v̂/v̄, 0, 1 − ε) with v̄ the mean over all parameters."""
    got = Adai(0.1).inertia(np.array(vhat)[:, None])[:, 0]
    # THEORY rounds 1 - 0.2/1.0001 = 0.8000199980 to 0.80002: 2e-9 of rounding.
    np.testing.assert_allclose(got, beta1, rtol=0, atol=3e-9)


def test_adai_inertia_in_the_continuous_model_uses_the_mean_over_parameters():
    """HessianNoise on diag(1, 9) at the minimum: v̂ = (1, 9)/B (+δ), so β₁ = (0.98, 0.82)."""
    land = fp.Landscape.quadratic([1.0, 9.0])
    b1, b3, p = Adai(0.1, 2).heavy_ball(land, HessianNoise(delta=1e-12), {"x": np.zeros(1), "y": np.zeros(1)})
    np.testing.assert_allclose(b1[:, 0], [0.98, 0.82], atol=1e-12)
    np.testing.assert_allclose(b3[:, 0], [0.02, 0.18], atol=1e-12)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SGD(0.0, 1), "lr"),
        (lambda: SGD(-0.1, 1), "lr"),
        (lambda: SGD(0.1, 0), "batch_size"),
        (lambda: SGD(0.1, 2.5), "batch_size"),
        (lambda: Momentum(0.1, beta1=1.0), r"beta1 must lie in \[0, 1\)"),
        (lambda: Momentum(0.1, form="nesterov"), "form"),
        (lambda: Adam(0.1, beta2=-0.1), "beta2"),
        (lambda: Adam(0.1, eps=-1.0), "eps"),
        (lambda: Adam(0.1, weight_decay=-1.0), "weight_decay"),
        (lambda: Adai(0.1, beta0=1.5), "beta0"),
        (lambda: Adai(0.1, eps=0.0), "eps"),
        (lambda: SAdam(0.1, softplus=0), "softplus"),
        (lambda: GDNoise(0.1, sigma=0), "sigma"),
        (lambda: SGD(float("nan"), 1), "lr"),
    ],
)
def test_bad_hyperparameters_raise_input_error(make, message):
    with pytest.raises(InputError, match=message):
        make()


def test_adam_outside_the_bounded_update_region_warns_naming_the_bound():
    with pytest.warns(FPSolverWarning, match=r"beta1\*\*2 < beta2"):
        Adam(0.01, beta1=0.95, beta2=0.9)
    with pytest.warns(FPSolverWarning, match=r"beta1\*\*2 < beta2"):
        AdamW(0.01, beta1=0.9, beta2=0.81)


def test_refused_continuous_models():
    land = fp.Landscape.quadratic([1.0])
    with pytest.raises(InputError, match="decoupled"):
        AdamW(0.01, weight_decay=0.1).model(land)
    with pytest.raises(InputError, match="no continuous-time model"):
        SAMSGrad(0.01).model(land)
    with pytest.raises(InputError, match="dynamics must be one of"):
        SGD(0.01).model(land, dynamics="underdamped")
    with pytest.raises(InputError, match="noise"):
        GDNoise(0.01, 1.0).model(land, noise=HessianNoise())


def test_weight_decay_enters_the_landscape_when_the_mobility_is_one():
    """AdaiW's decoupled decay −ηλθ is the gradient step of λ|θ|²/2 (mobility 1): Var = T/(H+λ) with T = η(H+δ)/(2B)."""
    land = fp.Landscape.quadratic([1.0])
    model = AdaiW(0.1, 1, weight_decay=1.0).model(land, EXACT_NOISE)
    assert model.landscape.hessian(x=np.zeros(1))[0, 0, 0] == pytest.approx(2.0)


def test_gd_noise_has_uniform_temperature():
    land = fp.Landscape.quadratic([2.0, 0.5])
    cov = _stationary_covariance(GDNoise(0.02, sigma=1.0).model(land), GRID)
    np.testing.assert_allclose(np.diag(cov), 0.01 / np.array([2.0, 0.5]), rtol=1e-3)


def test_registry_has_every_kind():
    assert set(OPTIMIZERS) == {"gd_noise", "sgd", "momentum", "adam", "adamw", "adai", "adaiw", "sadam", "samsgrad", "adamomentum"}
    assert OPTIMIZERS["adam"] is Adam


# Discrete update rules: first steps computed by hand ------------------------------------------------
def test_adam_first_step_is_lr_times_sign():
    """After bias correction m̂ = g, v̂ = g²: the first step is η g/(|g| + ε)."""
    opt = Adam(0.1, eps=0.0)
    theta = np.array([[1.0, 2.0]])
    state = opt.init_state(theta)
    new = opt.step(theta, np.array([[3.0, -0.5]]), state)
    np.testing.assert_allclose(new, [[0.9, 2.1]], rtol=1e-15)


def test_adai_first_step_is_plain_sgd_and_beta1_is_clipped():
    """m̂₁ = (1−β₁)g/(1−β₁) = g; with v̂ = g² = (1, 1e4), β₁ = (0.999, 0.80002)."""
    opt = Adai(0.1)
    theta = np.zeros((2, 1))
    state = opt.init_state(theta)
    new = opt.step(theta, np.array([[1.0], [100.0]]), state)
    np.testing.assert_allclose(new[:, 0], [-0.1, -10.0], rtol=1e-12)
    np.testing.assert_allclose(state["beta1"][:, 0], [0.999, 1 - 0.2 / 1.0001], atol=1e-14)


def test_momentum_forms_accumulate_as_documented():
    g = np.array([[1.0]])
    for form, expected in (("pytorch", -0.1 * (1 + 1.9)), ("ema", -0.1 * (0.1 + 0.19))):
        opt = Momentum(0.1, beta1=0.9, form=form)
        theta = np.zeros((1, 1))
        state = opt.init_state(theta)
        theta = opt.step(opt.step(theta, g, state), g, state)
        assert theta[0, 0] == pytest.approx(expected, rel=1e-14)


def test_adamw_decays_before_the_step_and_adam_adds_decay_to_the_gradient():
    theta = np.array([[2.0]])
    zero = np.zeros((1, 1))
    w = AdamW(0.1, weight_decay=0.5, eps=0.0)
    np.testing.assert_allclose(w.step(theta, zero - 3.0, w.init_state(theta)), [[2.0 * 0.95 + 0.1]])
    a = Adam(0.1, weight_decay=0.5, eps=0.0)
    np.testing.assert_allclose(a.step(theta, zero, a.init_state(theta)), [[1.9]])  # g = 0 + 0.5*2 > 0


def test_sadam_first_step_uses_softplus_of_sqrt_v():
    """k = 1: step η·√(1−β₂)/(1−β₁)·m/softplus(√v) with m = (1−β₁)g, v = (1−β₂)g²."""
    opt = SAdam(0.1, softplus=50)
    g = 0.01
    theta = np.zeros((1, 1))
    new = opt.step(theta, np.array([[g]]), opt.init_state(theta))
    sqrt_v = np.sqrt(0.001) * g
    expected = -0.1 * np.sqrt(0.001) / 0.1 * 0.1 * g / (np.log1p(np.exp(50 * sqrt_v)) / 50)
    assert new[0, 0] == pytest.approx(expected, rel=1e-13)


# Inertial (phase-space) maps ---------------------------------------------------------------------
POSITIONS = fp.Grid.uniform(x=(-1.0, 1.0, 8), y=(-1.0, 1.0, 8))


def _phase(model):
    """The model on a phase-space grid whose velocity axes fit its temperature (one fixed range
    cannot: an axis beyond 30 Maxwellian widths overflows the operator's weights and is refused)."""
    return model.on(model.phase_grid(POSITIONS, cells=8))


@pytest.mark.parametrize(
    "optimizer, kind, hyper",
    [
        (Momentum(ETA, B), "momentum", {}),
        (Momentum(ETA, B, form="ema"), "momentum", {"form": "ema"}),
        (Adam(ETA, B, eps=0.0), "adam", {}),
        (Adai(ETA, B), "adai", {}),
        (SGD(ETA, B), "sgd", {}),
    ],
)
def test_inertial_map_has_the_temperature_of_the_theory_table(optimizer, kind, hyper):
    """T = D/(γM) with M = η/(β₃P), γ = (1−β₁)/η, D = (η/2)C equals THEORY §3's temperature in every direction."""
    h = np.array([2.0, 0.5])
    model = optimizer.model(fp.Landscape.quadratic(h), EXACT_NOISE, dynamics="inertial", freeze_at=[0.0, 0.0])
    coeffs = _phase(model)
    at_min = {"x": np.zeros(1), "y": np.zeros(1)}
    np.testing.assert_allclose(coeffs.temperature(at_min)[:, 0], theory.optimizer_temperature(kind, h, ETA, B, **hyper), rtol=1e-8)
    np.testing.assert_allclose(coeffs.damping(at_min)[:, 0] * coeffs.mass(at_min)[:, 0], 1 / optimizer.mobility(fp.Landscape.quadratic(h), EXACT_NOISE, at_min)[:, 0], rtol=1e-12)


def test_pytorch_momentum_inertial_coefficients():
    model = Momentum(0.1, 8, beta1=0.9).model(fp.Landscape.quadratic([2.0, 0.5]), EXACT_NOISE, dynamics="inertial")
    coeffs = _phase(model)
    pts = {"x": np.array([0.3]), "y": np.array([-0.2])}
    np.testing.assert_allclose(coeffs.mass(pts)[:, 0], [0.1, 0.1])
    np.testing.assert_allclose(coeffs.damping(pts)[:, 0], [1.0, 1.0])
    np.testing.assert_allclose(coeffs.diffusion(pts)[:, 0], 0.05 * np.array([2.0, 0.5]) / 8, rtol=1e-8)


def test_adai_inertial_mass_follows_the_adaptive_inertia():
    """v̂ ∝ (1, 9) at the minimum: β₁ = (0.98, 0.82), so M = η/(1−β₁) = η·(50, 5.556), γ = (1−β₁)/η."""
    eta = 0.1
    model = Adai(eta, 2).model(fp.Landscape.quadratic([1.0, 9.0]), HessianNoise(delta=1e-12), dynamics="inertial")
    coeffs = _phase(model)
    at_min = {"x": np.zeros(1), "y": np.zeros(1)}
    np.testing.assert_allclose(coeffs.mass(at_min)[:, 0], eta / np.array([0.02, 0.18]), rtol=1e-9)
    np.testing.assert_allclose(coeffs.damping(at_min)[:, 0], np.array([0.02, 0.18]) / eta, rtol=1e-9)


def test_inertial_map_needs_diagonal_noise():
    c, s = np.cos(0.5), np.sin(0.5)
    land = fp.Landscape.quadratic(np.array([[c, -s], [s, c]]) @ np.diag([2.0, 1.0]) @ np.array([[c, s], [-s, c]]))
    with pytest.raises(InputError, match="off-diagonal"):
        Momentum(0.1).model(land, dynamics="inertial")


def test_overdamped_parameter_values_and_warning():
    """4ηβ₃P|H|/(1−β₁)²: SGD 4ηH; PyTorch momentum 4ηH/(1−β₁)²; EMA momentum 4ηH/(1−β₁)."""
    land = fp.Landscape.quadratic([2.0])
    at = {"x": np.zeros(1)}
    assert SGD(0.01).overdamped_parameter(land, EXACT_NOISE, at)[0, 0] == pytest.approx(0.08)
    assert Momentum(0.01).overdamped_parameter(land, EXACT_NOISE, at)[0, 0] == pytest.approx(8.0)
    assert Momentum(0.01, form="ema").overdamped_parameter(land, EXACT_NOISE, at)[0, 0] == pytest.approx(0.8)
    assert SGD(0.01).check_overdamped(land, EXACT_NOISE, at) == pytest.approx(0.08)
    with pytest.warns(FPSolverWarning, match="dynamics='inertial'"):
        Momentum(0.01).check_overdamped(land, EXACT_NOISE, at)


def test_models_carry_the_learning_rate_as_iteration_time():
    """Outputs convert SGD time to iterations with it (t = k·lr)."""
    land = fp.Landscape.quadratic([1.0])
    assert SGD(0.03).model(land).iteration_time == 0.03
    assert Momentum(0.02).model(land, dynamics="inertial").iteration_time == 0.02
