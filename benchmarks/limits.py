"""How fast bad input is refused, and how the memory estimate compares with real runs.

``python benchmarks/limits.py [--repeat N]`` prints two tables:

1. ``validate`` wall time (median of N, in-process, warm imports) for the bundled scenarios
   and for inputs that used to hang or exhaust memory (issue #11).
2. For stationary solves on 2-D quartic double wells and 3-D wells, the peak resident memory
   of a fresh process (``ru_maxrss`` after the solve minus after the imports) beside
   :func:`fpsolver.resources.estimate`'s prediction.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
name: bench
landscape: {expression: "x**4/4 - x**2/2"}
grid: {x: {min: -2.0, max: 2.0, n: 50}}
model: {temperature: 0.1}
initial: {gaussian: {mean: -1.0, std: 0.2}}
tasks:
  evolve: {t_end: 1.0, dt: 0.1}
"""

BAD = {
    "power tower 9**9**9**9": GOOD.replace('"x**4/4 - x**2/2"', '"9**9**9**9 + x**2"'),
    "10**10**8*x": GOOD.replace('"x**4/4 - x**2/2"', '"10**10**8*x"'),
    "1/0": GOOD.replace('"x**4/4 - x**2/2"', '"1/0 + x"'),
    "sqrt(x) on x < 0": GOOD.replace('"x**4/4 - x**2/2"', '"sqrt(x)"'),
    "dt: 1.0e-300": GOOD.replace("dt: 0.1", "dt: 1.0e-300"),
    "n = 1e12": GOOD.replace("n: 50", "n: 1000000000000"),
    "1e5 x 1e5 grid": GOOD.replace("x: {min: -2.0, max: 2.0, n: 50}", "x: {min: -2.0, max: 2.0, n: 100000}, y: {min: -1.0, max: 1.0, n: 100000}"),
    "anchor bomb (9**9 strings)": "\n".join(
        ["l0: &l0 [" + ", ".join(["lol"] * 9) + "]"] + [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    ),
    "axis named p": GOOD.replace("x: {min", "p: {min").replace("x**4/4 - x**2/2", "p**2"),
}

MEMORY_SCRIPT = """
import resource, sys
import fpsolver as fp
shape = tuple(int(n) for n in sys.argv[1:])
names = ["x", "y", "z"][: len(shape)]
grid = fp.Grid.uniform(**{v: (-2.0, 2.0, n) for v, n in zip(names, shape)})
landscape = fp.Landscape.from_expression(" + ".join(f"{v}**4/4 - {v}**2/2" for v in names), names)
problem = fp.FokkerPlanck(fp.Overdamped(landscape, 0.3), grid)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
problem.stationary()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
"""


def validate_times(repeat: int) -> None:
    from fpsolver.errors import InputError
    from fpsolver.scenario import load_runs

    print("| input | outcome | validate, ms (median) |")
    print("|---|---|---|")
    cases = {p.name: p.read_text() for p in sorted((ROOT / "scenarios").glob("*.yaml"))} | BAD
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in cases.items():
            path = Path(tmp) / "case.yaml"
            path.write_text(text)
            times, outcome = [], "ok"
            for _ in range(repeat + 1):  # the first run warms imports and caches
                start = time.perf_counter()
                try:
                    load_runs(path, Path(tmp) / "out.nc")
                except InputError as exc:
                    outcome = "refused: " + str(exc).split(": ", 2)[-1][:60]
                times.append(time.perf_counter() - start)
            print(f"| {name} | {outcome} | {1e3 * statistics.median(times[1:]):.1f} |")


def memory(shapes: list[tuple[int, ...]]) -> None:
    from fpsolver.resources import estimate

    print("\n| grid | estimated (superlu, 1 factorisation) | measured peak RSS increase |")
    print("|---|---|---|")
    for shape in shapes:
        out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, *map(str, shape)], capture_output=True, text=True, check=True)
        measured = float(out.stdout.strip())
        est = estimate(shape, "superlu", vectors=20).total_bytes
        print(f"| {'x'.join(map(str, shape))} | {est / 1e6:.0f} MB | {measured / 1e6:.0f} MB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    validate_times(args.repeat)
    memory([(100000,), (200, 200), (400, 400), (600, 600), (20, 20, 20), (30, 30, 30)])


if __name__ == "__main__":
    main()
