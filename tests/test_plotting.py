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
