"""Saddle escape per optimizer: MSD along the unstable direction after SGD time t against |λ| = h.

Usage::

    PYTHONPATH=. python benchmarks/saddle_escape.py [--particles 2000] [--figure docs/figures/saddle_escape.png]

Every optimizer starts at rest at the saddle with Hessian noise C = (|H| + δ)/B (δ = 1e-3, B = 1,
lr = 1e-3, t = 1, i.e. 1000 iterations). SGD, Adam and EMA momentum (the same chain as PyTorch momentum at lr·(1 − β₁), so its
effective step matches SGD's) run on L = −h x²/2; Adai
on L = x²/2 − h y²/2 (with one parameter Adai is EMA momentum; its adaptive inertia needs a second,
stable direction: β₁ of the flat unstable direction is 1 − β₀·2(h+δ)/(1+h+2δ), near its cap
1 − 10⁻³ when h ≪ 1). Lines: the closed forms of fpsolver.theory (``optimizer_saddle_msd``:
overdamped for SGD, inertial with P frozen at the saddle for Adam and momentum, inertial with
Adai's β₁ for Adai; dashed: the exact discrete Adai chain with β₁ frozen, bias correction
included, ``theory.heavy_ball_saddle_msd``). Markers: the simulator (the real update rules, 95 % intervals smaller than
the markers) and, for SGD and Adam at h ≤ 1, the overdamped PDE evolved from a narrow Gaussian
(its initial spread's deterministic growth σ₀² e^{2λt} subtracted). Prints the table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fpsolver as fp
from fpsolver import theory
from fpsolver.noise import HessianNoise
from fpsolver.optimizers import SGD, Adai, Adam, Momentum
from fpsolver.simulate import saddle_msd

LR, BATCH, DELTA, T_END = 1e-3, 1, 1e-3, 1.0
CURVATURES = [float(h) for h in np.logspace(-2, 0.5, 6)]
NOISE = HessianNoise(DELTA)


def closed_form(label: str, h: float) -> float:
    """The linearised model's MSD at T_END (SGD time)."""
    if label == "sgd":
        return float(theory.optimizer_saddle_msd("sgd", T_END, -h, LR, BATCH, delta=DELTA))
    if label == "adam":
        return float(theory.optimizer_saddle_msd("adam", T_END, -h, LR, BATCH, delta=DELTA, dynamics="inertial"))
    if label == "momentum":
        return float(theory.optimizer_saddle_msd("momentum", T_END, -h, LR, BATCH, delta=DELTA, dynamics="inertial", form="ema"))
    vhat = np.array([1.0 + DELTA, h + DELTA]) / BATCH
    beta1 = float(Adai(LR, BATCH).inertia(vhat[:, None])[1, 0])
    return float(theory.inertial_covariance(T_END, -h, LR / (1 - beta1), (1 - beta1) / LR, LR * vhat[1] / 2)[0, 0])


def adai_discrete(h: float) -> float:
    """The exact discrete Adai chain with β₁ frozen at its saddle value, bias correction included."""
    vhat = np.array([1.0 + DELTA, h + DELTA]) / BATCH
    beta1 = float(Adai(LR, BATCH).inertia(vhat[:, None])[1, 0])
    steps = int(round(T_END / LR))
    return float(theory.heavy_ball_saddle_msd(steps, -h, LR, vhat[1], beta1, 1 - beta1, 1.0, bias_correction=True)[-1])


def simulated(label: str, h: float, particles: int, seed: int) -> float:
    iterations = int(round(T_END / LR))
    if label == "adai":
        land = fp.Landscape.from_expression(f"x**2/2 - {h!r}*y**2/2")
        ds = saddle_msd(Adai(LR, BATCH), land, [0.0, 0.0], noise=NOISE, particles=particles, iterations=iterations, seed=seed)
        return float(ds.msd.isel(iteration=-1).sel(parameter="y"))
    opt = {"sgd": SGD(LR, BATCH), "adam": Adam(LR, BATCH), "momentum": Momentum(LR, BATCH, form="ema")}[label]
    ds = saddle_msd(opt, fp.Landscape.from_expression(f"-{h!r}*x**2/2"), [0.0], noise=NOISE, particles=particles, iterations=iterations, seed=seed)
    return float(ds.msd.isel(iteration=-1, parameter=0))


def pde(label: str, h: float) -> float:
    """Overdamped PDE (P frozen at the saddle for Adam) from a Gaussian of σ₀ = √(MSD)/20."""
    opt = {"sgd": SGD(LR, BATCH), "adam": Adam(LR, BATCH)}[label]
    land = fp.Landscape.from_expression(f"-{h!r}*x**2/2")
    model = opt.model(land, NOISE, freeze_at=[0.0])
    rate = h * (1.0 if label == "sgd" else 1 / np.sqrt((h + DELTA) / BATCH))
    spread = np.sqrt(closed_form("sgd", h) if label == "sgd" else float(theory.optimizer_saddle_msd("adam", T_END, -h, LR, BATCH, delta=DELTA)))
    s0 = spread * np.exp(-rate * T_END) / 20
    half = 10 * spread
    grid = fp.Grid.uniform(x=(-half, half, 800))
    out = fp.FokkerPlanck(model, grid).evolve(fp.gaussian(grid, 0.0, s0), t_end=T_END, dt=T_END / 200, save_every=T_END)
    x, w = grid.coords["x"], grid.cell_volumes

    def second(i: int) -> float:
        p = out["p"].isel(time=i).values * w
        return float(np.sum(p * x**2) / np.sum(p))

    return second(-1) - second(0) * np.exp(2 * rate * T_END)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--particles", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--figure", default=None)
    args = parser.parse_args()
    labels = ["sgd", "adam", "momentum", "adai"]
    rows = {}
    print(f"{'optimizer':<10}{'h':>8}{'closed form':>14}{'simulator':>14}{'PDE':>14}{'discrete':>14}{'sim s':>7}")
    for label in labels:
        for h in CURVATURES:
            t0 = time.perf_counter()
            sim = simulated(label, h, args.particles, args.seed)
            t1 = time.perf_counter()
            exact = closed_form(label, h)
            ref = pde(label, h) if label in ("sgd", "adam") and h <= 1.0 else np.nan
            rows[label, h] = (exact, sim, ref)
            discrete = adai_discrete(h) if label == "adai" else np.nan
            print(f"{label:<10}{h:>8.3g}{exact:>14.5g}{sim:>14.5g}{ref:>14.5g}{discrete:>14.5g}{t1 - t0:>7.1f}", flush=True)
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fine = np.logspace(-2, 0.5, 51)
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        names = {"sgd": "SGD", "adam": "Adam (β₁ = 0.9)", "momentum": "Momentum (EMA β₁ = 0.9 ≡ PyTorch at lr·(1−β₁))", "adai": "Adai (2-D, flat direction)"}
        for label, colour in zip(labels, ["C0", "C1", "C2", "C3"]):
            ax.plot(fine, [closed_form(label, h) for h in fine], color=colour, label=names[label])
            ax.plot(CURVATURES, [rows[label, h][1] for h in CURVATURES], "o", color=colour, mfc="none")
            if label == "adai":
                ax.plot(fine, [adai_discrete(h) for h in fine], "--", color=colour, label="Adai, discrete chain, β₁ frozen")
            pde_points = [(h, rows[label, h][2]) for h in CURVATURES if np.isfinite(rows[label, h][2])]
            if pde_points:
                ax.plot(*zip(*pde_points), "x", color=colour, ms=8)
        ax.plot([], [], "ko", mfc="none", label="simulator (real updates)")
        ax.plot([], [], "kx", label="PDE (overdamped)")
        ax.set(xscale="log", yscale="log", xlabel="|λ| (negative Hessian eigenvalue at the saddle)",
               ylabel=f"MSD along the unstable direction at t = {T_END:g} (SGD time)",
               title=f"Saddle escape: lr = {LR:g}, B = {BATCH}, C = (|H| + {DELTA:g})/B")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.figure, dpi=120)
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
