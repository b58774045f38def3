"""Run the tasks of a loaded scenario and assemble one output dataset."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import xarray as xr

from .io import global_attrs, write_dataset
from .scenario.build import LoadedScenario

__all__ = ["run_scenario", "compute"]

logger = logging.getLogger(__name__)


def compute(scenario: LoadedScenario, progress: bool | None = None) -> xr.Dataset:
    """Run every task of ``scenario``; return the combined dataset (not written)."""
    problem, tasks = scenario.problem, scenario.spec.tasks
    parts: list[xr.Dataset] = []
    timings: dict[str, float] = {}
    if tasks.evolve is not None:
        ev = tasks.evolve
        start = time.perf_counter()
        parts.append(problem.evolve(scenario.initial, ev.t_end, ev.dt, ev.scheme, ev.save_every, progress=progress))
        timings["evolve"] = time.perf_counter() - start
    if tasks.stationary is not None:
        start = time.perf_counter()
        parts.append(problem.stationary().to_dataset())
        timings["stationary"] = time.perf_counter() - start
    if tasks.spectrum is not None:
        start = time.perf_counter()
        parts.append(problem.spectrum(k=tasks.spectrum.k))
        timings["spectrum"] = time.perf_counter() - start
    if tasks.mfpt is not None:
        start = time.perf_counter()
        field = problem.mfpt(target=tasks.mfpt.target)
        part = field.to_dataset()
        if tasks.mfpt.start is not None:
            value = problem.mfpt(tasks.mfpt.start, tasks.mfpt.target)
            part["mfpt_at_start"] = ((), value, {"long_name": f"mean first-passage time from {tasks.mfpt.start}", "units": field.attrs["units"]})
        parts.append(part)
        timings["mfpt"] = time.perf_counter() - start
    if tasks.escape_rate is not None:
        er = tasks.escape_rate
        start = time.perf_counter()
        parts.append(problem.escape_rate(er.start, er.target, tuple(er.methods)))
        timings["escape_rate"] = time.perf_counter() - start
    notes = {k: v for part in parts for k, v in part.attrs.items() if k in ("kramers_note", "time_units", "scheme", "dt")}
    ds = xr.merge(parts, combine_attrs="drop", compat="no_conflicts", join="exact")
    for task, seconds in timings.items():
        logger.info("%s: %s took %.3f s", scenario.source, task, seconds)
    ds.attrs = {
        **problem.attrs(),
        **notes,
        **global_attrs(
            title=scenario.spec.title or f"fpsolver run {scenario.spec.name}",
            history=f"fpsolver run {scenario.source}",
            scenario=scenario.resolved_yaml(),
            scenario_file=scenario.source,
            tasks=", ".join(timings),
            wall_seconds=", ".join(f"{k}={v:.3f}" for k, v in timings.items()),
        ),
    }
    return ds


def run_scenario(scenario: LoadedScenario, progress: bool | None = None) -> tuple[Path, xr.Dataset]:
    """Compute ``scenario`` and write its dataset atomically to its output path."""
    ds = compute(scenario, progress)
    return write_dataset(ds, scenario.output), ds
