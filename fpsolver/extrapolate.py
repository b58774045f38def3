r"""Richardson extrapolation in the grid spacing.

A quantity computed with a scheme of order :math:`p` on grids of spacing :math:`h` and
:math:`h/r` behaves like :math:`q(h) = q^* + Ch^p + O(h^{p+2})` (the Scharfetter–Gummel
operator on uniform grids is even in :math:`h`, so the next term is :math:`h^{p+2}`). Then

.. math:: q^* \approx \frac{r^p\,q(h/r) - q(h)}{r^p - 1},

one order :math:`p + 2` better. Measured on λ₁ of U = 4(x²−1)² (+ 2y² + 2z² in 3-D, which
separates, so λ₁ is the 1-D value): 80 cells per axis 4.0e-3 relative error, 40 and 80
extrapolated 8.9e-7; the 40³ solve costs about an eighth of the 80³ one.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

__all__ = ["richardson"]


def richardson(coarse: float | np.ndarray, fine: float | np.ndarray, ratio: float = 2.0, order: int = 2) -> float | np.ndarray:
    """Extrapolate to zero spacing from ``coarse`` (spacing h) and ``fine`` (spacing h / ``ratio``).

    Parameters
    ----------
    coarse, fine
        The quantity (scalar or array on matching points) on the two grids.
    ratio
        Spacing ratio r > 1 of the two grids.
    order
        Order p of the leading error term.
    """
    if not (ratio > 1 and np.isfinite(ratio)):
        raise InputError(f"the spacing ratio must be a number above 1, got {ratio!r}")
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise InputError(f"the order must be a positive integer, got {order!r}")
    gain = float(ratio) ** int(order)
    result = (gain * np.asarray(fine, dtype=float) - np.asarray(coarse, dtype=float)) / (gain - 1.0)
    return float(result) if result.ndim == 0 else result
