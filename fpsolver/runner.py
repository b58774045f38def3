"""Run the tasks of a loaded scenario and assemble one output dataset.

Tasks are computed through the registry :data:`TASKS` (one function per key of
``tasks``), each with its warnings labelled ``FILE: [sweep run K=V: ]TASK: ...``
and its run-time input errors located at ``tasks.TASK``. The runs of a sweep are
computed in isolation (:func:`compute_runs`): a failed run is NaN, with its
located message in ``run_error``, and does not stop the others.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .errors import FPSolverError, ScenarioError, SolverError, SweepError
from .fields_xr import TIME_UNITS
from .analysis import sharpness_fits
from .io import global_attrs, write_dataset
from .scenario.build import LoadedScenario, Run, build_located
from .scenario.sweep import Variant
from .stepping import NegativeDensityCheck

__all__ = ["run_scenario", "compute", "compute_runs", "compute_variant", "combine_runs", "RunResult", "run_file", "TASKS", "register_task", "labelled_warnings"]

logger = logging.getLogger(__name__)


TaskRunner = Callable[[LoadedScenario, Any, "bool | None"], xr.Dataset]

#: How each task of a scenario is computed, by its key in ``tasks`` (in output order).
TASKS: dict[str, TaskRunner] = {}


def register_task(name: str) -> Callable[[TaskRunner], TaskRunner]:
    """Decorator registering the runner of the scenario task ``name``."""

    def wrap(runner: TaskRunner) -> TaskRunner:
        TASKS[name] = runner
        return runner

    return wrap


@register_task("evolve")
def _evolve(scenario: LoadedScenario, ev: Any, progress: bool | None) -> xr.Dataset:
    problem = scenario.problem
    check = NegativeDensityCheck(problem.volumes, ev.method, interval=ev.save_every or ev.t_end)
    part = problem.evolve(scenario.initial, ev.t_end, ev.dt, ev.method, ev.save_every, callbacks=[check], progress=progress, surface=ev.surface, rtol=ev.rtol)
    part["negative_mass"] = _negative_mass(part["p"], problem.volumes)
    return part


@register_task("stationary")
def _stationary(scenario: LoadedScenario, task: Any, progress: bool | None) -> xr.Dataset:
    return scenario.problem.stationary().to_dataset()


@register_task("spectrum")
def _spectrum(scenario: LoadedScenario, task: Any, progress: bool | None) -> xr.Dataset:
    return scenario.problem.spectrum(k=task.k)


@register_task("mfpt")
def _mfpt(scenario: LoadedScenario, task: Any, progress: bool | None) -> xr.Dataset:
    problem = scenario.problem
    part = problem.mfpt(target=task.target).to_dataset() if task.field else xr.Dataset()
    if task.start is not None:
        value = problem.mfpt(task.start, task.target)
        part["mfpt_at_start"] = ((), value, {"long_name": f"mean first-passage time from {task.start}", "units": TIME_UNITS})
        step = getattr(problem.model, "iteration_time", None)
        if step is not None:
            part["mfpt_at_start_iterations"] = ((), value / step, {"long_name": f"mean first-passage time from {task.start} in optimizer iterations", "units": "1"})
    return part


@register_task("escape_rate")
def _escape_rate(scenario: LoadedScenario, task: Any, progress: bool | None) -> xr.Dataset:
    return scenario.problem.escape_rate(task.start, task.target, tuple(task.methods))


@register_task("simulate")
def _simulate(scenario: LoadedScenario, task: Any, progress: bool | None) -> xr.Dataset:
    """The optimizer's real discrete updates on an ensemble: escape times as ground truth."""
    from . import simulate

    run = scenario.optimizer
    ds = simulate.escape_times(
        run.optimizer, run.landscape, task.start, task.target, noise=run.noise,
        particles=task.particles, max_iterations=task.max_iterations, seed=task.seed, window=task.hazard_window,
    )
    # Per-particle times stay out of the file; the survival curve's time axis is renamed so that
    # it cannot clash with an evolution's time dimension.
    ds = ds.drop_vars(["escape_iteration", "particle"]).rename({"time": "iteration_time"})
    ds["iteration_time"].attrs.update({"long_name": "SGD time of the iteration (iterations * lr)", "units": "1"})
    ds["iteration"].attrs.update({"long_name": "optimizer iteration", "units": "1"})
    ds["survival"].attrs.update({"long_name": "simulated fraction of particles not yet escaped", "units": "1"})
    for name in ("mean_escape_iterations", "mean_escape_iterations_ci"):
        ds[name].attrs.update({"long_name": "simulated mean escape time in iterations", "units": "1"})
    for name in ("mean_escape_time", "mean_escape_time_ci"):
        ds[name].attrs.update({"long_name": "simulated mean escape time in SGD time (iterations * lr)", "units": "1"})
    ds["escaped_fraction"].attrs.update({"long_name": "fraction of particles that escaped", "units": "1"})
    ds["mean_escape_estimator"].attrs.update({"long_name": "how the simulated mean was had: complete (every particle escaped), censored (survival + constant late hazard), none"})
    ds["escape_hazard"].attrs.update({"long_name": "simulated escapes per particle-iteration over the late window (censored runs)", "units": "1"})
    ds["hazard_window_escapes"].attrs.update({"long_name": "simulated escapes in the late window of a censored run", "units": "1"})
    ds.attrs = {f"simulate_{k}": v for k, v in ds.attrs.items()}
    return ds


@register_task("escape_theory")
def _escape_theory(scenario: LoadedScenario, task: Any, progress: bool | None) -> xr.Dataset:
    """Closed-form escape time of the optimizer's model, Kramers(-Langer) with the local temperature."""
    from .comparison import escape_theory

    ds = escape_theory(scenario.problem, task.start, task.target)
    ds["dynamics"] = ((), scenario.optimizer.dynamics, {"long_name": "continuous-time model of the optimizer (overdamped or inertial)"})
    return ds


@register_task("stationary_variance")
def _stationary_variance(scenario: LoadedScenario, task: Any, progress: bool | None) -> xr.Dataset:
    """Variance in the start's well: quasi-stationary PDE density, surviving simulated particles, harmonic theory."""
    from . import simulate
    from .comparison import harmonic_variance, well_variance

    run = scenario.optimizer
    sim = simulate.quasi_stationary_moments(
        run.optimizer, run.landscape, task.start, task.target, noise=run.noise, particles=task.particles,
        burn_in=task.burn_in, samples=task.samples, every=task.every, seed=task.seed,
    )
    ds = well_variance(scenario.problem, task.target).merge(harmonic_variance(scenario.problem, task.start))
    ds["well_variance_simulated"] = (("parameter",), sim["variance"].values, {"long_name": "variance of theta in the well (surviving particles, simulator)", "units": "1"})
    ds["well_variance_simulated_ci"] = (("bound", "parameter"), sim["variance_ci"].values, {"long_name": "confidence interval of the simulated variance", "units": "1"})
    ds["well_surviving_fraction"] = ((), float(sim["surviving_fraction"]), {"long_name": "fraction of simulated particles still in the well at the last sample", "units": "1"})
    return ds.assign_coords(bound=["low", "high"])


@contextmanager
def labelled_warnings(label: str) -> Iterator[None]:
    """Re-issue every warning raised inside the block with ``label: `` in front of its message.

    Warnings then say which file, sweep run and task they belong to.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            pending = list(caught)
    for w in pending:
        warnings.warn(f"{label}: {w.message}", w.category, stacklevel=3)


def compute(scenario: LoadedScenario, progress: bool | None = None, label: str | None = None) -> xr.Dataset:
    """Run every task of ``scenario``; return the combined dataset (not written).

    Warnings are prefixed with ``label`` (default: the scenario file) and the task name.
    """
    problem, tasks = scenario.problem, scenario.spec.tasks
    label = label or scenario.source
    todo = [(name, getattr(tasks, name)) for name in TASKS if getattr(tasks, name) is not None]
    parts: list[xr.Dataset] = []
    timings: dict[str, float] = {}
    with _bar(len(todo), "tasks", progress) as bar:
        for name, task in todo:
            bar.set_description(name)
            start = time.perf_counter()
            with labelled_warnings(f"{label}: {name}"), _located_at(scenario, ("tasks", name)):
                parts.append(TASKS[name](scenario, task, progress))
            timings[name] = time.perf_counter() - start
            bar.update(1)
    notes = {k: v for part in parts for k, v in part.attrs.items() if k in ("kramers_note", "time_units", "scheme", "dt", "rtol", "factorisations", "solver", "surface", "positivity_limiter", "positivity_removed") or k.startswith("simulate_")}
    ds = xr.merge(parts, combine_attrs="drop_conflicts", compat="no_conflicts", join="exact")
    for task, seconds in timings.items():
        logger.info("%s: %s took %.3f s", label, task, seconds)
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


@contextmanager
def _located_at(scenario: LoadedScenario, path: tuple[str, ...]) -> Iterator[None]:
    """An input error found only while computing (an unreachable target...) gets the task's location."""
    try:
        with scenario.located.at(path):
            yield
    except SolverError as exc:  # a numerical failure, not bad input: keep its kind, name the task
        raise SolverError(f"{'.'.join(path)}: {exc}") from None


def _bar(total: int, unit: str, progress: bool | None) -> Any:
    """A tqdm bar over ``total`` items (disabled unless ``progress``)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, leave=False, disable=not progress)


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


@dataclass
class RunResult:
    """One sweep run's dataset, or the located failure (``(where, message)``) that stopped it."""

    dataset: xr.Dataset | None
    failure: tuple[str, str] | None


def compute_variant(
    source: str, variant: Variant, keys: list[str], scenario: LoadedScenario | None = None, output: Path | None = None, progress: bool | None = None
) -> RunResult:
    """Compute one sweep run in isolation; never raises for what the run itself does.

    ``scenario`` is the built run; without it the run is rebuilt from ``variant``'s YAML data
    (in a worker process, where only plain data travels).
    """
    logger.info("%s: sweep run %s", source, variant.label)
    try:
        if scenario is None:
            scenario = build_located(variant.located, output)
        return RunResult(compute(scenario, progress, label=f"{source}: sweep run {variant.label}"), None)
    except Exception as exc:  # noqa: BLE001 - one failing run must not lose the others
        return RunResult(None, _located_failure(source, variant, keys, exc))


def sweep_keys(run: Run) -> list[str]:
    """The swept keys of a sweep, in file order."""
    return list(run.runs[0][0].values)


def compute_runs(run: Run, progress: bool | None = None) -> xr.Dataset:
    """Compute every run of a file, one after the other; a sweep's runs are stacked (:func:`combine_runs`).

    Each run is computed in isolation: a run that fails is NaN in every variable and its
    located message (``FILE:LINE: sweep.KEY: message (in the sweep run KEY=VALUE)``) is in
    ``run_error`` (empty for the runs that worked). Only when every run fails is nothing
    returned: :class:`SweepError`. ``fpsolver sweep`` (:mod:`fpsolver.sweeps`) computes the
    same runs in parallel.
    """
    if not run.is_sweep:
        return compute(run.runs[0][1], progress)
    keys = sweep_keys(run)
    results: list[RunResult] = []
    with _bar(len(run.runs), "run", progress) as bar:
        for variant, scenario in run.runs:
            bar.set_description(variant.label)
            results.append(compute_variant(run.source, variant, keys, scenario, progress=progress))
            bar.update(1)
    return combine_runs(run, results)


def combine_runs(run: Run, results: list[RunResult]) -> xr.Dataset:
    """Stack the results of a sweep's runs along the sweep dimension.

    One swept key gives a dimension named after its last part (``temperature``); several
    keys (or ``mode: zip``) give a dimension ``run`` with one coordinate per key. Runs on
    different grids are aligned on the union of their cell centres (NaN elsewhere).
    """
    keys = sweep_keys(run)
    single = len(keys) == 1 and len({str(v.values[keys[0]]) for v, _ in run.runs}) == len(run.runs)
    dim = keys[0].split(".")[-1] if single else "run"
    good = [r.dataset for r in results if r.dataset is not None]
    if not good:
        raise SweepError([r.failure for r in results if r.failure is not None])
    if any(dim in ds.dims for ds in good):
        dim = "run"
    template = _nan_like(good[0])
    parts = _fill_missing([template if r.dataset is None else r.dataset for r in results])
    # Attributes that differ between runs (the swept model_* values, timings) are dropped;
    # the swept values live in the sweep coordinate(s) and the 'sweep' attribute.
    # Runs on different grids (a sweep of grid keys) are aligned on the union of their cell
    # centres; grid-shaped variables are NaN where a run has no cell. Rates are unaffected.
    combined = xr.concat(parts, dim=dim, data_vars="all", coords="different", compat="equals", join="outer", combine_attrs="drop_conflicts")
    combined.attrs.update({k: good[0].attrs[k] for k in GLOBAL_KEYS if k in good[0].attrs})
    for key in keys:
        name = key.split(".")[-1] if single and dim != "run" else key.replace(".", "_")
        values = _coordinate_values([v.values[key] for v, _ in run.runs])
        combined = combined.assign_coords({name: (dim, values, {"long_name": f"swept {key}", "units": "1", "units_note": "as in the scenario"})})
    errors = np.array(["" if r.failure is None else f"{r.failure[0]}: {r.failure[1]}" for r in results], dtype=object)
    combined["run_error"] = (dim, errors, {"long_name": "why the sweep run failed (empty: it ran)"})
    combined.attrs["sweep"] = "; ".join(f"{k} = {[v.values[k] for v, _ in run.runs]}" for k in keys)
    return combined.merge(sharpness_fits(combined))


def _coordinate_values(values: list[Any]) -> list[Any]:
    """Swept values as one coordinate entry each. Where some are lists or mappings every entry is
    text: a swept point (``tasks.mfpt.start: [[0.5, 0.5], ...]``) as ``[0.5, 0.5]``, a swept
    task (``tasks.simulate: [null, {particles: 200, ...}]``) as its JSON, ``None`` as ``None``."""
    if not any(isinstance(v, (list, tuple, dict)) for v in values):
        return values
    return [json.dumps(v) if isinstance(v, dict) else str(list(v)) if isinstance(v, (list, tuple)) else str(v) for v in values]


def _located_failure(source: str, variant: Variant, keys: list[str], exc: Exception) -> tuple[str, str]:
    """(``FILE:LINE: sweep.KEY``, ``message (in the sweep run KEY=VALUE)``) for a run that failed."""
    line = variant.located.line(tuple(keys[0].split(".")))
    key = f"sweep.{keys[0]}" if len(keys) == 1 else "sweep"
    if isinstance(exc, ScenarioError):  # located at a task: keep the key, the line is the sweep's
        message = "; ".join(f"{where.split(': ', 1)[-1]}: {text}" for where, text in exc.problems)
    else:
        message = str(exc) if isinstance(exc, FPSolverError) else f"{type(exc).__name__}: {exc}"
    return f"{source}:{line}: {key}", f"{message} (in the sweep run {variant.label})"


def _fill_missing(parts: list[xr.Dataset]) -> list[xr.Dataset]:
    """Every run with the data variables of all (NaN where a run lacks one: a task the sweep
    switched off with ``null``), so that they stack and their coordinates line up."""
    names = list(dict.fromkeys(n for ds in parts for n in ds.data_vars))
    filled = []
    for ds in parts:
        for name in (n for n in names if n not in ds):
            donor = next(p for p in parts if name in p)
            ds = ds.merge(_nan_like(donor[[name]]), combine_attrs="override")
        filled.append(ds)
    return filled


def _nan_like(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with every data variable NaN (the stand-in for a failed sweep run)."""
    out = ds.copy()
    for name, var in ds.data_vars.items():
        out[name] = xr.full_like(var, np.nan, dtype=float)
    return out


def run_file(run: Run, progress: bool | None = None) -> tuple[Path, xr.Dataset]:
    """Compute all runs of a scenario file and write one dataset atomically."""
    ds = compute_runs(run, progress)
    return write_dataset(ds, run.output), ds
