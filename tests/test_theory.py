"""Closed-form rate theory and the independent log-domain MFPT quadrature."""

from __future__ import annotations

import numpy as np
import pytest

from fpsolver import theory as th
from fpsolver.errors import InputError

D0, C, B, X0 = 0.3, 2.0, 1.5, 0.4


def exact_state_dependent_mfpt(convention: str) -> float:
    """Zero drift, D = D0 (1 + c x^2), reflecting at 0, absorbing at b, start x0; u = sqrt(c) x.

    Ito: psi = 1; Stratonovich: psi = D^{-1/2}; isothermal: psi = 1/D (THEORY.md §5), giving
    [u atan u - ln(1+u^2)/2], [asinh(u)^2 / 2] and [ln(1+u^2)/2], each over c D0, between u0 and ub.
    """
    u0, ub = np.sqrt(C) * X0, np.sqrt(C) * B
    primitive = {
        "ito": lambda u: u * np.arctan(u) - 0.5 * np.log1p(u * u),
        "stratonovich": lambda u: 0.5 * np.arcsinh(u) ** 2,
        "isothermal": lambda u: 0.5 * np.log1p(u * u),
    }[convention]
    return (primitive(ub) - primitive(u0)) / (C * D0)


def test_free_diffusion_mfpt_in_both_orientations():
    # THEORY.md §7: D = 0.3, reflecting at 0, start 0.5, absorbing at 2: (b^2 - x0^2) / 2D = 6.25
    zero, diff = (lambda x: 0 * x), (lambda x: 0.3 + 0 * x)
    assert th.mfpt_1d(zero, diff, 0.0, 2.0, 0.5) == pytest.approx(6.25, rel=1e-11)
    assert th.mfpt_1d(zero, diff, 2.0, 0.0, 1.5) == pytest.approx(6.25, rel=1e-11)


@pytest.mark.parametrize("convention", ["ito", "stratonovich", "isothermal"])
def test_quadrature_matches_closed_forms_for_state_dependent_diffusion(convention):
    value = th.mfpt_1d(lambda x: 0 * x, lambda x: D0 * (1 + C * x * x), 0.0, B, X0, convention=convention)
    assert value == pytest.approx(exact_state_dependent_mfpt(convention), rel=1e-10)


def test_quadrature_is_finite_at_huge_barriers():
    """Barrier/T = 500: exp(500) overflows nothing in log space; log T - barrier/T tends to a constant."""
    logs = [th.log_mfpt_1d(lambda x: -(x**3 - x), lambda x: 0.25 / r + 0 * x, -2.5, 0.5, -1.0) for r in (100, 500)]
    assert np.all(np.isfinite(logs))
    # Kramers: log T = r + log(2 pi / sqrt(2)) + O(1/r) (MFPT past the barrier = 1/k)
    assert logs[1] - 500 == pytest.approx(np.log(2 * np.pi / np.sqrt(2.0)), abs=5e-3)


def test_kramers_formulas():
    assert th.kramers_overdamped(2.0, 1.0, 0.25, 0.05) == pytest.approx(np.sqrt(2) / (2 * np.pi) * np.exp(-5))
    # 1-D Eyring-Kramers reduces to Kramers
    assert th.eyring_kramers([[2.0]], [[-1.0]], 0.25, 0.05) == pytest.approx(th.kramers_overdamped(2.0, 1.0, 0.25, 0.05))
    # 2-D: an extra stable direction with equal curvature at minimum and saddle changes nothing
    assert th.eyring_kramers(np.diag([2.0, 3.0]), np.diag([-1.0, 3.0]), 0.25, 0.05) == pytest.approx(
        th.kramers_overdamped(2.0, 1.0, 0.25, 0.05)
    )
    with pytest.raises(InputError, match="exactly one negative"):
        th.eyring_kramers(np.eye(2), np.eye(2), 1.0, 1.0)
    # moderate damping: gamma -> 0 gives TST (omega0 / 2 pi) e^{-dU/T}; large gamma gives omega0 omega_b / (2 pi gamma)
    assert th.kramers_moderate(1.0, 2.0, 1e-9, 1.0, 1.0) == pytest.approx(np.exp(-1) / (2 * np.pi), rel=1e-8)
    assert th.kramers_moderate(1.0, 2.0, 1e4, 1.0, 1.0) == pytest.approx(2.0 / (2 * np.pi * 1e4) * np.exp(-1), rel=1e-6)


def test_turnover_factor_limits():
    """A(Delta) ~ Delta for small Delta (energy diffusion) and -> 1 for large Delta."""
    assert th.turnover_factor(1e-4) == pytest.approx(1e-4, rel=0.03)
    # large Delta: ln A ~ -(1/pi) int e^{-Delta(1+x^2)/4} dx = -e^{-Delta/4} / sqrt(pi Delta / 4)
    delta = 50.0
    assert 1 - th.turnover_factor(delta) == pytest.approx(np.exp(-delta / 4) / np.sqrt(np.pi * delta / 4), rel=0.05)
    values = [th.turnover_factor(d) for d in (0.01, 0.1, 1.0, 10.0)]
    assert np.all(np.diff(values) > 0) and all(0 < v < 1 for v in values)


def test_xie_sgd_escape_time_is_the_isothermal_asymptote():
    """C^1 piecewise-quadratic loss (H_a = 2 in the well, |H_b| = 1 at the top, barrier 1) with
    SGD noise D = (eta/2B)|L''|, which jumps where the pieces meet: the exact isothermal MFPT past
    the barrier over Xie et al.'s tau tends to 1 as 2B dL/eta grows (measured 0.985, 0.9992, 1 - 4e-7
    at 20, 40, 80). The quadrature must add the (1 - s) ln-jump of D at the junction."""
    ha, hb, height = 2.0, 1.0, 1.0
    xs = np.sqrt(2 * height * hb / (ha * (ha + hb)))
    top = xs + ha * xs / hb

    def grad(x):
        return np.where(x < xs, ha * x, -hb * (x - top))

    ratios = []
    for exponent in (20, 40, 80):
        c = height / exponent  # eta / 2B
        log_tau = th.log_mfpt_1d(lambda x: -grad(x), lambda x: c * np.where(x < xs, ha, hb), -3.0, top + 0.5, 0.0, convention="isothermal", breakpoints=[xs])
        ratios.append(np.exp(log_tau - np.log(th.xie_sgd_escape_time(height, ha, hb, 1.0, 1 / (2 * c)))))
    assert abs(ratios[0] - 1) < 0.02 and abs(ratios[1] - 1) < 2e-3 and abs(ratios[2] - 1) < 1e-5, ratios
    # the share s defaults to |H_b| / (H_a + |H_b|) and only enters the exponent
    assert th.xie_sgd_escape_time(1.0, 2.0, 1.0, 0.1, 10.0) == pytest.approx(th.xie_sgd_escape_time(1.0, 2.0, 1.0, 0.1, 10.0, share=1 / 3))
    with pytest.raises(InputError, match="share"):
        th.xie_sgd_escape_time(1.0, 2.0, 1.0, 0.1, 10.0, share=1.5)
