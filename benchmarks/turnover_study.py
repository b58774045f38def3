"""Grid study of the Kramers turnover in phase space: λ₁ of L = x⁴/4 − x²/2, M = 1, to 1e-3 relative.

Usage::

    PYTHONPATH=. python benchmarks/turnover_study.py [--temperatures 0.05 0.025] [--gammas 0.03 1] [--scale 1]
    PYTHONPATH=. python benchmarks/turnover_study.py --references    # recompute the Hermite–Fourier references (minutes)

For every temperature T and damping γ (10 values log-spaced over [0.03, 30]) the script solves
the Klein–Kramers λ₁ on three grids, each 1.5× finer than the last in both x and r (x on
[−1.7, 1.7], r on ±6.05√T), and prints

* per grid: cells, λ₁, the relative error against the independent Hermite-function × Fourier
  reference (``tests/hermite_reference.py``; :data:`REFERENCES`, with the relative spread of two
  settings as its own uncertainty) and the seconds (set-up, factorisation, eigen-solve);
* the Richardson extrapolation of the three grids with the observed order
  :math:`p = \\ln[(λ_1 - λ_2)/(λ_2 - λ_3)]/\\ln 1.5` and its error;
* the theory: k = λ₁/2 (the well-to-well rate of the symmetric double well) against
  Mel'nikov–Meshkov A(Δ)²/A(2Δ)·k_Kramers (THEORY.md §5), Δ = γS_b/T, and the ratio.

Base grids grow as γ falls (the energy-diffusion boundary layer along the separatrix), the same
at both temperatures (:func:`base_grid`).
Seconds are wall time on a 2-core machine shared with other jobs: noisy (2–3×).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import fpsolver as fp
from fpsolver import theory

POTENTIAL = "x**4/4 - x**2/2"
#: Barrier 1/4, ω₀ = √2, ω_b = 1, action of the barrier orbit S_b = 4/3 (M = 1).
BARRIER, OMEGA_MIN, OMEGA_BARRIER, ACTION = 0.25, math.sqrt(2.0), 1.0, 4.0 / 3.0
GAMMAS = tuple(float(f"{g:.3g}") for g in np.geomspace(0.03, 30.0, 10))
TEMPERATURES = (0.05, 0.025)
HALF_WIDTH = 1.7
REFINEMENT = 1.5

#: λ₁ from tests/hermite_reference.py (Hermite functions in r × Fourier in x, periodic box
#: [−2, 2]): (T, γ) -> (λ₁ at 192 Fourier points and 1.25·n_H Hermite functions, relative
#: difference to 160 points and n_H functions), n_H = 400 (γ < 0.1), 240 (γ < 1), 120.
REFERENCES: dict[tuple[float, float], tuple[float, float]] = {
    (0.05, 0.03): (6.2685793254e-04, 2.3e-07),
    (0.05, 0.0646): (1.1236609825e-03, 2.3e-13),
    (0.05, 0.139): (1.7824431633e-03, 2.1e-14),
    (0.05, 0.3): (2.2538277808e-03, 1.5e-14),
    (0.05, 0.646): (2.0954593046e-03, 2.0e-14),
    (0.05, 1.39): (1.5019392494e-03, 7.2e-14),
    (0.05, 3.0): (8.5307837308e-04, 1.9e-14),
    (0.05, 6.46): (4.2159835223e-04, 1.8e-14),
    (0.05, 13.9): (1.9888130268e-04, 1.0e-14),
    (0.05, 30.0): (9.2453837092e-05, 5.9e-14),
    (0.025, 0.03): (7.7974307482e-06, 1.0e-05),
    (0.025, 0.0646): (1.2475545060e-05, 5.1e-10),
    (0.025, 0.139): (1.6498012681e-05, 2.0e-12),
    (0.025, 0.3): (1.7014079585e-05, 1.2e-12),
    (0.025, 0.646): (1.4532682593e-05, 1.1e-12),
    (0.025, 1.39): (1.0390601708e-05, 2.8e-12),
    (0.025, 3.0): (5.9698687218e-06, 4.8e-12),
    (0.025, 6.46): (2.9684026215e-06, 2.9e-12),
    (0.025, 13.9): (1.4026672761e-06, 1.8e-12),
    (0.025, 30.0): (6.5231127949e-07, 1.1e-12),
}


def base_grid(temperature: float, damping: float) -> tuple[int, int]:
    """Coarsest (x, r) cells of the study for this point."""
    if damping < 0.1:
        nx, nr = 400, 134
    elif damping < 0.3:
        nx, nr = 300, 100
    elif damping <= 3.0:
        nx, nr = 160, 64
    else:
        nx, nr = 200, 64
    return nx, nr


def lambda1(temperature: float, damping: float, nx: int, nr: int) -> float:
    """λ₁ of the Klein–Kramers operator on an nx × nr grid."""
    width = 6.05 * math.sqrt(temperature)
    model = fp.Inertial(fp.Landscape.from_expression(POTENTIAL), damping=damping, temperature=temperature)
    grid = fp.Grid.uniform(x=(-HALF_WIDTH, HALF_WIDTH, nx), r=(-width, width, nr))
    return float(fp.FokkerPlanck(model, grid).spectrum(k=2)["rate"].values[1])


def richardson(values: list[float]) -> tuple[float, float]:
    """Extrapolation of three values on grids refined by :data:`REFINEMENT`, and the observed order."""
    a, b, c = values
    if (a - b) * (b - c) <= 0:  # not monotone: no order to speak of
        return float("nan"), float("nan")
    order = math.log((a - b) / (b - c)) / math.log(REFINEMENT)
    return c + (c - b) / (REFINEMENT**order - 1), order


def melnikov_meshkov(temperature: float, damping: float) -> float:
    """Well-to-well rate A(Δ)²/A(2Δ)·k_Kramers of the symmetric double well (THEORY.md §5)."""
    delta = damping * ACTION / temperature
    kramers = theory.kramers_moderate(OMEGA_MIN, OMEGA_BARRIER, damping, BARRIER, temperature)
    return theory.turnover_factor(delta) ** 2 / theory.turnover_factor(2 * delta) * kramers


def error(value: float, reference: float | None) -> float:
    return abs(value / reference - 1) if reference else float("nan")


def study(temperatures: tuple[float, ...], gammas: tuple[float, ...], scale: float) -> None:
    print(f"{'T':>6} {'gamma':>7} {'grid (x*r)':>12} {'lambda_1':>16} {'rel.err':>9} {'seconds':>8}  note", flush=True)
    for temperature in temperatures:
        for damping in gammas:
            reference = REFERENCES.get((temperature, damping), (None, None))[0]
            nx0, nr0 = base_grid(temperature, damping)
            values = []
            for level in range(3):
                nx = 2 * round(nx0 * scale * REFINEMENT**level / 2)
                nr = 2 * round(nr0 * scale * REFINEMENT**level / 2)
                start = time.perf_counter()
                values.append(lambda1(temperature, damping, nx, nr))
                seconds = time.perf_counter() - start
                print(f"{temperature:>6g} {damping:>7g} {f'{nx}x{nr}':>12} {values[-1]:>16.10g} {error(values[-1], reference):>9.1e} {seconds:>8.1f}", flush=True)
            extrapolated, order = richardson(values)
            print(f"{temperature:>6g} {damping:>7g} {'Richardson':>12} {extrapolated:>16.10g} {error(extrapolated, reference):>9.1e} {'':>8}  observed order {order:.2f}", flush=True)
            best = reference or extrapolated
            mm = melnikov_meshkov(temperature, damping)
            print(f"{temperature:>6g} {damping:>7g} {'theory':>12} {mm:>16.10g} {'':>9} {'':>8}  k = lambda_1/2 over Mel'nikov-Meshkov: {best / 2 / mm:.4f}", flush=True)


def references(temperatures: tuple[float, ...], gammas: tuple[float, ...]) -> None:
    """Recompute :data:`REFERENCES` (needs the repository's tests/ on the path)."""
    from tests.hermite_reference import brinkman_rates

    for temperature in temperatures:
        for damping in gammas:
            n_hermite = 400 if damping < 0.1 else (240 if damping < 1 else 120)
            values = [
                float(brinkman_rates(POTENTIAL, temperature, damping, half_width=2.0, n_x=nx, n_hermite=nh, k=4)[1])
                for nx, nh in ((160, n_hermite), (192, int(1.25 * n_hermite)))
            ]
            print(f"    ({temperature}, {damping}): ({values[1]!r}, {abs(values[0] / values[1] - 1):.1e}),", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--temperatures", type=float, nargs="*", default=list(TEMPERATURES))
    parser.add_argument("--gammas", type=float, nargs="*", default=list(GAMMAS))
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every grid's cells by this")
    parser.add_argument("--references", action="store_true", help="recompute the Hermite-Fourier references instead")
    args = parser.parse_args()
    if args.references:
        references(tuple(args.temperatures), tuple(args.gammas))
    else:
        study(tuple(args.temperatures), tuple(args.gammas), args.scale)


if __name__ == "__main__":
    main()
