"""Initial densities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from .errors import InputError
from .fields_xr import DENSITY_ATTRS, to_dataarray
from .grid import Grid

__all__ = ["gaussian"]


def gaussian(grid: Grid, mean: Sequence[float] | float, std: Sequence[float] | float) -> xr.DataArray:
    r"""Product Gaussian :math:`\prod_i \exp(-(x_i-\mu_i)^2/2\sigma_i^2)` sampled at cell centres.

    Normalised so that its discrete integral (sum of density times cell volume) is 1,
    which is the quantity the operators conserve.

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
    log_p = sum(-0.5 * ((x - m) / s) ** 2 for x, m, s in zip(grid.mesh(), mu, sd))
    p = np.exp(log_p - np.max(log_p))
    mass = grid.integrate(p)
    if not mass > 0 or not np.isfinite(mass):
        raise InputError("gaussian has no mass on the grid: its mean lies too far outside the domain for its std")
    return to_dataarray(grid, p / mass, "p0", {**DENSITY_ATTRS, "long_name": "initial probability density"})
