r"""Independent reference for Klein–Kramers eigenvalues in 1-D: Hermite functions in r, Fourier in x.

With :math:`\sigma^2 = T/M`, :math:`\xi = r/\sigma`, :math:`\psi_n` the Hermite functions
(:math:`b\psi_n = \sqrt n\,\psi_{n-1}`, :math:`b^\dagger\psi_n = \sqrt{n+1}\,\psi_{n+1}`,
:math:`b = \partial_\xi + \xi/2`) and

.. math::

    P(x, r) = \psi_0(\xi)\,e^{-U(x)/2T}\sum_n d_n(x)\,\psi_n(\xi),

the Klein–Kramers equation becomes Risken's Brinkman hierarchy in symmetric form

.. math::

    \dot d_n = \sigma\sqrt{n+1}\,A^\dagger d_{n+1} - \sigma\sqrt n\,A\,d_{n-1} - \gamma n\,d_n,
    \qquad A = \partial_x + \frac{U'}{2T},\quad A^\dagger = -\partial_x + \frac{U'}{2T}.

The :math:`d_n` decay like :math:`e^{-U/2T}`, so a periodic box reaching far into that tail and
Fourier differentiation give spectral accuracy in x; the hierarchy is truncated at ``n_hermite``
functions. The slowest rates come from sparse shift-invert. The truncated expansion also has
modes of its own whose rates move with the box and n_x (0.23 .. 0.39 for P4 at the settings
below, where the finite-volume scheme and the physics have none); :func:`stable_rates` keeps
only the rates that two discretisations agree on. This shares no code with the finite-volume
operator.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spla
import sympy as sp


def fourier_derivative(n: int, length: float) -> np.ndarray:
    """Dense first-derivative matrix of the Fourier collocation on n (even) periodic points."""
    h = 2 * np.pi / n
    k = np.arange(n)
    col = np.zeros(n)
    col[1:] = 0.5 * (-1.0) ** k[1:] / np.tan(k[1:] * h / 2)
    rows = k[:, None] - k[None, :]
    return col[rows % n] * (2 * np.pi / length)


def brinkman_rates(
    potential: str,
    temperature: float,
    damping: float,
    mass: float = 1.0,
    half_width: float = 2.5,
    n_x: int = 128,
    n_hermite: int = 60,
    k: int = 4,
) -> np.ndarray:
    """The ``k`` slowest relaxation rates (ascending, the first ≈ 0) of the Klein–Kramers equation for U(x)."""
    x_sym = sp.Symbol("x")
    force = sp.lambdify(x_sym, sp.diff(sp.sympify(potential), x_sym), "numpy")
    length = 2 * half_width
    x = -half_width + length * np.arange(n_x) / n_x
    sigma = np.sqrt(temperature / mass)
    deriv = fourier_derivative(n_x, length)
    half_force = np.diag(np.broadcast_to(force(x), x.shape) / (2 * temperature))
    a = deriv + half_force
    a_dagger = -deriv + half_force
    blocks = [[None] * n_hermite for _ in range(n_hermite)]
    for n in range(n_hermite):
        blocks[n][n] = sps.identity(n_x) * (-damping * n)
        if n + 1 < n_hermite:
            blocks[n][n + 1] = sps.csr_matrix(sigma * np.sqrt(n + 1) * a_dagger)
        if n > 0:
            blocks[n][n - 1] = sps.csr_matrix(-sigma * np.sqrt(n) * a)
    op = sps.bmat(blocks, format="csc")
    shift = 1e-6
    values = spla.eigs(op, k=k, sigma=shift, which="LM", return_eigenvectors=False, tol=1e-14)
    return np.sort(-values.real)


def stable_rates(potential: str, temperature: float, damping: float, mass: float = 1.0, k: int = 4,
                 settings: tuple[dict, dict] = ({"half_width": 2.2, "n_x": 128, "n_hermite": 80},
                                                {"half_width": 2.0, "n_x": 160, "n_hermite": 100}),
                 rtol: float = 1e-7) -> np.ndarray:
    """The slowest rates on which two discretisations agree to ``rtol`` (first ``k`` of each, spare modes computed)."""
    first, second = (brinkman_rates(potential, temperature, damping, mass, k=k + SPARE_MODES, **kw) for kw in settings)
    kept = [a for a in first if np.min(np.abs(second - a)) <= rtol * max(abs(a), 1e-12)]
    return np.array(kept[:k])


#: Modes computed beyond ``k`` so that dropping unstable ones still leaves ``k``.
SPARE_MODES = 3
