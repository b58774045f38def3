"""Cores and thread pools reported by `fpsolver info` and written to output attrs (issue #10)."""

from __future__ import annotations

import os

import fpsolver as fp
from fpsolver.threads import thread_info, thread_summary


def test_thread_variables_and_cores_are_reported(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    thread_info.cache_clear()
    try:
        info = thread_info()
        assert info["variables"]["OPENBLAS_NUM_THREADS"] == "3" and "OMP_NUM_THREADS" not in info["variables"]
        assert info["cores"] == os.cpu_count() and 1 <= info["usable_cores"] <= info["cores"]
        assert "OPENBLAS_NUM_THREADS=3" in thread_summary() and f"{os.cpu_count()} cores" in thread_summary()
    finally:
        thread_info.cache_clear()


def test_outputs_record_the_threads():
    grid = fp.Grid.uniform(x=(-1, 1, 20))
    problem = fp.FokkerPlanck(fp.Overdamped(fp.Landscape.from_expression("x**2"), temperature=1.0), grid)
    ds = problem.evolve(fp.gaussian(grid, mean=[0.0], std=[0.3]), t_end=0.1, dt=0.05)
    assert ds.attrs["threads"] == thread_summary() and "cores" in ds.attrs["threads"]
