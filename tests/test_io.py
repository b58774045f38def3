"""Output files a scientist trusts: permissions, interruption, units and provenance."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import xarray as xr

from fpsolver.io import cf_units, provenance, write_dataset


def _dataset() -> xr.Dataset:
    ds = xr.Dataset({"p": (("time", "x"), np.ones((2, 3)), {"units": "1 / parameter volume"})})
    ds["rate"] = ((), 0.5, {"units": "1 / (model time (for optimizer-derived models: SGD time t = k * learning rate))"})
    ds["barrier"] = ((), 0.25, {"units": "loss"})
    ds["mass"] = ((), 1.0, {"units": "1"})
    return ds.assign_coords(time=("time", [0.0, 1.0], {"units": "s"}))


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_honour_the_umask(umask, mode, tmp_path):
    previous = os.umask(umask)
    try:
        path = write_dataset(_dataset(), tmp_path / "out.nc")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == mode


@pytest.mark.slow  # 3-5 s (subprocess imports / every task computed), more when the machine is shared
@pytest.mark.parametrize("signum, returncode", [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, -signal.SIGINT)])
def test_an_interrupted_write_leaves_no_temporary_file_and_the_old_output(signum, returncode, tmp_path):
    # The child sends itself the signal half-way through writing (deterministic, no race):
    # SIGTERM must still kill it as SIGTERM does, Ctrl-C must end in KeyboardInterrupt (Python then exits as killed by SIGINT),
    # and in both cases only the previous output may remain.
    (tmp_path / "out.nc").write_bytes(b"previous result")
    script = textwrap.dedent(
        f"""
        import os, signal, xarray as xr
        from fpsolver.io import write_dataset
        # Python's own Ctrl-C handler, even when started from a background job (SIGINT ignored)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        original = xr.Dataset.to_netcdf
        def interrupted(self, path, **kw):
            original(self, path, **kw)
            os.kill(os.getpid(), {int(signum)})
        xr.Dataset.to_netcdf = interrupted
        write_dataset(xr.Dataset({{"a": ("x", [1.0, 2.0])}}), {str(tmp_path / "out.nc")!r})
        print("not reached")
        """
    )
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert child.returncode == returncode, child.stderr
    assert "not reached" not in child.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]
    assert (tmp_path / "out.nc").read_bytes() == b"previous result"


#: What UDUNITS-2 parses among the forms fpsolver writes: products, quotients and powers of
#: known symbols. An independent, stricter check than the writer's own (no parentheses).
UDUNITS_SIMPLE = re.compile(r"^(1|s|m|kg|K|J|rad)([ */^-]*(1|s|m|kg|K|J|rad|[0-9]+))*$")


def test_units_are_parseable_and_prose_moves_to_units_note(tmp_path):
    path = write_dataset(_dataset(), tmp_path / "out.nc")
    with xr.open_dataset(path) as ds:
        for name, var in ds.variables.items():
            assert UDUNITS_SIMPLE.match(var.attrs["units"]), (name, var.attrs["units"])
        assert ds["p"].attrs["units_note"] == "nondimensional model units: 1 / parameter volume"
        assert ds["barrier"].attrs["units_note"] == "nondimensional model units: loss"
        assert ds["time"].attrs["units"] == "s" and "units_note" not in ds["time"].attrs
        assert "units_note" not in ds["mass"].attrs
    assert cf_units({"long_name": "no units"}) == {"long_name": "no units"}


def test_units_parse_with_cf_units_when_it_is_installed(tmp_path):
    cf = pytest.importorskip("cf_units")
    path = write_dataset(_dataset(), tmp_path / "out.nc")
    with xr.open_dataset(path) as ds:
        for var in ds.variables.values():
            cf.Unit(var.attrs["units"])


def test_provenance_names_dependency_versions_and_the_commit():
    import numpy

    provenance.cache_clear()  # cached per process: HEAD may have moved since another test asked
    info = provenance()
    assert f"numpy {numpy.__version__}" in info["dependencies"] and "h5netcdf" in info["dependencies"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=os.path.dirname(__file__))
    if head.returncode == 0:  # running from a checkout (CI and development)
        assert info["source_commit"].startswith(head.stdout.strip())
