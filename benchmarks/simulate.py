"""Throughput of the discrete-time ensembles (fpsolver.simulate), and what a PDE answer saves.

Usage::

    python benchmarks/simulate.py               # median of 3 runs
    python benchmarks/simulate.py --repeat 5 --particles 10000 100000

Rows 0: time of one ``Ensemble.step`` on the flat-minima experiment's landscape (k = 4,
Hessian noise with delta = 8, lr = 0.02, 20000 particles), in ms per step and ns per
particle-step. Rows 1: particle-iterations per second of each optimizer's update rule with Hessian noise on
the 2-D Styblinski–Tang function (full |H| is diagonal there; the rotated quadratic row uses a
full covariance and a Cholesky factor per particle). Rows 2: one escape time (GD + white
noise, cubic well, ΔL/T = 2) from the ensemble and from the 1-D PDE, with the error of each
against the PDE on 4000 cells.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import fpsolver as fp
from fpsolver.noise import HessianNoise
from fpsolver.optimizers import OPTIMIZERS, GDNoise
from fpsolver.simulate import Ensemble, escape_times


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def flat_minima_step(repeat: int, particles: int = 20_000, steps: int = 200) -> None:
    land = fp.Landscape.from_expression("x**4/4 - x**2/2").with_sharpness(4.0)
    print(f"{'optimizer':<14}{'particles':>10}{'ms/step':>10}{'ns/particle-step':>18}   (flat minima, k = 4)")
    for name, options in (("sgd", {}), ("momentum", {"form": "ema"}), ("adam", {}), ("adai", {})):
        ens = Ensemble(OPTIMIZERS[name](0.02, 1, **options), land, [-0.5], HessianNoise(8.0), particles=particles, seed=0)

        def run() -> None:
            for _ in range(steps):
                ens.step()

        t = median_time(run, repeat) / steps
        print(f"{name:<14}{particles:>10}{t * 1e3:>10.3f}{t / particles * 1e9:>18.1f}")
    print()


def throughput(repeat: int, sizes: list[int], steps: int = 50) -> None:
    land = fp.Landscape.styblinski_tang()
    c, s = np.cos(0.4), np.sin(0.4)
    rotated = fp.Landscape.quadratic(np.array([[c, -s], [s, c]]) @ np.diag([2.0, 0.5]) @ np.array([[c, s], [-s, c]]))
    print(f"{'optimizer':<14}{'landscape':<16}{'particles':>10}{'Mparticle-steps/s':>20}")
    cases = [(name, land, "styblinski_tang") for name in OPTIMIZERS if name != "gd_noise"] + [("sgd", rotated, "rotated quad.")]
    for name, landscape, label in cases:
        opt = OPTIMIZERS[name](0.01, 4)
        for n in sizes:
            def run() -> None:
                ens = Ensemble(opt, landscape, [-2.9, -2.9] if label == "styblinski_tang" else [0.0, 0.0], HessianNoise(), particles=n, seed=0)
                for _ in range(steps):
                    ens.step()

            t = median_time(run, repeat)
            print(f"{name:<14}{label:<16}{n:>10}{n * steps / t / 1e6:>20.2f}")


def escape(repeat: int) -> None:
    eta = 0.01
    opt = GDNoise(eta, sigma=np.sqrt(2 * 0.5 / eta))
    land = fp.Landscape.cubic_well()
    reference = fp.FokkerPlanck(opt.model(land), fp.Grid.uniform(x=(-1.5, 2.0, 4000))).mfpt(start=[0.0], target="x >= 1.5")
    print(f"\nescape time, cubic well, T = 0.5 (reference PDE 4000 cells: {reference:.5f} SGD time)")
    for cells in (350, 700):
        model = opt.model(land)
        grid = fp.Grid.uniform(x=(-1.5, 2.0, cells))
        value = fp.FokkerPlanck(model, grid).mfpt(start=[0.0], target="x >= 1.5")
        t = median_time(lambda: fp.FokkerPlanck(opt.model(land), grid).mfpt(start=[0.0], target="x >= 1.5"), repeat)
        print(f"  PDE {cells:>5} cells     error {abs(value / reference - 1):.1e}   {t:8.3f} s")
    for particles in (1000, 4000):
        result = {}

        def run() -> None:
            result["ds"] = escape_times(opt, land, [0.0], "x >= 1.5", particles=particles, max_iterations=100_000, seed=1)

        t = median_time(run, repeat)
        ds = result["ds"]
        half = float(ds.mean_escape_time_ci[1] - ds.mean_escape_time) / float(ds.mean_escape_time)
        bias = float(ds.mean_escape_time) / reference - 1
        print(f"  simulator {particles:>6} particles  95% CI ±{half:.1e}, off by {bias:+.1e}   {t:8.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--particles", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    flat_minima_step(args.repeat)
    throughput(args.repeat, args.particles)
    escape(args.repeat)


if __name__ == "__main__":
    main()
