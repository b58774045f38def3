"""Writing result datasets: CF-style global attributes and atomic netCDF4/HDF5 files.

Files are written with the h5netcdf engine to a temporary file next to the
target and renamed over it only once complete, so a failed or interrupted run
(an exception, Ctrl-C or SIGTERM) never leaves a truncated file, a temporary
file, or destroys an existing one. The file gets the permissions an ordinary
``open`` would give it (0666 minus the umask), not the temporary file's 0600.

Every ``units`` attribute is made parseable by UDUNITS / cf-units: fpsolver
works in nondimensional model units, so prose such as ``"model time (...)"`` or
``"1 / parameter volume"`` becomes ``units = "1"`` with the prose kept in
``units_note``. Provenance (dependency versions, the git commit of the code when
it runs from a checkout) goes into the global attributes.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import xarray as xr

from ._version import __version__

__all__ = ["write_dataset", "global_attrs", "cf_units", "provenance", "CONVENTIONS", "DEPENDENCIES"]

CONVENTIONS = "CF-1.10"

#: Packages whose versions every output records.
DEPENDENCIES = ("numpy", "scipy", "sympy", "xarray", "h5netcdf", "h5py", "pydantic")

#: Units strings written as they are: products, quotients and powers of these symbols
#: (all UDUNITS-2 units); anything else is prose and moves to ``units_note``.
_UNIT_SYMBOLS = {"1", "s", "m", "kg", "K", "J", "rad"}
_UNIT_TOKEN = re.compile(r"\s*([A-Za-z]+|[0-9]+(?:\.[0-9]+)?|[-*/^()]|\s+)")


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
    attrs.update(provenance())
    attrs.update({k: _attr_value(v) for k, v in extra.items()})
    return attrs


@cache
def provenance() -> dict[str, str]:
    """Dependency versions and, when the code runs from a git checkout, its commit."""
    versions = []
    for name in DEPENDENCIES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} not installed")
    out = {"dependencies": ", ".join(versions)}
    commit = _git_commit(Path(__file__).resolve().parent)
    if commit:
        out["source_commit"] = commit
    return out


def _git_commit(where: Path) -> str | None:
    """``HEAD``'s hash (plus ``+uncommitted changes`` when the tree is dirty), or None outside git."""
    try:
        head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + (" +uncommitted changes" if dirty.stdout.strip() else "")


def cf_units(attrs: dict[str, Any]) -> dict[str, Any]:
    """``attrs`` with a UDUNITS-parseable ``units``; prose units move to ``units_note``."""
    units = attrs.get("units")
    if units is None or _parseable(str(units)):
        return attrs
    out = dict(attrs)
    out["units"] = "1"
    out.setdefault("units_note", f"nondimensional model units: {units}")
    return out


def _parseable(units: str) -> bool:
    tokens = [t.strip() for t in _UNIT_TOKEN.findall(units) if t.strip()]
    if "".join(tokens) != re.sub(r"\s+", "", units) or not tokens:
        return False
    return all(t in _UNIT_SYMBOLS or not t.isalpha() for t in tokens)


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
        var.attrs = cf_units({k: _attr_value(v) for k, v in var.attrs.items()})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with _terminate_as_exception():
            clean.to_netcdf(tmp, engine="h5netcdf")
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, _Terminated):
            os.kill(os.getpid(), signal.SIGTERM)  # the default action again: die as terminated
        raise
    return path


class _Terminated(BaseException):
    """SIGTERM arrived while a file was being written."""


@contextlib.contextmanager
def _terminate_as_exception() -> Iterator[None]:
    """Turn SIGTERM into :class:`_Terminated` inside the block (main thread only), then restore."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum: int, frame: Any) -> None:
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
