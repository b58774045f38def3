"""The :class:`FokkerPlanck` problem: a model on a grid with boundaries, and the verbs that solve it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sps
import xarray as xr

from .boundary import Boundaries, BoundarySpec
from .errors import InputError
from .fields_xr import DENSITY_ATTRS, from_field, to_dataarray
from .grid import Grid
from .models import Overdamped
from .operators.overdamped import overdamped_generator
from .spectral import slowest_modes, stationary_density
from .stepping import Callback, MassCheck, ProgressBar, SystemCache, integrate, steps_for

__all__ = ["FokkerPlanck"]

logger = logging.getLogger(__name__)

TIME_UNITS = "model time (for optimizer-derived models: SGD time t = k * learning rate)"


class FokkerPlanck:
    r"""A Fokker–Planck problem :math:`\partial_t P = \mathcal L P` on a grid.

    Parameters
    ----------
    model
        The stochastic model (e.g. :class:`~fpsolver.models.Overdamped`).
    grid
        The grid; its position axes must include the landscape's variables.
    boundary
        ``"reflecting"``, ``"absorbing"`` or ``"periodic"`` for every side, or a
        mapping ``{axis: kind or (lower, upper)}`` (unlisted axes reflect).
    solver
        Linear solver from :data:`fpsolver.linalg.SOLVERS` used by every solve.

    Examples
    --------
    >>> import fpsolver as fp
    >>> grid = fp.Grid.uniform(x=(-3.0, 3.0, 600))
    >>> model = fp.Overdamped(fp.Landscape.from_expression("x**4/4 - x**2/2"), temperature=0.05)
    >>> problem = fp.FokkerPlanck(model, grid)
    >>> rates = problem.spectrum(k=2)["rate"]
    """

    def __init__(self, model: Overdamped, grid: Grid, boundary: BoundarySpec = "reflecting", solver: str = "superlu"):
        if not isinstance(grid, Grid):
            raise InputError(f"FokkerPlanck needs a Grid, got {type(grid).__name__}")
        if not isinstance(model, Overdamped):
            raise InputError(f"FokkerPlanck needs a model such as Overdamped, got {type(model).__name__}")
        self.model = model
        self.grid = grid
        self.boundaries = Boundaries.resolve(boundary, grid)
        self.solver = solver
        self.coefficients = model.on(grid)

    def __repr__(self) -> str:
        return f"FokkerPlanck({self.model!r}, {self.grid!r}, boundary={self.boundaries.as_dict(self.grid)})"

    @cached_property
    def operator(self) -> sps.csr_matrix:
        r"""Sparse generator :math:`\mathcal L` with ``dP/dt = operator @ P`` (cell densities, C order)."""
        return overdamped_generator(self.coefficients, self.grid, self.boundaries)

    @cached_property
    def _systems(self) -> SystemCache:
        return SystemCache(self.operator, self.solver)

    @property
    def volumes(self) -> np.ndarray:
        """Flattened cell volumes (the weights of the conserved mass)."""
        return self.grid.cell_volumes.ravel()

    def attrs(self) -> dict[str, Any]:
        """Metadata describing the problem, for output datasets."""
        attrs: dict[str, Any] = {f"model_{k}": str(v) for k, v in self.model.describe().items()}
        attrs["boundary"] = str(self.boundaries.as_dict(self.grid))
        return attrs

    # Verbs -------------------------------------------------------------------
    def evolve(
        self,
        p0: xr.DataArray | np.ndarray,
        t_end: float,
        dt: float,
        scheme: str = "bdf2",
        save_every: float | None = None,
        *,
        callbacks: Sequence[Callback] = (),
        progress: bool | None = None,
        check_mass: bool = True,
    ) -> xr.Dataset:
        """Evolve the density ``p0`` from t = 0 to ``t_end`` with fixed steps ``dt``.

        Parameters
        ----------
        p0
            Initial density (DataArray on the grid, or an array of the grid shape).
        t_end, dt
            End time and step; ``t_end`` must be a whole multiple of ``dt``.
        scheme
            ``"euler"``, ``"cn"``, ``"bdf2"`` (default) or ``"trbdf2"`` (see :mod:`fpsolver.stepping`).
        save_every
            Output interval in model time (a multiple of ``dt``); default: only start and end.
        callbacks
            Called as ``cb(t, p)`` after every step; returning True stops the run.
        progress
            Show a progress bar; default: when stderr is a terminal.
        check_mass
            With mass-conserving boundaries, raise if total probability drifts by more than 1e-9.

        Returns
        -------
        xarray.Dataset
            Variable ``p`` with dims ``(time, *axes)`` and the variable ``mass``.
        """
        p = from_field(self.grid, p0, "p0")
        cbs = list(callbacks)
        if check_mass and self.boundaries.conserves_mass:
            cbs.append(MassCheck(self.volumes))
        bar = None
        if progress or (progress is None and sys.stderr.isatty()):
            bar = ProgressBar(steps_for(t_end, dt, "t_end"))
            cbs.append(bar)
        try:
            times, snaps = integrate(self._systems, p, t_end, dt, scheme, save_every, cbs)
        finally:
            if bar is not None:
                bar.close()
        density = to_dataarray(self.grid, snaps, "p", DENSITY_ATTRS, leading=("time",))
        ds = xr.Dataset({"p": density})
        ds = ds.assign_coords(time=("time", times, {"long_name": "time", "units": TIME_UNITS}))
        ds["mass"] = (("time",), snaps @ self.volumes, {"long_name": "total probability", "units": "1"})
        ds.attrs.update(self.attrs())
        ds.attrs.update({"scheme": scheme, "dt": dt, "time_units": TIME_UNITS})
        return ds

    def stationary(self) -> xr.DataArray:
        """Stationary density (null vector of the generator, unit mass), by one sparse solve."""
        if not self.boundaries.conserves_mass:
            raise InputError(
                "there is no stationary density with absorbing boundaries (probability leaks out); "
                "use reflecting or periodic boundaries, or the slowest mode from spectrum()"
            )
        anchor = int(np.argmin(self._landscape_on_cells()))
        p = stationary_density(self.operator, self.volumes, anchor, self.solver)
        attrs = {**DENSITY_ATTRS, "long_name": "stationary probability density"}
        return to_dataarray(self.grid, p, "p_stationary", attrs)

    def spectrum(self, k: int = 3, shift: float | None = None) -> xr.Dataset:
        """The ``k`` slowest relaxation modes.

        Returns
        -------
        xarray.Dataset
            ``rate`` (mode): :math:`-\\mathrm{Re}\\,\\lambda`, ascending (``rate[0] ≈ 0`` when
            probability is conserved); ``frequency`` (mode): :math:`\\mathrm{Im}\\,\\lambda`;
            ``eigenfunction`` (mode, axes): real part of the right eigenvector, mode 0 scaled
            to unit mass when it is the stationary mode, the others to max |u| = 1 with a
            positive extreme value.
        """
        modes = slowest_modes(self.operator, k, shift, self.solver)
        vectors = modes.vectors.real.T.copy()
        for i, v in enumerate(vectors):
            mass = float(self.volumes @ v)
            if i == 0 and self.boundaries.conserves_mass and abs(mass) > 1e-8 * np.max(np.abs(v)) * self.volumes.sum():
                vectors[i] = v / mass
            else:
                peak = v[np.argmax(np.abs(v))]
                vectors[i] = v / peak if peak != 0 else v
        ds = xr.Dataset(
            {
                "rate": (("mode",), modes.rates, {"long_name": "relaxation rate -Re(eigenvalue)", "units": f"1 / ({TIME_UNITS})"}),
                "frequency": (("mode",), modes.eigenvalues.imag, {"long_name": "Im(eigenvalue)", "units": f"1 / ({TIME_UNITS})"}),
                "eigenfunction": to_dataarray(self.grid, vectors, "eigenfunction", {"long_name": "right eigenfunction", "units": "1"}, leading=("mode",)),
            },
            coords={"mode": ("mode", np.arange(len(modes.rates)), {"long_name": "mode number", "units": "1"})},
        )
        ds.attrs.update(self.attrs())
        return ds

    def _landscape_on_cells(self) -> np.ndarray:
        points = dict(zip(self.grid.names, self.grid.mesh()))
        land = self.model.landscape
        return np.broadcast_to(land.value(**{v: points[v] for v in land.variables}), self.grid.shape).ravel()
