"""Write logistic.csv: 100 labelled points for a 2-parameter logistic regression (seeded, reproducible).

x ~ N(0, 1); P(y = +1 | x) = 1 / (1 + exp(-(2 x + 0.5))); columns x, y (y in {-1, +1}).
Per-sample loss for fpsolver.noise.EmpiricalNoise: ``log(1 + exp(-y*(w*x + b)))``.

    python scenarios/data/make_logistic.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROWS, SEED = 100, 20261130


def make(rows: int = ROWS, seed: int = SEED) -> np.ndarray:
    """The data set as an array of shape (rows, 2): columns x, y."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    y = np.where(rng.random(rows) < 1 / (1 + np.exp(-(2 * x + 0.5))), 1.0, -1.0)
    return np.column_stack([x, y])


if __name__ == "__main__":
    out = Path(__file__).with_name("logistic.csv")
    np.savetxt(out, make(), delimiter=",", header="x,y", comments="", fmt="%.17g")
    print(f"wrote {out}")
