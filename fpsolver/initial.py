"""Initial densities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy.special import ndtr

from .errors import InputError
from .fields_xr import DENSITY_ATTRS, to_dataarray
from .grid import Grid

__all__ = ["gaussian", "OUTSIDE_TOLERANCE"]

#: Largest share of a Gaussian's mass that may lie outside the domain (it is cut off and
#: the rest renormalised, which changes the requested density by about this much).
OUTSIDE_TOLERANCE = 1e-2


def gaussian(grid: Grid, mean: Sequence[float] | float, std: Sequence[float] | float) -> xr.DataArray:
    r"""Product Gaussian :math:`\prod_i \exp(-(x_i-\mu_i)^2/2\sigma_i^2)` sampled at cell centres.

    Normalised so that its discrete integral (sum of density times cell volume) is 1,
    which is the quantity the operators conserve. The share of the Gaussian's mass
    inside the box, :math:`\prod_i [\Phi((b_i-\mu_i)/\sigma_i) - \Phi((a_i-\mu_i)/\sigma_i)]`,
    must be at least ``1 - OUTSIDE_TOLERANCE``: otherwise the cut-off density would not be
    the one asked for (a mean far outside would put all the mass in the edge cell).

    Parameters
    ----------
    grid
        The grid.
    mean, std
        One value per axis (a scalar is accepted on 1-D grids).
    """
    mu = np.atleast_1d(np.asarray(mean, dtype=float))
    sd = np.atleast_1d(np.asarray(std, dtype=float))
    for name, arr in (("mean", mu), ("std", sd)):
        if arr.shape != (grid.ndim,):
            raise InputError(f"gaussian {name} needs {grid.ndim} value(s), one per axis {list(grid.names)}; got {arr.tolist()}")
        if not np.all(np.isfinite(arr)):
            raise InputError(f"gaussian {name} must be finite, got {arr.tolist()}")
    if np.any(sd <= 0):
        raise InputError(f"gaussian std must be positive, got {sd.tolist()}")
    inside = np.prod([ndtr((a.hi - m) / s) - ndtr((a.lo - m) / s) for a, m, s in zip(grid, mu, sd)])
    if not inside >= 1.0 - OUTSIDE_TOLERANCE:
        box = ", ".join(f"{a.name} in [{a.lo:g}, {a.hi:g}]" for a in grid)
        raise InputError(
            f"{100 * (1 - inside):.3g} % of the gaussian's mass (mean {mu.tolist()}, std {sd.tolist()}) lies outside the "
            f"domain ({box}); at most {100 * OUTSIDE_TOLERANCE:g} % may: move the mean inside or narrow the std"
        )
    log_p = sum(-0.5 * ((x - m) / s) ** 2 for x, m, s in zip(grid.mesh(), mu, sd))
    p = np.exp(log_p - np.max(log_p))
    mass = grid.integrate(p)
    if not mass > 0 or not np.isfinite(mass):
        raise InputError("gaussian has no mass on the grid: its mean lies too far outside the domain for its std")
    return to_dataarray(grid, p / mass, "p0", {**DENSITY_ATTRS, "long_name": "initial probability density"})
