"""Work is bounded before it starts: memory and step estimates, refused with advice."""

from __future__ import annotations

import pytest
import scipy.sparse as sps

from fpsolver import FokkerPlanck, Grid, Landscape, Overdamped
from fpsolver import resources
from fpsolver.errors import InputError, ScenarioError
from fpsolver.linalg import factorize
from fpsolver.scenario import load_scenario

from .conftest import time_limit
from .test_scenario import GOOD


def _lu_entries(shape: tuple[int, ...]) -> int:
    names = ["x", "y", "z"][: len(shape)]
    grid = Grid.uniform(**{v: (-2.0, 2.0, n) for v, n in zip(names, shape)})
    landscape = Landscape.from_expression(" + ".join(f"{v}**4/4 - {v}**2/2" for v in names), names)
    operator = FokkerPlanck(Overdamped(landscape, 0.2), grid).operator
    lu = factorize(sps.identity(grid.size, format="csr") - 0.1 * operator)._lu
    return lu.L.nnz + lu.U.nnz


@pytest.mark.parametrize("shape", [(3000,), (70, 70), (12, 12, 12)])
def test_superlu_estimate_matches_the_real_fill(shape):
    # Sizes other than the calibration points: the power law must predict the real factor
    # within a factor 2 (the ordering's fill is not a clean power, and the estimate is
    # meant to be conservative: it may overestimate more than it underestimates).
    predicted = resources.estimate(shape, "superlu").factor_bytes / resources.LU_BYTES_PER_ENTRY
    actual = _lu_entries(shape)
    assert 0.5 < predicted / actual < 2.0, (predicted, actual)


def test_estimate_grows_with_grid_snapshots_and_factorisations():
    small = resources.estimate((100, 100))
    assert resources.estimate((200, 200)).total_bytes > 4 * small.total_bytes
    assert resources.estimate((100, 100), n_snapshots=50).data_bytes == pytest.approx(small.data_bytes + 8 * 1e4 * 100)
    assert resources.estimate((100, 100), factorisations=2).factor_bytes == pytest.approx(2 * small.factor_bytes)
    # The ILU preconditioner is what makes big 3-D grids fit (PERFORMANCE.md: 80^3 in 1 GB vs > 8.7 GB).
    assert resources.estimate((80, 80, 80), "krylov").total_bytes < 0.2 * resources.estimate((80, 80, 80)).total_bytes


def test_new_solvers_register_a_cost(monkeypatch):
    monkeypatch.setitem(resources.SOLVER_COSTS, "toy", lambda shape, entries: 123.0)
    assert resources.estimate((10, 10), "toy").factor_bytes == 123.0
    with pytest.raises(InputError, match="no memory model for the linear solver 'nope'"):
        resources.estimate((10,), "nope")


def test_check_refuses_with_the_estimate_and_advice():
    est = resources.estimate((1000, 1000))
    with pytest.raises(InputError, match=r"1e\+06 cells need about .* GB .* more than the 1 MB available; use a coarser grid or solver: krylov"):
        resources.check(est, memory_limit=1e6)
    resources.check(est, memory_limit=1e12)
    with pytest.raises(InputError, match="use a larger dt"):
        resources.check(resources.estimate((10,), steps=2e7), memory_limit=1e12)


@pytest.mark.parametrize(
    "old, new, where, message",
    [
        ("  x: {min: -2.0, max: 2.0, n: 50}", "  x: {min: -2.0, max: 2.0, n: 1000000000000}", "F:4: grid", "1e+12 cells need about"),
        (
            "  x: {min: -2.0, max: 2.0, n: 50}",
            "  x: {min: -2.0, max: 2.0, n: 100000}\n  y: {min: -2.0, max: 2.0, n: 100000}",
            "F:4: grid",
            "1e+10 cells need about",
        ),
        ("dt: 0.1,", "dt: 1.0e-300,", "F:12: tasks.evolve.dt", "1e+300 time steps, more than the limit"),
    ],
)
def test_scenarios_beyond_the_limits_are_refused_at_validate(old, new, where, message, tmp_path):
    text = GOOD.replace(old, new)
    if "y:" in new:
        text = text.replace('"x**4/4 - x**2/2"', '"x**4/4 - x**2/2 + y**2"').replace("[-1.0]", "[-1.0, 0.0]").replace("[0.2]", "[0.2, 0.2]")
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with time_limit(2.0), pytest.raises(ScenarioError) as info:  # used to hang or die with MemoryError
        load_scenario(path, tmp_path / "out.nc")
    got_where, got_message = info.value.problems[0]
    assert got_where.replace(str(path), "F") == where and message in got_message, info.value.problems


def test_memory_limit_is_the_machine_s(monkeypatch, tmp_path):
    monkeypatch.setattr(resources, "available_memory", lambda: 1e3)
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    with pytest.raises(ScenarioError, match="more than the 1 kB available"):
        load_scenario(path, tmp_path / "out.nc")
