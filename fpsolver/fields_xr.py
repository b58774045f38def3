"""Conversion between grid fields (numpy) and labelled xarray objects."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .errors import InputError
from .grid import Grid

__all__ = ["grid_coords", "to_dataarray", "from_field", "DENSITY_ATTRS", "TIME_UNITS"]

DENSITY_ATTRS = {"long_name": "probability density", "units": "1 / parameter volume"}

#: The time unit of every output (the models are written in continuous time).
TIME_UNITS = "model time (for optimizer-derived models: SGD time t = k * learning rate)"


def grid_coords(grid: Grid) -> dict[str, xr.Variable]:
    """Cell-centre coordinates with CF attributes, one per axis."""
    coords = {}
    for ax in grid:
        kind = "parameter" if ax.kind == "position" else "momentum"
        attrs = {"long_name": f"{kind} {ax.name} (cell centre)", "units": "1", "axis_kind": ax.kind}
        coords[ax.name] = xr.Variable((ax.name,), np.asarray(ax.centers), attrs)
    return coords


def to_dataarray(grid: Grid, values: np.ndarray, name: str, attrs: dict[str, Any] | None = None, leading: tuple[str, ...] = ()) -> xr.DataArray:
    """Wrap ``values`` of shape ``(*leading sizes, *grid.shape)`` (or flattened cells) as a DataArray."""
    values = np.asarray(values)
    lead_shape = values.shape[: len(leading)]
    values = values.reshape(lead_shape + grid.shape)
    return xr.DataArray(values, dims=leading + grid.names, coords=grid_coords(grid), name=name, attrs=dict(attrs or {}))


def from_field(grid: Grid, field: Any, what: str) -> np.ndarray:
    """A density given as a DataArray (dims = grid axes) or an array of the grid shape, flattened."""
    if isinstance(field, xr.DataArray):
        if set(field.dims) != set(grid.names):
            raise InputError(f"{what} has dims {field.dims}, expected the grid axes {grid.names}")
        field = field.transpose(*grid.names)
        for ax in grid:
            if ax.name in field.coords and not np.allclose(field[ax.name].values, ax.centers):
                raise InputError(f"{what}: coordinate {ax.name!r} does not match the grid's cell centres")
        field = field.values
    arr = grid.check_field(field, what)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{what} contains non-finite values")
    return arr.ravel()
