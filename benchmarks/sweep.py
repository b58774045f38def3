"""Parallel sweeps: wall time of the flat-minima sweep with 1 and 2 local workers (fresh processes).

    python benchmarks/sweep.py [--repeat 3] [--scenario scenarios/flat_minima.yaml]

Prints the median wall time of ``fpsolver sweep FILE --workers N`` for N = 1, 2 and the speed-up.
Each run is a fresh ``fpsolver`` process writing to a temporary directory (start-up included).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]


def wall(scenario: Path, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "fpsolver.cli", "sweep", str(scenario), "-o", f"{tmp}/out.nc", "--workers", str(workers), "--quiet"],
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "flat_minima.yaml")
    args = parser.parse_args()
    times = {n: statistics.median(wall(args.scenario, n) for _ in range(args.repeat)) for n in (1, 2)}
    print(f"{'workers':>8} {'seconds':>9}")
    for n, seconds in times.items():
        print(f"{n:>8} {seconds:>9.2f}")
    print(f"speed-up with 2 workers: {times[1] / times[2]:.2f}x ({args.scenario.name}, median of {args.repeat})")


if __name__ == "__main__":
    main()
