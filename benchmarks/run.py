"""Benchmarks of fpsolver on the PERFORMANCE.md problems; prints a table of error and median wall time.

Usage::

    python benchmarks/run.py            # all problems, median of 3 runs
    python benchmarks/run.py --repeat 5 --only P3

Wall time is from set-up to answer (grid, operator assembly, factorisation and solves).
Errors are measured against exact solutions or independent references (see each problem).
Peer figures are the ones recorded in shared/PERFORMANCE.md (same machine type).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import scipy.interpolate as si
import scipy.linalg as sla
from findiff import coefficients

import fpsolver as fp
from fpsolver.resources import estimate

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baseline_p3  # noqa: E402  (the independent SG+BDF2 baseline next to this file)

ROWS: list[tuple[str, str, float, float, str]] = []


def timed(fn: Callable[[], float], repeat: int) -> tuple[float, float]:
    """Median wall time of ``fn`` over ``repeat`` runs, and its (last) returned error."""
    times, error = [], float("nan")
    for _ in range(repeat):
        start = time.perf_counter()
        error = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), error


def row(problem: str, setting: str, repeat: int, fn: Callable[[], float], peer: str = "") -> None:
    seconds, error = timed(fn, repeat)
    ROWS.append((problem, setting, error, seconds, peer))
    print(f"{problem:<26} {setting:<34} {error:>10.2e} {seconds:>9.3f}  {peer}", flush=True)


# ----------------------------------------------------------------------------- references
def schroedinger_rate(landscape_d1, landscape_d2, temperature, lo, hi, n=8000):
    """lambda_1 from -T d2/dx2 + L'^2/(4T) - L''/2 with findiff's 6th-order stencil (independent)."""
    x = np.linspace(lo, hi, n + 2)[1:-1]
    h = x[1] - x[0]
    potential = landscape_d1(x) ** 2 / (4 * temperature) - landscape_d2(x) / 2
    stencil = coefficients(deriv=2, acc=6)["center"]["coefficients"]
    bands = np.zeros((4, n))
    for offset in range(4):
        bands[3 - offset, offset:] = -temperature * stencil[3 + offset] / h**2
    bands[3] += potential
    return sla.eig_banded(bands, select="i", select_range=(1, 1), eigvals_only=True)[0]


def p3_reference(t_end: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """P3 is separable: P(x, y, t) = Px(x, t) Py(y, t). Py is an exact OU Gaussian (U = 2y^2, D = 1);
    Px comes from a 1-D solve with 12,000 cells and TR-BDF2 at dt = 1e-4 (error ~1e-7 relative)."""
    grid = fp.Grid.uniform(x=(-2.5, 2.5, 12000))
    problem = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression("4*(x**2 - 1)**2"), temperature=1.0), grid)
    p0 = fp.gaussian(grid, mean=[-1.0], std=[0.3])
    px = problem.evolve(p0, t_end=t_end, dt=1e-4, scheme="trbdf2")["p"].isel(time=-1).values
    spline = si.CubicSpline(grid.coords["x"], px)
    var = 1.0 / 4.0 + (0.09 - 1.0 / 4.0) * np.exp(-8 * t_end)  # OU with stiffness 4: stationary var T/4
    mean = 0.5 * np.exp(-4 * t_end)

    def reference(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        py = np.exp(-((y - mean) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var)
        return spline(x) * py

    return reference


# ----------------------------------------------------------------------------- problems
def p1(repeat: int) -> None:
    def run(scheme: str, dt: float) -> float:
        grid = fp.Grid.uniform(x=(-8.0, 8.0, 800))
        problem = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.quadratic(1.0), temperature=1.0), grid)
        p = problem.evolve(fp.gaussian(grid, mean=[2.0], std=[0.3]), t_end=1.0, dt=dt, scheme=scheme)["p"].values[-1]
        x = grid.coords["x"]
        var = 1 + (0.09 - 1) * np.exp(-2.0)
        exact = np.exp(-((x - 2 * np.exp(-1.0)) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var)
        return float(np.abs(p - exact).max())

    row("P1 OU transient N=800", "trbdf2 dt=0.01", repeat, lambda: run("trbdf2", 0.01), "fplanck 1.4e-5/0.55 s")
    row("P1 OU transient N=800", "trbdf2 dt=0.002", repeat, lambda: run("trbdf2", 0.002), "py-pde 1.7e-5/2.1 s")


def p2(repeat: int) -> None:
    d1, d2 = (lambda x: 20 * x * (x**2 - 1)), (lambda x: 60 * x**2 - 20)
    reference = schroedinger_rate(d1, d2, 1.0, -2.5, 2.5)

    def problem(n: int) -> fp.FokkerPlanck:
        grid = fp.Grid.uniform(x=(-2.5, 2.5, n))
        return fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression("5*(x**2 - 1)**2"), temperature=1.0), grid)

    def stationary() -> float:
        pb = problem(3200)
        ps = pb.stationary().values
        x = pb.grid.coords["x"]
        g = np.exp(-5 * (x**2 - 1) ** 2)
        g /= pb.grid.integrate(g)
        return float(np.abs(ps - g).max() / g.max())

    def rate(n: int) -> Callable[[], float]:
        return lambda: float(abs(problem(n).spectrum(k=2)["rate"].values[1] / reference - 1))

    row("P2a stationary N=3200", "null-space solve (vs Gibbs)", repeat, stationary)
    row("P2b lambda_1 N=3200", "shift-invert (rel. error)", repeat, rate(3200), "fplanck 5e-6/0.05 s; Dedalus 2e-12/0.4 s")

    issue_reference = schroedinger_rate(lambda x: x**3 - x, lambda x: 3 * x**2 - 1, 0.05, -2.5, 2.5)

    def issue_rate() -> float:
        grid = fp.Grid.uniform(x=(-2.5, 2.5, 2000))
        pb = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression("x**4/4 - x**2/2"), temperature=0.05), grid)
        return float(abs(pb.spectrum(k=2)["rate"].values[1] / issue_reference - 1))

    row("issue #3 dw T=0.05 N=2000", "lambda_1 rel. error", repeat, issue_rate, "target 1e-4 in << 1 s")


def p3(repeat: int, sizes: tuple[int, ...]) -> None:
    t_end = 5.0
    reference = p3_reference(t_end)

    def problem(n: int) -> fp.FokkerPlanck:
        grid = fp.Grid.uniform(x=(-2.5, 2.5, n), y=(-2.5, 2.5, n))
        land = fp.Landscape.from_expression("4*(x**2 - 1)**2 + 2*y**2")
        return fp.FokkerPlanck(fp.Overdamped(land, temperature=1.0), grid)

    def transient(n: int, scheme: str, dt: float) -> Callable[[], float]:
        def run() -> float:
            pb = problem(n)
            p0 = fp.gaussian(pb.grid, mean=[-1.0, 0.5], std=[0.3, 0.3])
            p = pb.evolve(p0, t_end=t_end, dt=dt, scheme=scheme)["p"].values[-1]
            x, y = pb.grid.mesh()
            return float(np.abs(p - reference(x, y)).max())

        return run

    def baseline(n: int, dt: float) -> Callable[[], float]:
        def run() -> float:
            p, x, y = baseline_p3.solve(n, dt)
            return float(np.abs(p - reference(x, y)).max())

        return run

    peers = {200: "FiPy 1.6e-4/56 s; py-pde 1.9e-3/28 s", 400: "py-pde 4.7e-4/98 s; FiPy 2.9e-4/386 s"}
    for n in sizes:
        for scheme, dt in (("trbdf2", 0.5), ("trbdf2", 0.25), ("trbdf2", 0.1), ("bdf2", 0.02)):
            row(f"P3 transient {n}x{n} t=5", f"{scheme} dt={dt}", repeat, transient(n, scheme, dt), peers.get(n, ""))
        row(f"P3 transient {n}x{n} t=5", "baseline SG+BDF2 dt=0.05", repeat, baseline(n, 0.05), "benchmarks/baseline_p3.py")

    def stationary(n: int) -> Callable[[], float]:
        def run() -> float:
            pb = problem(n)
            ps = pb.stationary().values
            x, y = pb.grid.mesh()
            g = np.exp(-4 * (x**2 - 1) ** 2 - 2 * y**2)
            g = g / pb.grid.integrate(g)
            return float(np.abs(ps - g).max() / g.max())

        return run

    # lambda_1 of the separable 2-D problem is the 1-D x-rate (the y-direction's first rate is 4).
    rate_reference = schroedinger_rate(lambda x: 16 * x * (x**2 - 1), lambda x: 48 * x**2 - 16, 1.0, -2.5, 2.5)

    def spectrum(n: int) -> Callable[[], float]:
        return lambda: float(abs(problem(n).spectrum(k=3)["rate"].values[1] / rate_reference - 1))

    for n in sizes:
        row(f"P3 stationary {n}x{n}", "null-space solve (vs Gibbs)", repeat, stationary(n), "FiPy 5e-9/3.7 s" if n == 400 else "")
        row(f"P3 spectrum {n}x{n}", "lambda_1 rel. error, k=3", repeat, spectrum(n))

    def thousand_steps() -> float:
        pb = problem(400)
        p0 = fp.gaussian(pb.grid, mean=[-1.0, 0.5], std=[0.3, 0.3])
        mass = pb.evolve(p0, t_end=1.0, dt=1e-3, scheme="bdf2")["mass"].values
        return float(abs(mass[-1] - 1))

    row("issue #3 400x400", "1000 BDF2 steps (mass error)", 1, thousand_steps, "target: seconds")

    def adaptive(n: int, rtol: float) -> Callable[[], float]:
        def run() -> float:
            pb = problem(n)
            p0 = fp.gaussian(pb.grid, mean=[-1.0, 0.5], std=[0.3, 0.3])
            p = pb.evolve(p0, t_end=t_end, scheme="trbdf2", rtol=rtol)["p"].values[-1]
            x, y = pb.grid.mesh()
            return float(np.abs(p - reference(x, y)).max())

        return run

    for n in sizes:
        row(f"P3 transient {n}x{n} t=5", "adaptive trbdf2 rtol=1e-3", repeat, adaptive(n, 1e-3))


# ----------------------------------------------------------------------------- 3-D (fresh process per case)
THREE_D = "4*(x**2 - 1)**2 + 2*y**2 + 2*z**2"


def three_d_case(n: int, task: str) -> dict[str, float]:
    """One 3-D case, U = THREE_D on [-2.5, 2.5]^3, T = 1, reflecting, solver 'auto'; run in a fresh process.

    ``spectrum``: relative error of lambda_1 against the exact discrete value (the operator is a
    Kronecker sum, so lambda_1 is the 1-D x-operator's on the same n cells, from a dense solve) and,
    as ``grid_error``, against the continuum value. ``steps``: 20 TR-BDF2 steps of dt = 0.1 from a
    Gaussian at (-1, 0.5, 0), sd 0.3; the error is the mass drift. ``stationary``: max error against
    the sampled Gibbs density, relative to its peak.
    """
    start, cpu = time.perf_counter(), time.process_time()
    grid = fp.Grid.uniform(x=(-2.5, 2.5, n), y=(-2.5, 2.5, n), z=(-2.5, 2.5, n))
    pb = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression(THREE_D), temperature=1.0), grid)
    extra: dict[str, float] = {}
    if task == "spectrum":
        rate = float(pb.spectrum(k=2)["rate"].values[1])
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        line = fp.Grid.uniform(x=(-2.5, 2.5, n))
        exact = np.sort(-np.linalg.eigvals(fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression("4*(x**2 - 1)**2"), temperature=1.0), line, solver="superlu").operator.toarray()).real)[1]
        continuum = schroedinger_rate(lambda x: 16 * x * (x**2 - 1), lambda x: 48 * x**2 - 16, 1.0, -2.5, 2.5)
        error, extra["grid_error"] = abs(rate / exact - 1), abs(rate / continuum - 1)
    elif task == "steps":
        p0 = fp.gaussian(grid, mean=[-1.0, 0.5, 0.0], std=[0.3, 0.3, 0.3])
        mass = pb.evolve(p0, t_end=2.0, dt=0.1, scheme="trbdf2")["mass"].values
        seconds, cpu, error = time.perf_counter() - start, time.process_time() - cpu, abs(float(mass[-1]) - 1.0)
    else:
        ps = pb.stationary().values
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        x, y, z = grid.mesh()
        g = np.exp(-4 * (x**2 - 1) ** 2 - 2 * y**2 - 2 * z**2)
        g = g / grid.integrate(g)
        error = float(np.abs(ps - g).max() / g.max())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux -> GiB
    return {"seconds": seconds, "cpu_seconds": cpu, "error": error, "rss_gib": rss, "solver": pb.solver, **extra}


def three_d(repeat: int, sizes: tuple[int, ...]) -> None:
    for n in sizes:
        for task in ("spectrum", "steps", "stationary"):
            results = []
            for _ in range(repeat):
                # One BLAS thread: on the shared 2-core machine a threaded ddot (pyamg's residual norms)
                # was 8x slower than a single-threaded one (the second thread waits for a busy core).
                env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
                out = subprocess.run([sys.executable, __file__, "--case", str(n), task], capture_output=True, text=True, check=True, env=env)
                results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            seconds = statistics.median(r["seconds"] for r in results)
            rss = max(r["rss_gib"] for r in results)
            cpu = statistics.median(r["cpu_seconds"] for r in results)
            last = results[-1]
            snapshots, factorisations = {"steps": (2, 1), "spectrum": (0, 1), "stationary": (1, 0)}[task]
            guess = estimate((n, n, n), last["solver"], n_snapshots=snapshots, factorisations=factorisations).total_bytes / 2**30
            note = f"CPU {cpu:.1f} s, peak RSS {rss:.2f} GiB (estimate {guess:.2f}), solver {last['solver']}" + (f", grid error {last['grid_error']:.1e}" if "grid_error" in last else "")
            ROWS.append((f"3-D {n}^3", task, last["error"], seconds, note))
            print(f"{f'3-D {n}^3':<26} {task:<34} {last['error']:>10.2e} {seconds:>9.3f}  {note}", flush=True)


def rates(repeat: int) -> None:
    """Escape rates; errors against the independent log-domain quadrature (fpsolver.theory)."""
    from fpsolver import theory

    def one_d(ratio: float, methods: tuple[str, ...]) -> Callable[[], float]:
        temperature = 0.25 / ratio
        reference = theory.log_mfpt_1d(lambda x: -(x**3 - x), lambda x: temperature + 0 * x, -2.5, 0.5, -1.0)

        def run() -> float:
            grid = fp.Grid.uniform(x=(-2.5, 0.5, 2000))
            land = fp.Landscape.from_expression("x**4/4 - x**2/2")
            pb = fp.FokkerPlanck(fp.Overdamped(land, temperature=temperature), grid, boundary={"x": ("reflecting", "absorbing")})
            ds = pb.escape_rate([-1.0], methods=methods)
            return float(abs(-np.log(ds["escape_rate"].values[0]) - reference))

        return run

    row("escape 1-D N=2000 dL/T=10", "all four methods (err: mfpt)", repeat, one_d(10, ("mfpt", "flux", "committor", "eigen")), "target: milliseconds")
    row("escape 1-D N=2000 dL/T=70", "mfpt, rate ~1e-31", repeat, one_d(70, ("mfpt",)))

    def two_d(n: int, ratio: float) -> Callable[[], float]:
        temperature = 0.25 / ratio
        reference = theory.log_mfpt_1d(lambda x: -(x**3 - x), lambda x: temperature + 0 * x, -2.5, 0.5, -1.0)

        def run() -> float:
            grid = fp.Grid.uniform(x=(-2.5, 0.5, n), y=(-1.0, 1.0, n))
            land = fp.Landscape.from_expression("x**4/4 - x**2/2 + y**2")
            pb = fp.FokkerPlanck(fp.Overdamped(land, temperature=temperature), grid, boundary={"x": ("reflecting", "absorbing")})
            ds = pb.escape_rate([-1.0, 0.0], methods=("committor",))
            return float(abs(-np.log(ds["escape_rate"].values[0]) - reference))

        return run

    row("escape 2-D 400x400 dL/T=10", "committor (err vs 1-D quadrature)", repeat, two_d(400, 10), "target: seconds")
    row("escape 2-D 400x400 dL/T=70", "committor, rate ~1e-31", repeat, two_d(400, 70))

    def mfpt_field(n: int, ratio: float, x0: float) -> Callable[[], float]:
        """The whole MFPT field (Markov decomposition at the wells), error at x0 vs the quadrature."""
        temperature = 0.25 / ratio
        grid = fp.Grid.uniform(x=(-2.5, 0.5, n), y=(-1.0, 1.0, n))
        centre = float(grid[0].centers[np.argmin(np.abs(grid[0].centers - x0))])
        reference = theory.log_mfpt_1d(lambda x: -(x**3 - x), lambda x: temperature + 0 * x, -2.5, 0.5, centre)

        def run() -> float:
            land = fp.Landscape.from_expression("x**4/4 - x**2/2 + y**2")
            pb = fp.FokkerPlanck(fp.Overdamped(land, temperature=temperature), grid, boundary={"x": ("reflecting", "absorbing")})
            tau = pb.mfpt()
            return float(abs(np.log(float(tau.sel(x=centre).interp(y=0.0))) - reference))

        return run

    row("MFPT field 2-D 400x400 dL/T=10", "all cells (err at the minimum)", repeat, mfpt_field(400, 10, -1.0))
    row("MFPT field 2-D 400x400 dL/T=70", "all cells, tau ~1e31 (err at x=0.2)", repeat, mfpt_field(400, 70, 0.2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the median time is shown")
    parser.add_argument("--only", choices=("P1", "P2", "P3", "rates", "3D"), help="run one problem family")
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 400], help="P3 grid sizes")
    parser.add_argument("--sizes-3d", type=int, nargs="+", default=[60, 80, 100], help="3-D grid sizes (cells per axis)")
    parser.add_argument("--case", nargs=2, metavar=("N", "TASK"), help=argparse.SUPPRESS)  # one 3-D case, in this process
    args = parser.parse_args()
    if args.case:
        print(json.dumps(three_d_case(int(args.case[0]), args.case[1])))
        return
    print(f"fpsolver {fp.__version__}: median of {args.repeat} runs\n")
    print(f"{'problem':<26} {'setting':<34} {'error':>10} {'seconds':>9}  peers (PERFORMANCE.md)")
    print("-" * 120)
    if args.only in (None, "P1"):
        p1(args.repeat)
    if args.only in (None, "P2"):
        p2(args.repeat)
    if args.only in (None, "P3"):
        p3(args.repeat, tuple(args.sizes))
    if args.only in (None, "rates"):
        rates(args.repeat)
    if args.only in (None, "3D"):
        three_d(args.repeat, tuple(args.sizes_3d))


if __name__ == "__main__":
    main()
