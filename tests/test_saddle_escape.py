"""Saddle escape: closed forms per optimizer, the exact discrete chain, the simulator and the PDE."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

import fpsolver as fp
from fpsolver import theory
from fpsolver.errors import InputError
from fpsolver.noise import HessianNoise
from fpsolver.optimizers import Momentum
from fpsolver.simulate import saddle_msd


def test_general_saddle_msd_reduces_to_the_sgd_and_adam_closed_forms():
    """THEORY §4 forms are the delta = 0, eps = 0 cases of optimizer_saddle_msd (same formula: 1e-12)."""
    t = np.array([0.1, 0.5, 2.0])
    np.testing.assert_allclose(theory.optimizer_saddle_msd("sgd", t, -1.5, 0.04, 2), theory.saddle_msd_sgd(t, -1.5, 0.04, 2), rtol=1e-12)
    np.testing.assert_allclose(theory.optimizer_saddle_msd("adam", t, -1.5, 0.04, 2, eps=0.0), theory.saddle_msd_adam(t, -1.5, 0.04, 2), rtol=1e-12)
    # PyTorch momentum's overdamped limit is SGD with lr/(1 - beta1), run 1/(1 - beta1) times longer in its own lr's time
    np.testing.assert_allclose(theory.optimizer_saddle_msd("momentum", t, -1.5, 0.004, 2), theory.saddle_msd_sgd(10 * t, -1.5, 0.04, 2), rtol=1e-12)
    with pytest.raises(InputError, match="dynamics"):
        theory.optimizer_saddle_msd("sgd", t, -1.0, 0.1, 1, dynamics="ballistic")


def test_adam_saddle_msd_is_flat_in_the_eigenvalue_and_sgd_is_proportional_to_it():
    """At h t << 1 the overdamped MSD is A lr C t: SGD's (lr/B) h t grows with h, Adam's (A C = sqrt(C)... with
    A = 1/sqrt(C), C = h/B) is lr t sqrt(h/B)/sqrt(h/B) = lr t: between h = 1e-3 and 1e-1 (delta = 0, t = 0.01)
    SGD's changes 100x (2 % allowed for e^(2ht) − 1 ≠ 2ht), Adam's by less than 2 %."""
    sgd = [float(theory.optimizer_saddle_msd("sgd", 0.01, -h, 1e-3, 1)) for h in (1e-3, 1e-1)]
    adam = [float(theory.optimizer_saddle_msd("adam", 0.01, -h, 1e-3, 1, eps=0.0)) for h in (1e-3, 1e-1)]
    assert sgd[1] / sgd[0] == pytest.approx(100, rel=0.02)
    assert adam[1] / adam[0] == pytest.approx(1, abs=0.02)


def test_discrete_heavy_ball_recursion_is_exact_for_sgd_and_tends_to_the_inertial_model():
    """beta1 = 0: the closed discrete form eta^2 C ((1+eta h)^(2k) - 1)/((1+eta h)^2 - 1) to 1e-12. PyTorch momentum
    without bias correction at t = 1, h = 0.01: the inertial covariance is the eta -> 0 limit, error O(eta)
    (measured 1.6e-2, 1.5e-3, 1.4e-4 at eta = 1e-2, 1e-3, 1e-4; at h = 1 it is 0.29, 0.095, 0.012: the
    growth-rate error O(eta h) compounds in the exponent)."""
    eta, h, c = 0.05, 2.0, 1.0005
    k = np.arange(41)
    g = 1 + eta * h
    np.testing.assert_allclose(theory.heavy_ball_saddle_msd(40, -h, eta, c)[1:], (eta**2 * c * (g ** (2 * k) - 1) / (g**2 - 1))[1:], rtol=1e-12)
    errors = []
    for eta in (1e-2, 1e-3):
        steps = int(round(1 / eta))
        chain = theory.heavy_ball_saddle_msd(steps, -0.01, eta, 1.0, beta1=0.9)[-1]
        continuous = theory.inertial_covariance(1.0, -0.01, eta, 0.1 / eta, eta / 2)[0, 0]
        errors.append(abs(chain / continuous - 1))
    assert errors[1] < errors[0] / 8


@pytest.mark.slow
def test_simulated_momentum_follows_the_exact_discrete_chain_at_a_saddle():
    """The simulator runs exactly that chain (C = (h + delta)/B is constant on a quadratic saddle): 20000
    particles, relative standard error of an MSD sqrt(2/N) = 1 %; tolerance 4 %."""
    eta, h, delta = 0.01, 0.5, 1e-3
    land = fp.Landscape.from_expression(f"-{h}*x**2/2")
    sim = saddle_msd(Momentum(eta, 1), land, [0.0], noise=HessianNoise(delta), particles=20000, iterations=200, seed=4).msd.values[:, 0]
    exact = theory.heavy_ball_saddle_msd(200, -h, eta, h + delta, beta1=0.9)
    np.testing.assert_allclose(sim[[50, 100, 200]], exact[[50, 100, 200]], rtol=0.04)


@pytest.mark.slow
def test_phase_space_pde_at_a_saddle_follows_the_inertial_covariance():
    """EMA momentum (lr 0.05: M = 0.5, gamma = 2) at the saddle of −x²/2, from a Gaussian (σ = 0.05 in x and r):
    the PDE's covariance is e^{At} Σ₀ e^{Aᵀt} + the noise part (theory.inertial_covariance), A = [[0, 1], [h/M, −γ]].
    Measured relative errors of Var θ: 6e-4 on 150 × 90 cells, 8e-5 on 300 × 180 (third order); tolerance 2e-3."""
    eta, h, delta = 0.05, 1.0, 1e-3
    model = Momentum(eta, 1, form="ema").model(fp.Landscape.from_expression(f"-{h}*x**2/2"), HessianNoise(delta), dynamics="inertial")
    mass, damping, diffusion = eta / 0.1, 0.1 / eta, eta / 2 * (h + delta)
    grid = fp.Grid.uniform(x=(-1.5, 1.5, 150), r=(-1.5, 1.5, 90))
    out = fp.FokkerPlanck(model, grid).evolve(fp.gaussian(grid, [0.0, 0.0], [0.05, 0.05]), t_end=1.0, dt=0.005, save_every=0.5)
    x, r = grid.mesh()

    def covariance(i: int) -> np.ndarray:
        p = out["p"].isel(time=i).values * grid.cell_volumes
        p = p / p.sum()
        return np.array([[np.sum(p * x * x), np.sum(p * x * r)], [np.sum(p * x * r), np.sum(p * r * r)]])

    drift = np.array([[0.0, 1.0], [h / mass, -damping]])
    for i, t in ((1, 0.5), (2, 1.0)):
        flow = expm(drift * t)
        exact = flow @ covariance(0) @ flow.T + theory.inertial_covariance(t, -h, mass, damping, diffusion)
        np.testing.assert_allclose(np.diag(covariance(i)), np.diag(exact), rtol=2e-3)
