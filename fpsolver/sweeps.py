"""Parallel sweeps: the runs of one scenario file on local processes or a dask cluster.

``fpsolver sweep FILE`` computes the runs of a ``sweep:`` block in parallel and writes one
dataset with the swept keys as dimensions, like ``fpsolver run`` does sequentially:

* ``--workers N`` (default: the number of cores) local processes
  (:class:`concurrent.futures.ProcessPoolExecutor`), or ``--scheduler ADDRESS`` a running
  ``dask.distributed`` scheduler — both are driven through the same
  :class:`concurrent.futures.Executor` interface (dask's ``Client.get_executor()``), so the
  code is the same on a laptop and on a cluster;
* every run is rebuilt from its (picklable) YAML data inside its worker and computed in
  isolation: a failing run is recorded (NaN and its located message) and the others land;
* each finished run is written to ``.<output name>.runs/<key>.nc`` beside the output, keyed by
  a hash of the run's scenario data, so an interrupted sweep, or one rerun after a failed run
  was fixed, skips the runs already done; the folder is removed once every run has landed.
  Local workers write their own run files, in parallel: done in the parent, that netCDF
  traffic (0.15 s each way per run) was serial and took 11 of the 31 s of the 20-run
  flat-minima sweep on 2 workers. A cluster's workers may not share the file system, so for
  them the parent writes. Run files are read back only when a sweep resumes (some runs were
  already done), and then every run is taken from its file, so that fresh and resumed runs
  combine alike.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import yaml

from .errors import InputError
from .io import write_dataset
from .runner import RunResult, combine_runs, compute_variant, sweep_keys
from .scenario.build import load_runs
from .scenario.sweep import Variant

__all__ = ["run_sweep", "run_key", "cache_dir"]

logger = logging.getLogger(__name__)


def run_key(data: Any) -> str:
    """A stable key of one run: the SHA-256 of its scenario data as canonical YAML."""
    text = yaml.safe_dump(data, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def cache_dir(output: Path) -> Path:
    """Where the finished runs of a sweep writing ``output`` are kept."""
    return output.parent / f".{output.stem}.runs"


def _work(source: str, variant: Variant, keys: list[str], output: str, keep: str | None = None) -> RunResult:
    """Worker: rebuild one run from its YAML data and compute it (never raises for the run's own failures).

    With ``keep`` (a run file path), a successful run is also written there.
    """
    result = compute_variant(source, variant, keys, output=Path(output))
    if keep is not None:
        _keep(result, Path(keep))
    return result


def _keep(result: RunResult, path: Path) -> None:
    """Write a successful run to its run file (what a rerun of an interrupted sweep skips)."""
    if result.dataset is not None:
        write_dataset(result.dataset, path)


def run_sweep(
    path: str | Path,
    output: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool | None = None,
) -> tuple[Path, xr.Dataset, int]:
    """Compute the runs of the scenario file ``path`` in parallel and write one dataset.

    Returns the output path, the dataset and the number of runs that failed.
    """
    run = load_runs(path, output)  # validates every run before anything is computed
    if not run.is_sweep:
        raise InputError(f"{run.source}: has no sweep block; use 'fpsolver run'")
    out = run.output
    swept = sweep_keys(run)
    cache = cache_dir(out)
    cache.mkdir(parents=True, exist_ok=True)
    keys = [run_key(variant.located.data) for variant, _ in run.runs]
    results: list[RunResult | None] = [None] * len(run.runs)
    for i, key in enumerate(keys):
        done = cache / f"{key}.nc"
        if done.exists():
            results[i] = RunResult(_load(done), None)
            logger.info("%s: run %s already done (%s)", run.source, run.runs[i][0].label, done)
    # Largest grids first (longest-processing-time order): the runs' costs differ 50-fold in a
    # sweep mixing overdamped and phase-space models, and a big run started last leaves a core idle.
    todo = sorted((i for i, r in enumerate(results) if r is None), key=lambda i: -run.runs[i][1].problem.grid.size)
    resumed = len(todo) < len(results)
    if todo:
        local = scheduler is None
        with _Workers(workers, scheduler) as pool, _bar(len(todo), progress) as bar:
            with _forking(local):  # the local workers are forked while the runs are submitted
                futures = {pool.submit(_work, run.source, run.runs[i][0], swept, str(out), str(cache / f"{keys[i]}.nc") if local else None): i for i in todo}
            for future in as_completed(futures):
                i = futures[future]
                result = future.result()
                if not local:
                    _keep(result, cache / f"{keys[i]}.nc")
                if resumed and result.dataset is not None:  # combine like the runs read from their files
                    result = RunResult(_load(cache / f"{keys[i]}.nc"), None)
                results[i] = result
                bar.update(1)
    combined = combine_runs(run, [r for r in results if r is not None])  # SweepError when every run failed
    failed = sum(r is not None and r.failure is not None for r in results)
    written = write_dataset(combined, out)
    if not failed:
        shutil.rmtree(cache, ignore_errors=True)  # everything landed: the per-run files are no longer needed
    return written, combined, failed


@contextlib.contextmanager
def _forking(local: bool) -> Iterator[None]:
    """Do in the parent, once, what every forked worker would otherwise repeat on its first run.

    * import the netCDF backend (0.3 s in every worker's first write);
    * let xarray look up its duck-array modules: its first ``Variable`` imports ``dask.array``
      when dask is installed (0.4 s, measured in every worker's first run);
    * while the workers are forked, keep the parent's objects (modules, the validated runs) in
      the permanent generation (:func:`gc.freeze`, as the :mod:`gc` documentation advises before
      ``fork``), so the workers' garbage collector neither traverses them nor copies their pages.
    """
    if not local:
        yield
        return
    import h5netcdf  # noqa: F401

    xr.Variable(("x",), np.zeros(1))
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _load(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


class _Workers:
    """Local processes, or a dask.distributed cluster's executor, as a context manager."""

    def __init__(self, workers: int | None, scheduler: str | None):
        self.workers = workers or os.cpu_count() or 1
        self.scheduler = scheduler
        self._client = None

    def __enter__(self) -> Executor:
        if self.scheduler is None:
            # Sweeps parallelise over processes: one BLAS thread in each (with as many workers as
            # cores a second one only competes for them; with fewer it made run times erratic).
            self._pool: Executor = ProcessPoolExecutor(max_workers=self.workers, initializer=_one_blas_thread)
            return self._pool
        try:
            from distributed import Client
        except ImportError:
            raise InputError("--scheduler needs dask.distributed: pip install 'fpsolver[dask]'") from None

        self._client = Client(self.scheduler)
        self._pool = self._client.get_executor()
        return self._pool

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)
        if self._client is not None:
            self._client.close()


def _one_blas_thread() -> None:
    """Worker initializer: BLAS single-threaded (unless the user sized the pools with a thread variable).

    With one worker per core, a second BLAS thread per worker only competes for the cores: measured
    on 2 busy cores, λ₁ on 3200 cells took 10 ms with one thread against 34-55 ms with two.
    """
    from threadpoolctl import threadpool_limits

    from .threads import THREAD_VARIABLES

    if not any(name in os.environ for name in THREAD_VARIABLES):
        threadpool_limits(1, user_api="blas")


def _bar(total: int, progress: bool | None) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="run", desc="sweep", leave=False, disable=not progress)
