"""The plain Scharfetter-Gummel + BDF2 baseline for P3 (PERFORMANCE.md), independent of fpsolver.

What a careful user would write in an afternoon with numpy/scipy: cell-centred finite volumes on a
uniform n x n grid, the exponentially fitted (Scharfetter-Gummel) flux between neighbours,
reflecting walls, one sparse LU of I - (2/3) dt L reused by every BDF2 step (started by one
backward-Euler step with its own LU). It is here so that `run.py` can time fpsolver against it in
the same run (`python benchmarks/run.py --only P3`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spla


def bernoulli(z: np.ndarray) -> np.ndarray:
    """B(z) = z / (e^z - 1), with its limit 1 at z = 0."""
    small = np.abs(z) < 1e-8
    safe = np.where(small, 1.0, z)
    return np.where(small, 1.0 - 0.5 * z, safe / np.expm1(safe))


def generator(n: int, lo: float = -2.5, hi: float = 2.5, temperature: float = 1.0) -> tuple[sps.csc_matrix, np.ndarray, np.ndarray]:
    """SG generator of dP/dt = div(grad U P + T grad P) for U = 4(x^2-1)^2 + 2y^2; also the cell centres."""
    h = (hi - lo) / n
    centres = lo + h * (np.arange(n) + 0.5)
    x, y = np.meshgrid(centres, centres, indexing="ij")
    u = (4.0 * (x**2 - 1.0) ** 2 + 2.0 * y**2) / temperature
    index = np.arange(n * n).reshape(n, n)
    rows, cols, vals = [], [], []
    for axis in (0, 1):
        a = index.take(np.arange(n - 1), axis=axis).ravel()
        b = index.take(np.arange(1, n), axis=axis).ravel()
        du = u.ravel()[b] - u.ravel()[a]
        # flux a -> b per unit area: (T/h) (B(du) p_a - B(-du) p_b); divided by h for the density rate
        forward, backward = temperature * bernoulli(du) / h**2, temperature * bernoulli(-du) / h**2
        rows += [b, a, a, b]
        cols += [a, b, a, b]
        vals += [forward, backward, -forward, -backward]
    matrix = sps.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n * n, n * n))
    return matrix, x, y


def solve(n: int, dt: float, t_end: float = 5.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The density at ``t_end`` from a Gaussian at (-1, 0.5), sd 0.3, and the cell centres."""
    matrix, x, y = generator(n)
    p = np.exp(-((x + 1.0) ** 2 + (y - 0.5) ** 2) / (2 * 0.09)).ravel()
    p /= p.sum() * (5.0 / n) ** 2
    identity = sps.identity(n * n, format="csc")
    previous, p = p, spla.splu(identity - dt * matrix).solve(p)
    lu = spla.splu(identity - (2.0 / 3.0) * dt * matrix)
    for _ in range(round(t_end / dt) - 1):
        previous, p = p, lu.solve((4.0 * p - previous) / 3.0)
    return p.reshape(n, n), x, y
