"""Parallel sweeps: wall time of the flat-minima sweep with 1 and 2 local workers (fresh processes).

    python benchmarks/sweep.py [--repeat 5] [--scenario scenarios/flat_minima.yaml]

Prints the wall times of ``fpsolver sweep FILE --workers N`` for N = 1, 2 and the speed-up, from
interleaved pairs (1 then 2 workers, then 2 then 1, ...). Each run is a fresh ``fpsolver`` process
writing to a temporary directory (start-up included).
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
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "flat_minima.yaml")
    args = parser.parse_args()
    # Interleaved pairs, the order alternating: this VM's speed drifts by +-25 % over seconds, which
    # a block of 1-worker runs followed by a block of 2-worker runs would count as speed-up or loss.
    times: dict[int, list[float]] = {1: [], 2: []}
    ratios = []
    for repeat in range(args.repeat):
        pair = {n: wall(args.scenario, n) for n in ((1, 2) if repeat % 2 == 0 else (2, 1))}
        for n, seconds in pair.items():
            times[n].append(seconds)
        ratios.append(pair[1] / pair[2])
    print(f"{'workers':>8} {'median s':>9} {'min s':>7} {'max s':>7}")
    for n, values in times.items():
        print(f"{n:>8} {statistics.median(values):>9.2f} {min(values):>7.2f} {max(values):>7.2f}")
    print(
        f"speed-up with 2 workers: {statistics.median(times[1]) / statistics.median(times[2]):.2f}x of the medians, "
        f"{statistics.median(ratios):.2f}x median of {args.repeat} interleaved pairs "
        f"(range {min(ratios):.2f}-{max(ratios):.2f}; {args.scenario.name})"
    )


if __name__ == "__main__":
    main()
