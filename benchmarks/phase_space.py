"""Benchmarks of the Klein–Kramers (phase-space) solver; prints a table of error, median seconds and peak memory.

Usage::

    PYTHONPATH=. python benchmarks/phase_space.py [--repeat 3] [--only p4 turnover curve rates 4d]

Problems:

* **P4** (shared/PERFORMANCE.md): U = 4(x²−1)², γ = M = T = 1 on [−2.5, 2.5] × [−6, 6]; λ₁ against
  the Hermite–Fourier reference of ``tests/hermite_reference.py`` (0.0222907925, stable to 1e-9).
* **Turnover**: L = x⁴/4 − x²/2, M = 1, T = 0.05 on [−1.9, 1.9] × [−1.35, 1.35]; λ₁ at a few γ
  against the same reference (settings and their agreement in ``REFERENCES``).
* **Rates**: escape rate (mfpt and committor) of the same well at barrier/T = 10 … 45 (rates
  6e-6 … 4e-21), γ = 1, against each other and Langer–Kramers.
* **4-D**: L = x⁴/4 − x²/2 + y² + c·x·y on [−1.9, 1.9] × [−1.4, 1.4] × [−2, 2]², γ = M = 1,
  T = 0.1, n⁴ cells for n = 24, 32, 40, c = 0 (separable) and 0.3 (coupled), solver ``auto``
  (``kronecker``). Each case runs in a fresh process (peak RSS is the process's). Reference: for
  c = 0 the (x, r_x) problem's λ₁ on the same axes (exact for the discrete problem) and its
  Richardson limit from 160² and 320² (the continuum); for c = 0.3 the Richardson (order 3) limit
  of 32⁴ and 40⁴, an estimate of the discretisation error only.

Seconds are wall time from set-up to answer (operator assembly, factorisation, eigen-solve), the
median of ``--repeat`` runs on a 2-core machine shared with other jobs, so they are noisy.
"Richardson" rows combine two grids (h and h/2) as λ(h/2) + (λ(h/2) − λ(h))/7, the scheme being
third order.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import xarray as xr

import fpsolver as fp
from fpsolver import theory

#: λ₁ references (Hermite–Fourier, tests/hermite_reference.py): (potential, T, γ) -> (λ₁, uncertainty).
REFERENCES = {
    ("4*(x**2 - 1)**2", 1.0, 1.0): (0.0222907925, 1e-9),
    ("x**4/4 - x**2/2", 0.05, 3.0): (8.53078373e-4, 1e-11),
    ("x**4/4 - x**2/2", 0.05, 0.3): (2.25382778e-3, 1e-11),
    ("x**4/4 - x**2/2", 0.05, 0.1): (1.4919454e-3, 1e-9),
    # 6.2864673e-4 here before 2026-11-30 was 0.29 % high: 120 Hermite functions and 128 Fourier
    # points are not enough at this weak damping (benchmarks/turnover_study.py --references).
    ("x**4/4 - x**2/2", 0.05, 0.03): (6.2685793e-4, 3e-7),
}


def peak_gib() -> float:
    """Peak resident memory of this process so far (GiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def lambda1(potential: str, temperature: float, damping: float, axes: dict, solver: str = "superlu") -> float:
    model = fp.Inertial(fp.Landscape.from_expression(potential), damping=damping, temperature=temperature)
    problem = fp.FokkerPlanck(model, fp.Grid.uniform(**axes), solver=solver)
    return float(problem.spectrum(k=2)["rate"].values[1])


Value = TypeVar("Value")


def timed(fn: Callable[[], Value], repeat: int) -> tuple[float, Value]:
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def report(problem: str, setting: str, value: float, reference: float | None, seconds: float, note: str = "", gib: float | None = None) -> None:
    error = abs(value / reference - 1) if reference else float("nan")
    gib = peak_gib() if gib is None else gib
    print(f"{problem:<22} {setting:<34} {value:>14.9g} {error:>9.1e} {seconds:>8.2f} {gib:>6.2f}  {note}", flush=True)


def p4(repeat: int) -> None:
    key = ("4*(x**2 - 1)**2", 1.0, 1.0)
    ref = REFERENCES[key][0]
    values = {}
    for nx, nr in ((160, 64), (320, 128), (400, 150)):
        axes = {"x": (-2.5, 2.5, nx), "r": (-6.0, 6.0, nr)}
        seconds, values[nx] = timed(lambda: lambda1(*key, axes), repeat)
        report("P4 lambda_1", f"{nx} x {nr}", values[nx], ref, seconds, "py-pde +0.46 % / 574 s; FiPy +154 % / 1.2 s (200^2)")
    seconds, _ = timed(lambda: lambda1(*key, {"x": (-2.5, 2.5, 160), "r": (-6.0, 6.0, 64)}), repeat)
    total = seconds + timed(lambda: lambda1(*key, {"x": (-2.5, 2.5, 320), "r": (-6.0, 6.0, 128)}), repeat)[0]
    extrapolated = values[320] + (values[320] - values[160]) / 7
    report("P4 lambda_1", "Richardson 160x64 + 320x128", extrapolated, ref, total)


def turnover(repeat: int) -> None:
    for damping, (nx, nr) in ((3.0, (200, 80)), (0.3, (200, 80)), (0.1, (400, 200)), (0.03, (400, 200))):
        key = ("x**4/4 - x**2/2", 0.05, damping)
        axes = {"x": (-1.9, 1.9, nx), "r": (-1.35, 1.35, nr)}
        seconds, value = timed(lambda: lambda1(*key, axes), repeat)
        report(f"turnover gamma={damping:g}", f"{nx} x {nr}", value, REFERENCES[key][0], seconds)


def turnover_curve(repeat: int) -> None:
    """lambda_1 / 2 (the well-to-well rate of a symmetric double well) against Mel'nikov–Meshkov.

    L = x^4/4 - x^2/2: barrier 1/4, omega_0 = sqrt(2), omega_b = 1, barrier-orbit action S_b = 4/3.
    The theory column is A(Delta)^2 / A(2 Delta) * k_Kramers(moderate), Delta = gamma S_b / T
    (THEORY.md §5); its own error is O(T / barrier), so ratios ~1.1 at T = 0.05 are expected.
    """
    for temperature in (0.05, 0.025):
        width = 6.05 * temperature**0.5
        for damping in (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0):
            delta = damping * (4.0 / 3.0) / temperature
            kramers = theory.kramers_moderate(2**0.5, 1.0, damping, 0.25, temperature)
            melnikov = theory.turnover_factor(delta) ** 2 / theory.turnover_factor(2 * delta) * kramers
            axes = {"x": (-1.9, 1.9, 400), "r": (-width, width, 200)}
            seconds, value = timed(lambda: lambda1("x**4/4 - x**2/2", temperature, damping, axes), repeat)
            note = f"k = lambda_1/2 = {value / 2:.4g}; Mel'nikov-Meshkov {melnikov:.4g}; ratio {value / 2 / melnikov:.3f}"
            report(f"curve T={temperature:g} g={damping:g}", "400 x 200", value, None, seconds, note)


def escape_rates(repeat: int) -> None:
    """Escape rate from (-1, 0) to x >= 0.5 at barrier/T = 10 .. 45 (gamma = 1), 6 cells per sqrt(T).

    'error' is |mfpt / committor - 1| (two potential-theory routes; they differ by the in-basin
    relaxation ~e^-barrier/T); the note gives the ratio to Langer-Kramers and c = (dL/T)(1 - ratio).
    """
    for ratio in (10.0, 20.0, 30.0, 45.0):
        temperature = 0.25 / ratio
        sigma = temperature**0.5
        model = fp.Inertial(fp.Landscape.from_expression("x**4/4 - x**2/2"), damping=1.0, temperature=temperature)
        grid = fp.Grid.uniform(x=(-1.6, 0.6, round(2.2 * 6 / sigma)), r=(-6.05 * sigma, 6.05 * sigma, 72))

        def rates() -> xr.Dataset:
            return fp.FokkerPlanck(model, grid).escape_rate([-1.0, 0.0], target="x >= 0.5", methods=("mfpt", "committor"))

        seconds, ds = timed(rates, repeat)
        value, committor = (float(ds["escape_rate"].sel(estimator=name)) for name in ("mfpt", "committor"))
        langer = float(ds["theory_kramers_moderate"])
        note = f"mfpt / Langer {value / langer:.5f}, c = {ratio * (1 - value / langer):.3f}"
        report(f"escape dL/T={ratio:g}", f"{grid.shape[0]} x {grid.shape[1]}, mfpt+committor", value, committor, seconds, note)


FOUR_D = "x**4/4 - x**2/2 + y**2"


def four_d_case(n: int, coupling: float) -> dict:
    """One 4-D λ₁ (run in a fresh process by :func:`four_d`): value, wall and CPU seconds, peak GiB, Davidson steps."""
    import logging

    steps = []

    class Steps(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            steps.append(record.args[0])

    logging.getLogger("fpsolver.kronecker").addHandler(Steps())
    logging.getLogger("fpsolver.kronecker").setLevel(logging.INFO)
    potential = FOUR_D + (f" + {coupling}*x*y" if coupling else "")
    axes = {"x": (-1.9, 1.9, n), "y": (-1.4, 1.4, n), "u": (-2.0, 2.0, n), "v": (-2.0, 2.0, n)}
    start, cpu = time.perf_counter(), time.process_time()
    value = lambda1(potential, 0.1, 1.0, axes, solver="auto")
    return {"value": value, "seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu, "gib": peak_gib(), "steps": steps[-1] if steps else None}


def four_d(repeat: int) -> None:
    """λ₁ of the 4-D phase space at 24⁴, 32⁴, 40⁴ (separable and coupled); one fresh process per case and run."""
    two_d = lambda n: lambda1("x**4/4 - x**2/2", 0.1, 1.0, {"x": (-1.9, 1.9, n), "u": (-2.0, 2.0, n)})
    fine, finer = two_d(160), two_d(320)
    continuum = finer + (finer - fine) / 7
    results = {}
    for coupling in (0.0, 0.3):
        for n in (24, 32, 40):
            runs = []
            for _ in range(repeat):
                out = subprocess.run([sys.executable, __file__, "--case4d", str(n), str(coupling)], capture_output=True, text=True, check=True)
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            run = runs[-1]
            run["seconds"] = statistics.median(r["seconds"] for r in runs)
            results[coupling, n] = run
            if coupling == 0.0:
                exact = two_d(n)
                note = f"vs 2-D same grid {abs(run['value'] / exact - 1):.1e}; cpu {run['cpu']:.0f} s; steps {run['steps']}"
                report("4-D separable", f"{n}^4 vs continuum", run["value"], continuum, run["seconds"], note, run["gib"])
            else:
                reference = None
                if n == 40:
                    reference = results[coupling, 40]["value"] + (results[coupling, 40]["value"] - results[coupling, 32]["value"]) / (1.25**3 - 1)
                note = f"cpu {run['cpu']:.0f} s; Davidson steps {run['steps']}"
                report("4-D coupled c=0.3", f"{n}^4" + (" vs Richardson 32/40" if reference else ""), run["value"], reference, run["seconds"], note, run["gib"])


PROBLEMS = {"p4": p4, "turnover": turnover, "curve": turnover_curve, "rates": escape_rates, "4d": four_d}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=sorted(PROBLEMS), default=list(PROBLEMS))
    parser.add_argument("--case4d", nargs=2, metavar=("N", "COUPLING"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case4d:
        print(json.dumps(four_d_case(int(args.case4d[0]), float(args.case4d[1]))))
        return
    print(f"{'problem':<22} {'setting':<34} {'value':>14} {'rel.err':>9} {'seconds':>8} {'GiB':>6}  peers")
    for name in args.only:
        PROBLEMS[name](args.repeat)


if __name__ == "__main__":
    main()
