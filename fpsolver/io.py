"""Writing result datasets: CF-style global attributes and atomic netCDF4/HDF5 files.

Files are written with the h5netcdf engine to a temporary file next to the
target and renamed over it only once complete, so a failed or interrupted run
never leaves a truncated file or destroys an existing one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import tempfile
from pathlib import Path
from typing import Any

import xarray as xr

from ._version import __version__

__all__ = ["write_dataset", "global_attrs", "CONVENTIONS"]

CONVENTIONS = "CF-1.10"


def global_attrs(title: str, history: str, **extra: Any) -> dict[str, Any]:
    """Global attributes every fpsolver output carries."""
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    attrs: dict[str, Any] = {
        "Conventions": CONVENTIONS,
        "title": title,
        "source": f"fpsolver {__version__}",
        "history": f"{now}: {history}",
        "date_created": now,
    }
    attrs.update({k: _attr_value(v) for k, v in extra.items()})
    return attrs


def _attr_value(value: Any) -> Any:
    """netCDF attributes hold strings and numbers only."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return value
    return str(value)


def write_dataset(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to ``path`` (netCDF4/HDF5 via h5netcdf) atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = ds.copy()
    clean.attrs = {k: _attr_value(v) for k, v in ds.attrs.items()}
    for var in clean.variables.values():
        var.attrs = {k: _attr_value(v) for k, v in var.attrs.items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        clean.to_netcdf(tmp, engine="h5netcdf")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path
