"""Simulator against PDE: each optimizer's discrete-time escape bias as the effective step ε → 0.

Usage::

    PYTHONPATH=. python benchmarks/sim_vs_pde.py                       # every case, ε = 0.04, 0.02, 0.01
    PYTHONPATH=. python benchmarks/sim_vs_pde.py --only adam --steps 0.02 0.01 --particles 8000

The problems are :func:`fpsolver.validation.escape_case` (a double well self-similar in ε, so
the continuous model's escape time is the same for every ε and the difference is the discrete
chain's). One row per case and ε: the PDE's mean first-passage time (SGD time), the ensemble's
mean with its 95 % interval, the relative bias and the wall times. ``--grid`` also prints the
PDE at a coarser grid (half the cells per axis) to show its error is far below the interval.
"""

from __future__ import annotations

import argparse
import time

from fpsolver.grid import Grid
from fpsolver.problem import FokkerPlanck
from fpsolver.validation import compare_escape, escape_case

#: (label, kind, dynamics, hyperparameters)
CASES = [
    ("sgd", "sgd", "overdamped", {}),
    ("momentum", "momentum", "inertial", {}),
    ("momentum-ema", "momentum", "inertial", {"form": "ema"}),
    ("adai", "adai", "inertial", {}),
    ("adam", "adam", "inertial", {}),
    ("adam-overdamped", "adam", "overdamped", {}),
    ("sadam", "sadam", "inertial", {}),
    ("adamomentum", "adamomentum", "inertial", {}),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="+", default=None)
    parser.add_argument("--steps", type=float, nargs="+", default=[0.04, 0.02, 0.01])
    parser.add_argument("--particles", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--grid", action="store_true")
    args = parser.parse_args()
    print(f"{'case':<16}{'eps':>6}{'lr':>10}{'PDE tau':>10}{'sim tau':>10}{'95% CI':>20}{'bias':>8}{'iters':>8}{'PDE s':>7}{'sim s':>7}")
    for label, kind, dynamics, hyper in CASES:
        if args.only and label not in args.only:
            continue
        for step in args.steps:
            case = escape_case(kind, step, dynamics, **hyper)
            t0 = time.perf_counter()
            tau = float(FokkerPlanck(case.model, case.grid).mfpt(start=case.start + [0.0] * (case.grid.ndim - 1), target=case.target))
            t1 = time.perf_counter()
            ds = compare_escape(case, particles=args.particles, seed=args.seed, pde=lambda _: tau)
            t2 = time.perf_counter()
            ci = f"[{float(ds.ci_low):.2f}, {float(ds.ci_high):.2f}]"
            print(
                f"{label:<16}{step:>6g}{case.optimizer.lr:>10.4g}{tau:>10.3f}{float(ds.simulated):>10.3f}{ci:>20}"
                f"{float(ds.bias):>+8.3f}{float(ds.mean_escape_iterations):>8.0f}{t1 - t0:>7.1f}{t2 - t1:>7.1f}",
                flush=True,
            )
            if args.grid:
                coarse = Grid.uniform(**{a.name: (a.lo, a.hi, a.n // 2) for a in case.grid})
                value = float(FokkerPlanck(case.model, coarse).mfpt(start=case.start + [0.0] * (case.grid.ndim - 1), target=case.target))
                print(f"{'':<16}{'':>6}  PDE on {coarse.shape}: {value:.3f} ({value / tau - 1:+.1e})", flush=True)


if __name__ == "__main__":
    main()
