"""The standard figures are drawn for 1-D, 2-D and 3-D results."""

from __future__ import annotations

import numpy as np
import pytest

import fpsolver as fp
from fpsolver.errors import InputError
from fpsolver.plotting import plot_dataset

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_plot_writes_a_png(ndim, tmp_path):
    axes = dict(list({"x": (-2.0, 2.0, 16), "y": (-2.0, 2.0, 12), "z": (-2.0, 2.0, 8)}.items())[:ndim])
    grid = fp.Grid.uniform(**axes)
    land = fp.Landscape.from_expression(" + ".join(f"({v}**2 - 1)**2" for v in grid.names), grid.names)
    problem = fp.FokkerPlanck(fp.Overdamped(land, temperature=0.5), grid)
    ds = problem.evolve(fp.gaussian(grid, [-1.0] * ndim, [0.3] * ndim), t_end=0.2, dt=0.1, save_every=0.1)
    ds = ds.merge(problem.stationary().to_dataset()).merge(problem.spectrum(k=2))
    out = plot_dataset(ds, tmp_path / "fig.png")
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_plot_needs_a_result(tmp_path):
    import xarray as xr

    with pytest.raises(InputError, match="none of the variables"):
        plot_dataset(xr.Dataset({"q": ("x", np.zeros(3))}), tmp_path / "fig.png")


def _every_task(tmp_path, sweep: str = "", ndim: int = 2):
    import warnings

    from fpsolver.runner import compute_runs
    from fpsolver.scenario import load_runs

    from .test_names import EVERY_TASK

    text = EVERY_TASK.split("sweep:")[0] + sweep
    if ndim == 1:
        text = text.replace(" + y**2", "").replace("  y: {min: -1.5, max: 1.5, n: 6}\n", "").replace(", 0.0]", "]").replace("[0.3, 0.3]", "[0.3]")
    path = tmp_path / "every.yaml"
    path.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rate caveats on this coarse grid are not under test
        return compute_runs(load_runs(path, tmp_path / "out.nc"))


def _check_figure(ds, titles: set[str]) -> None:
    import matplotlib.pyplot as plt

    from fpsolver.plotting import draw

    fig = draw(ds)
    try:
        axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]  # colour bars have no title
        assert titles <= {ax.get_title().split(" (")[0].split(" at ")[0] for ax in axes}
        for ax in axes:
            assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()
            assert "[" in ax.get_ylabel() or ax.get_ylabel() == "1 / T", ax.get_ylabel()  # units on every value axis
            if ax.get_legend():
                labels = [t.get_text() for t in ax.get_legend().get_texts()]
                lines = {line.get_label(): line for line in ax.get_lines()}
                assert all(np.any(np.isfinite(lines[lab].get_ydata())) for lab in labels if lab in lines)
    finally:
        plt.close(fig)


@pytest.mark.parametrize("ndim", [1, 2])
def test_every_task_gets_a_labelled_panel(ndim, tmp_path):
    ds = _every_task(tmp_path, ndim=ndim)
    _check_figure(ds, {"density p(t)", "probability conservation", "stationary density", "slowest eigenfunctions" if ndim == 1 else "eigenfunction 1, rate", "mean first-passage time", "escape rate"} - {"eigenfunction 1, rate"})


@pytest.mark.slow  # 3-5 s (subprocess imports / every task computed), more when the machine is shared
@pytest.mark.parametrize(
    "sweep",
    ["sweep:\n  model.temperature: [0.2, 0.25]\n", "sweep:\n  model.temperature: [0.2, 0.25]\n  grid.y.n: [6, 8]\n"],
)
def test_sweeps_of_every_task_are_drawn(sweep, tmp_path):
    ds = _every_task(tmp_path, sweep)
    _check_figure(ds, {"density", "probability conservation", "stationary density, per run", "relaxation rates", "mean first-passage time", "escape rate"})


def test_failed_runs_and_nan_theory_get_no_legend_entry(tmp_path):
    # One run failed (NaN everywhere) and the Kramers rate is NaN for all: neither may
    # appear in a legend; the estimator dimension is read under its new name too.
    import xarray as xr

    from fpsolver.plotting import draw

    t = xr.DataArray([0.1, 0.2, 0.3], dims="temperature", attrs={"long_name": "swept model.temperature", "units": "1"})
    rates = np.array([[1e-3, 1.1e-3], [np.nan, np.nan], [3e-3, 3.2e-3]])
    ds = xr.Dataset(
        {
            "escape_rate": (("temperature", "estimator"), rates, {"long_name": "escape rate", "units": "1"}),
            "kramers_rate": ("temperature", [np.nan] * 3, {"long_name": "Kramers rate", "units": "1"}),
            "run_error": ("temperature", ["", "F:9: sweep.model.temperature: no barrier", ""]),
        },
        coords={"temperature": t, "estimator": ["mfpt", "committor"]},
    )
    fig = draw(ds)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["mfpt", "committor"] and "1 sweep run(s) failed" in fig.texts[0].get_text()
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_a_run_with_only_the_time_from_its_start_is_drawn(tmp_path):
    # mfpt with field: false keeps only mfpt_at_start: one marker, labelled with its units.
    import xarray as xr

    ds = xr.Dataset({"mfpt_at_start": ((), 12.5, {"long_name": "mean first-passage time from the start", "units": "1"})}, attrs={"model_kind": "overdamped"})
    _check_figure(ds, {"mean first-passage time"})
    assert plot_dataset(ds, tmp_path / "fig.png").read_bytes()[:8] == PNG_MAGIC
