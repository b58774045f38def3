"""Run the tasks of a loaded scenario and assemble one output dataset."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import xarray as xr

from .io import global_attrs, write_dataset
from .scenario.build import LoadedScenario, Run
from .stepping import NegativeDensityCheck

__all__ = ["run_scenario", "compute", "compute_runs", "run_file"]

logger = logging.getLogger(__name__)


def compute(scenario: LoadedScenario, progress: bool | None = None) -> xr.Dataset:
    """Run every task of ``scenario``; return the combined dataset (not written)."""
    problem, tasks = scenario.problem, scenario.spec.tasks
    parts: list[xr.Dataset] = []
    timings: dict[str, float] = {}
    if tasks.evolve is not None:
        ev = tasks.evolve
        start = time.perf_counter()
        check = NegativeDensityCheck(problem.volumes, ev.scheme, interval=ev.save_every or ev.t_end)
        part = problem.evolve(scenario.initial, ev.t_end, ev.dt, ev.scheme, ev.save_every, callbacks=[check], progress=progress, surface=ev.surface)
        part["negative_mass"] = _negative_mass(part["p"], problem.volumes)
        parts.append(part)
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
    notes = {k: v for part in parts for k, v in part.attrs.items() if k in ("kramers_note", "time_units", "scheme", "dt", "surface")}
    ds = xr.merge(parts, combine_attrs="drop_conflicts", compat="no_conflicts", join="exact")
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


def _negative_mass(p: xr.DataArray, volumes: np.ndarray) -> xr.DataArray:
    r"""Probability in cells where the density is negative, :math:`-\sum_i V_i \min(p_i, 0)`, per output time."""
    negative = np.maximum(-p.values.reshape(p.sizes["time"], -1), 0.0)
    attrs = {"long_name": "negative probability (round-off level when the scheme kept p >= 0)", "units": "1"}
    return xr.DataArray(negative @ volumes, dims=("time",), attrs=attrs)


def run_scenario(scenario: LoadedScenario, progress: bool | None = None) -> tuple[Path, xr.Dataset]:
    """Compute ``scenario`` and write its dataset atomically to its output path."""
    ds = compute(scenario, progress)
    return write_dataset(ds, scenario.output), ds


#: Global attributes kept from the first run of a sweep (they describe the file, not the run).
GLOBAL_KEYS = ("Conventions", "title", "source", "history", "date_created", "scenario_file", "scenario", "tasks")


def compute_runs(run: Run, progress: bool | None = None) -> xr.Dataset:
    """Compute every run of a file; a sweep's runs are stacked along the sweep dimension.

    One swept key gives a dimension named after its last part (``temperature``); several
    keys (or ``mode: zip``) give a dimension ``run`` with one coordinate per key. Runs on
    different grids are aligned on the union of their cell centres (NaN elsewhere).
    """
    if not run.is_sweep:
        return compute(run.runs[0][1], progress)
    keys = list(run.runs[0][0].values)
    single = len(keys) == 1 and len({str(v.values[keys[0]]) for v, _ in run.runs}) == len(run.runs)
    dim = keys[0].split(".")[-1] if single else "run"
    parts = []
    for variant, scenario in run.runs:
        logger.info("%s: sweep run %s", run.source, variant.label)
        ds = compute(scenario, progress)
        if dim in ds.dims:
            dim = "run"
        parts.append(ds)
    # Attributes that differ between runs (the swept model_* values, timings) are dropped;
    # the swept values live in the sweep coordinate(s) and the 'sweep' attribute.
    # Runs on different grids (a sweep of grid keys) are aligned on the union of their cell
    # centres; grid-shaped variables are NaN where a run has no cell. Rates are unaffected.
    combined = xr.concat(parts, dim=dim, data_vars="all", coords="different", compat="equals", join="outer", combine_attrs="drop_conflicts")
    combined.attrs.update({k: parts[0].attrs[k] for k in GLOBAL_KEYS if k in parts[0].attrs})
    for key in keys:
        name = key.split(".")[-1] if single else key.replace(".", "_")
        values = [v.values[key] for v, _ in run.runs]
        combined = combined.assign_coords({name: (dim, values, {"long_name": f"swept {key}", "units": "as in the scenario"})})
    combined.attrs["sweep"] = "; ".join(f"{k} = {[v.values[k] for v, _ in run.runs]}" for k in keys)
    return combined


def run_file(run: Run, progress: bool | None = None) -> tuple[Path, xr.Dataset]:
    """Compute all runs of a scenario file and write one dataset atomically."""
    ds = compute_runs(run, progress)
    return write_dataset(ds, run.output), ds
