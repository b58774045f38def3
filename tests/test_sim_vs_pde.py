"""The optimizers' real update rules (fpsolver.simulate) against their continuous models (the PDE).

Escape times use :func:`fpsolver.validation.escape_case`: a double well self-similar in the
effective step ε = η A_a H_a, so the PDE's escape time is the same for every ε and the
ensemble's difference from it is the discrete chain's bias. Measured with 20000 particles
(``benchmarks/sim_vs_pde.py``, 95 % intervals ±1.3 %) at ε = 0.16, 0.08, 0.04:

- SGD −11.1 %, −3.7 %, −2.5 % (at least first order, |bias| ≤ 0.7ε): ε = 0.02, slack 1.5 %;
- PyTorch momentum +0.5 %, −0.7 %, −0.4 %; Adai −6.9 %, −1.9 %, −0.6 %: ε = 0.04, slack 1 %;
- Adam (inertial, v̂ frozen) +11.5 %, +6.6 %, +3.7 % (halving ratio 1.76, so ≈ +2.1 % at 0.02),
  SAdam alike, AdaMomentum −6.7 %, −2.6 %, −0.8 %: ε = 0.02, slack 2.5 %.

Each test asks that the PDE lie in the ensemble's 95 % interval widened by ``slack``, and that
a plausible wrong model (the wrong convention, a 10× mass at the same γM, the overdamped
limit) lie outside it. One seed per test, stated in the table.
"""

from __future__ import annotations

import numpy as np
import pytest

import fpsolver as fp
from fpsolver.errors import InputError
from fpsolver.models import Inertial
from fpsolver.noise import HessianNoise
from fpsolver.optimizers import Adai, Adam, Momentum
from fpsolver.problem import FokkerPlanck
from fpsolver.simulate import Ensemble
from fpsolver.validation import compare_escape, escape_case


def _mfpt(case) -> float:
    start = case.start + [0.0] * (case.grid.ndim - 1)
    return float(FokkerPlanck(case.model, case.grid).mfpt(start=start, target=case.target))


def _heavier(case) -> float:
    """The PDE escape time of the case's inertial model with a 10x mass and a 10x smaller damping (same γM,
    same temperature), on a velocity axis √10 narrower (the Maxwellian's width)."""
    m = case.model
    model = Inertial(m.landscape, mass=[10 * case.extra["mass"]], damping=[case.extra["damping"] / 10], diffusion=m.diffusion_spec, iteration_time=m.iteration_time)
    x, r = case.grid
    grid = fp.Grid.uniform(x=(x.lo, x.hi, x.n), r=(r.lo / np.sqrt(10), r.hi / np.sqrt(10), r.n))
    return float(FokkerPlanck(model, grid).mfpt(start=case.start + [0.0], target=case.target))


def _stratonovich(case) -> float:
    """The PDE escape time of the Stratonovich model."""
    return _mfpt(escape_case(case.optimizer.name, case.step, convention="stratonovich"))


def _overdamped(case) -> float:
    """The PDE escape time of the overdamped limit."""
    form = {"form": case.optimizer.form} if hasattr(case.optimizer, "form") else {}
    return _mfpt(escape_case(case.optimizer.name, case.step, "overdamped", **form))


# (id, kind, dynamics, hyperparameters, eps, particles, slack, seed, wrong model)
ESCAPES = [
    ("sgd", "sgd", "overdamped", {}, 0.02, 6000, 0.015, 1, _stratonovich),
    ("momentum", "momentum", "inertial", {}, 0.04, 6000, 0.01, 2, _heavier),
    ("momentum-ema", "momentum", "inertial", {"form": "ema"}, 0.04, 6000, 0.01, 3, _heavier),
    ("adai", "adai", "inertial", {}, 0.04, 6000, 0.01, 4, _heavier),
    ("adam", "adam", "inertial", {}, 0.02, 5000, 0.025, 5, _overdamped),
    ("sadam", "sadam", "inertial", {}, 0.02, 5000, 0.025, 6, _overdamped),
    ("adamomentum", "adamomentum", "inertial", {}, 0.02, 5000, 0.025, 7, _overdamped),
]


@pytest.mark.slow
@pytest.mark.parametrize("label, kind, dynamics, hyper, eps, particles, slack, seed, wrong", ESCAPES, ids=[e[0] for e in ESCAPES])
def test_simulated_escape_time_agrees_with_the_pde_and_excludes_a_wrong_model(label, kind, dynamics, hyper, eps, particles, slack, seed, wrong):
    case = escape_case(kind, eps, dynamics, **hyper)
    ds = compare_escape(case, particles=particles, seed=seed)
    low, high = float(ds.ci_low), float(ds.ci_high)
    tau = float(ds.pde)
    assert float(ds.half_width) < 0.035
    assert low - slack * tau < tau < high + slack * tau, ds
    other = wrong(case)
    assert not low - slack * tau < other < high + slack * tau, (other, ds)


def test_validation_family_is_self_similar_in_the_effective_step():
    """The continuous model does not depend on eps: the overdamped PDE escape time is the same to 1e-9 at eps = 0.01 and 0.04."""
    taus = [_mfpt(escape_case("sgd", eps)) for eps in (0.01, 0.04)]
    assert taus[0] == pytest.approx(taus[1], rel=1e-9)
    adam = escape_case("adam", 0.04)
    assert adam.optimizer.lr == pytest.approx(0.04 * 0.8, rel=1e-6)  # eps = lr * P * H_a with P = 1/sigma


INERTIAL = [
    ("momentum", Momentum(0.002, 1), None),
    ("momentum-ema", Momentum(0.02, 1, form="ema"), None),
    ("adai", Adai(0.02, 1), None),
    ("adam", Adam(0.02, 1), [0.0]),
]


@pytest.mark.slow
@pytest.mark.parametrize("label, optimizer, freeze", INERTIAL, ids=[c[0] for c in INERTIAL])
def test_simulated_stationary_variances_against_the_phase_space_pde(label, optimizer, freeze):
    """Quadratic H = 1 with Hessian noise (delta = 1e-3), ηA H = 0.02. Position: the phase-space PDE's
    Var θ lies in the ensemble's 95 % interval (4000 particles x 1000 samples, about ±2 %) widened by
    the O(ηAH) bias (2.5 %). Velocity r = Δθ/η: the discrete heavy ball's Var r is 2/(1+β₁) times the
    inertial model's for *any* η (the AR(1) m' = β₁m + β₃ξ has variance β₃²C/(1−β₁²), the OU limit
    β₃²C/(2(1−β₁))): 5.3 % high at β₁ = 0.9, a fixed error of the map, checked to the same tolerance."""
    land = fp.Landscape.quadratic([1.0])
    noise = HessianNoise(1e-3)
    model = optimizer.model(land, noise, dynamics="inertial", freeze_at=freeze)
    eta = optimizer.lr
    b1, b3, p = (float(np.ravel(c)[0]) for c in optimizer.heavy_ball(land, noise, {"x": np.zeros(1)}))  # at the minimum (= freeze_at)
    var_x = eta * b3 * p / (1 - b1) * (1 + 1e-3) / 2  # T/H
    var_r = var_x * b3 * p / eta  # T/M, M = eta/(b3 P)
    grid = fp.Grid.uniform(x=(-7 * np.sqrt(var_x), 7 * np.sqrt(var_x), 120), r=(-8 * np.sqrt(var_r), 8 * np.sqrt(var_r), 80))
    density = FokkerPlanck(model, grid).stationary().values * grid.cell_volumes
    density /= density.sum()
    x, r = grid.mesh()
    pde_x, pde_r = float(np.sum(density * x**2)), float(np.sum(density * r**2))

    # The ensemble: r_k = (θ_{k+1} − θ_k)/η, so record consecutive positions.
    ens = Ensemble(optimizer, land, [0.0], noise, particles=4000, seed=13)
    for _ in range(int(20 / (eta * b3 * p / (1 - b1)))):
        ens.step()
    xs, rs = [], []
    for _ in range(1000):
        before = ens.theta[0].copy()
        ens.step()
        xs.append(ens.theta[0] ** 2)
        rs.append(((ens.theta[0] - before) / eta) ** 2)
    per_x, per_r = np.mean(xs, axis=0), np.mean(rs, axis=0)
    for per, pde, factor in ((per_x, pde_x, 1.0), (per_r, pde_r, 2 / (1 + b1))):
        mean, half = per.mean(), 1.96 * per.std(ddof=1) / np.sqrt(per.size)
        assert half < 0.03 * mean
        assert mean - half - 0.025 * mean < factor * pde < mean + half + 0.025 * mean, (label, mean, half, pde, factor)


@pytest.mark.parametrize(
    "kind, step, message",
    [("samsgrad", 0.01, "optimizer kind"), ("gd_noise", 0.01, "optimizer kind"), ("lion", 0.01, "optimizer kind"), ("sgd", 0.0, "effective step"), ("sgd", 0.5, "effective step")],
)
def test_escape_case_refuses_what_it_cannot_build(kind, step, message):
    with pytest.raises(InputError, match=message):
        escape_case(kind, step)
