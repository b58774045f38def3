"""The optimizer comparison: wall time of each task per optimizer, and of the whole CLI run.

    python benchmarks/compare.py [--repeat 3] [--scenario scenarios/optimizers_compare.yaml]

Prints, per sweep run (optimizer), the median seconds of each task over ``--repeat``
computations in this process (build excluded), then the median wall time of
``fpsolver run FILE`` in a fresh process (start-up, build, every task and the write included).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from fpsolver.runner import compute
from fpsolver.scenario import load_runs

ROOT = Path(__file__).parents[1]


def task_seconds(scenario: Path, repeat: int) -> dict[str, dict[str, float]]:
    """Median seconds per task, per sweep run label."""
    with tempfile.TemporaryDirectory() as tmp:
        run = load_runs(scenario, Path(tmp) / "out.nc")
        table: dict[str, dict[str, list[float]]] = {}
        for _ in range(repeat):
            for variant, loaded in run.runs:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = compute(loaded)
                for item in ds.attrs["wall_seconds"].split(", "):
                    name, seconds = item.split("=")
                    table.setdefault(variant.label, {}).setdefault(name, []).append(float(seconds))
    return {label: {name: statistics.median(values) for name, values in tasks.items()} for label, tasks in table.items()}


def cli_seconds(scenario: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fpsolver.cli", "run", str(scenario), "-o", f"{tmp}/out.nc", "--quiet"], check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "optimizers_compare.yaml")
    args = parser.parse_args()
    table = task_seconds(args.scenario, args.repeat)
    names = list(next(iter(table.values())))
    print(f"{'run':<40}" + "".join(f"{n:>21}" for n in names))
    for label, tasks in table.items():
        print(f"{label:<40}" + "".join(f"{tasks[n]:>21.2f}" for n in names))
    total = statistics.median(cli_seconds(args.scenario) for _ in range(args.repeat))
    print(f"fpsolver run {args.scenario.name}: {total:.1f} s (median of {args.repeat}, fresh processes)")


if __name__ == "__main__":
    main()
