"""Command-line interface: ``fpsolver run | validate | info``.

Exit codes: 0 success, 2 bad input (scenario errors, one ``FILE:LINE: key.path:
message`` line each, no traceback), 1 internal error.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import traceback
import warnings
from collections.abc import Callable
from functools import wraps
from importlib import metadata
from typing import Any

import click

from ._version import __version__
from .errors import InputError, ScenarioError, SweepError

__all__ = ["main"]

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1


def _report_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Map exceptions to exit codes and one-line messages."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            return func(*args, **kwargs)
        except ScenarioError as exc:
            for where, message in exc.problems:
                click.echo(f"{where}: {message}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except SweepError as exc:
            for where, message in exc.problems:
                click.echo(f"{where}: {message}", err=True)
            ctx.exit(EXIT_INTERNAL)
        except InputError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except (click.exceptions.Exit, click.ClickException, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the CLI boundary reports every failure
            if ctx.find_root().params.get("debug"):
                traceback.print_exc()
            click.echo(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True)
            ctx.exit(EXIT_INTERNAL)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fpsolver")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(debug: bool, verbose: int) -> None:
    """Fokker-Planck solvers for how fast optimizers escape loss valleys."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    warnings.formatwarning = _one_line_warning


def _one_line_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> str:
    """Warnings as 'warning: message' lines, without source-code context."""
    return f"warning: {message}\n"


def _progress_default() -> bool:
    return sys.stderr.isatty() and not os.environ.get("CI")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True, path_type=str))
@click.option("-o", "--output", type=click.Path(path_type=str), help="Output .nc file (only with a single scenario).")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a terminal, off in CI).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars and no summary lines; only warnings and errors.")
@_report_errors
def run(files: tuple[str, ...], output: str | None, progress: bool | None, quiet: bool) -> None:
    """Run scenario FILES and write one netCDF file per scenario.

    Exit status 1 when a sweep run failed (the other runs are written; the failed
    ones are NaN with their message in ``run_error``).
    """
    from .runner import run_file
    from .scenario import load_runs

    if output is not None and len(files) > 1:
        raise InputError("-o/--output can only be used with a single scenario file")
    loaded = [load_runs(f, output) for f in files]  # validate everything before computing anything
    show = False if quiet else _progress_default() if progress is None else progress
    failed = 0
    for run in loaded:
        path, ds = run_file(run, progress=show)
        errors = [str(e) for e in ds["run_error"].values if e] if "run_error" in ds else []
        for line in errors:
            click.echo(line, err=True)
        failed += len(errors)
        if not quiet:
            detail = f"{len(run.runs)} sweep runs, {len(errors)} failed" if run.is_sweep else ds.attrs.get("wall_seconds", "")
            click.echo(f"{run.source}: wrote {path} ({detail})")
            if "mass" in ds:
                click.echo(f"{run.source}: {_conservation(ds)}")
    if failed:
        click.get_current_context().exit(EXIT_INTERNAL)


@main.command()
@click.argument("file", type=click.Path(dir_okay=True, path_type=str))
@click.option("-o", "--output", type=click.Path(path_type=str), help="Output .nc file (default: the scenario's).")
@click.option("-w", "--workers", type=click.IntRange(min=1), default=None, help="Local worker processes (default: the number of cores).")
@click.option("--scheduler", metavar="ADDRESS", default=None, help="A dask.distributed scheduler (tcp://host:8786) instead of local processes.")
@click.option("--progress/--no-progress", default=None, help="Progress bar over the runs (default: on a terminal, off in CI).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line; only warnings and errors.")
@_report_errors
def sweep(file: str, output: str | None, workers: int | None, scheduler: str | None, progress: bool | None, quiet: bool) -> None:
    """Run the sweep of scenario FILE in parallel and write one netCDF file.

    The runs go to local processes, or to a dask.distributed cluster with --scheduler. Each
    finished run is kept beside the output until every run has landed, so rerunning the
    command after an interruption or a failed run computes only what is missing. Exit status 1
    when a run failed (the others are written; the failed ones are NaN with their message in
    ``run_error``).
    """
    from .sweeps import run_sweep

    show = False if quiet else _progress_default() if progress is None else progress
    path, ds, failed = run_sweep(file, output, workers=workers, scheduler=scheduler, progress=show)
    for line in (str(e) for e in ds["run_error"].values if e):
        click.echo(line, err=True)
    if not quiet:
        click.echo(f"{file}: wrote {path} ({ds.sizes[ds['run_error'].dims[0]]} sweep runs, {failed} failed)")
    if failed:
        click.get_current_context().exit(EXIT_INTERNAL)


def _conservation(ds: Any) -> str:
    """How well the evolve task kept probability: drift of the total and the negative part."""
    mass = ds["mass"]
    drift = abs(mass - mass.isel(time=0)).max().item()
    negative = ds["negative_mass"].max().item() if "negative_mass" in ds else float("nan")
    return f"probability conservation: max |mass(t) - mass(0)| = {drift:.2g}, max negative mass = {negative:.2g} (over {mass.sizes['time']} output times)"


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=str))
@_report_errors
def validate(files: tuple[str, ...]) -> None:
    """Check scenario FILES without computing anything."""
    from .scenario import load_runs

    problems: list[tuple[str, str]] = []
    for f in files:
        try:
            run = load_runs(f)
        except ScenarioError as exc:
            problems.extend(exc.problems)
            continue
        scenario = run.runs[0][1]
        grid = scenario.problem.grid
        sweep = f", {len(run.runs)} sweep runs" if run.is_sweep else ""
        click.echo(f"{f}: ok ({'x'.join(map(str, grid.shape))} cells, tasks: {_task_names(scenario)}{sweep})")
    if problems:
        raise ScenarioError(problems)


def _task_names(scenario: Any) -> str:
    return ", ".join(k for k, v in scenario.spec.tasks if v is not None)


@main.command()
def info() -> None:
    """Versions, registered schemes, solvers and landscapes, cores and threads."""
    from .landscapes import LIBRARY
    from .linalg import SOLVERS
    from .stepping import SCHEMES
    from .threads import thread_summary

    click.echo(f"fpsolver {__version__} on Python {platform.python_version()} ({platform.platform()})")
    for dep in ("numpy", "scipy", "sympy", "xarray", "h5netcdf", "h5py", "pydantic", "findiff", "matplotlib"):
        try:
            version = metadata.version(dep)
        except metadata.PackageNotFoundError:
            version = "not installed"
        click.echo(f"  {dep:<11} {version}")
    click.echo(f"time-stepping schemes: {', '.join(SCHEMES)}")
    click.echo(f"linear solvers:        {', '.join(SOLVERS)}")
    click.echo(f"landscape kinds:       {', '.join(LIBRARY)}, data, table (or 'expression')")
    click.echo("conventions:           ito, stratonovich, isothermal")
    click.echo(f"cores and threads:     {thread_summary()}")


@main.command()
@click.argument("dataset", type=click.Path(path_type=str))
@click.option("-o", "--output", type=click.Path(path_type=str), help="Image file (default: DATASET with .png).")
@_report_errors
def plot(dataset: str, output: str | None) -> None:
    """Draw the standard figures of an output DATASET (.nc) into a PNG."""
    from pathlib import Path

    import xarray as xr

    from .plotting import plot_dataset

    path = Path(dataset)
    if not path.is_file():
        raise InputError(f"{dataset}: file not found")
    try:
        ds = xr.open_dataset(path, engine="h5netcdf")
    except (OSError, ValueError) as exc:
        raise InputError(f"{dataset}: not a readable netCDF4/HDF5 dataset ({exc})") from None
    with ds:
        written = plot_dataset(ds, output or path.with_suffix(".png"))
    click.echo(f"{dataset}: wrote {written}")


if __name__ == "__main__":  # python -m fpsolver.cli
    main()
