"""The :class:`FokkerPlanck` problem: a model on a grid with boundaries, and the verbs that solve it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sps
import xarray as xr

from . import escape
from .boundary import Boundaries, BoundarySpec
from .errors import InputError
from .escape import COMMITTOR_ATTRS, CURRENT_ATTRS, ESCAPE_METHODS
from .fields_xr import DENSITY_ATTRS, TIME_UNITS, from_field, to_dataarray
from .grid import Grid
from .linalg import AUTO, choose_solver, factorize
from .models import Model
from .operators import assemble_generator
from .rates import (
    backward_mfpt,
    chain_mfpt_1d,
    committor,
    face_leak,
    imprecise,
    jump_rates,
    log_detailed_balance_weights,
    reactive_current,
    region_mask,
    reversed_chain,
    start_cells,
    warn_if_imprecise,
)
from .spectral import slowest_modes, stationary_density
from .stepping import Callback, MassCheck, ProgressBar, SystemCache, integrate, steps_for

__all__ = ["FokkerPlanck", "ESCAPE_METHODS"]

logger = logging.getLogger(__name__)


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
        Linear solver from :data:`fpsolver.linalg.SOLVERS` used by every solve; ``"auto"``
        (default) picks one by dimension and size (:func:`fpsolver.linalg.choose_solver`),
        recorded in :attr:`solver` and the output's ``solver`` attribute.

    Examples
    --------
    >>> import fpsolver as fp
    >>> grid = fp.Grid.uniform(x=(-3.0, 3.0, 600))
    >>> model = fp.Overdamped(fp.Landscape.from_expression("x**4/4 - x**2/2"), temperature=0.05)
    >>> problem = fp.FokkerPlanck(model, grid)
    >>> rates = problem.spectrum(k=2)["rate"]
    """

    def __init__(self, model: Model, grid: Grid, boundary: BoundarySpec = "reflecting", solver: str = AUTO):
        if not isinstance(grid, Grid):
            raise InputError(f"FokkerPlanck needs a Grid, got {type(grid).__name__}")
        if not isinstance(model, Model):
            raise InputError(f"FokkerPlanck needs a model such as Overdamped or Inertial, got {type(model).__name__}")
        self.model = model
        self.coefficients = model.on(grid)
        self.grid = self.coefficients.grid  # the model may label axes (e.g. velocity axes)
        self.boundaries = Boundaries.resolve(boundary, self.grid)
        self.solver = choose_solver(self.grid) if solver == AUTO else solver

    def __repr__(self) -> str:
        return f"FokkerPlanck({self.model!r}, {self.grid!r}, boundary={self.boundaries.as_dict(self.grid)})"

    @cached_property
    def operator(self) -> sps.csr_matrix:
        r"""Sparse generator :math:`\mathcal L` with ``dP/dt = operator @ P`` (cell densities, C order)."""
        return assemble_generator(self.coefficients, self.grid, self.boundaries)

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
        attrs["solver"] = self.solver
        return attrs

    # Verbs -------------------------------------------------------------------
    def evolve(
        self,
        p0: xr.DataArray | np.ndarray,
        t_end: float,
        dt: float | None = None,
        scheme: str = "bdf2",
        save_every: float | None = None,
        *,
        rtol: float | None = None,
        callbacks: Sequence[Callback] = (),
        progress: bool | None = None,
        check_mass: bool = True,
        surface: str | Mapping[str, float] | None = None,
    ) -> xr.Dataset:
        """Evolve the density ``p0`` from t = 0 to ``t_end`` with fixed steps ``dt``, or adaptive ones (``rtol``).

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
        rtol
            Adaptive TR-BDF2 (``scheme`` must be ``"trbdf2"``): local error per step at most
            ``rtol`` times the peak density; ``dt`` is then optional (the first step) and the
            snapshots land exactly on the multiples of ``save_every`` (see :mod:`fpsolver.stepping`).
        callbacks
            Called as ``cb(t, p)`` after every step; returning True stops the run.
        progress
            Show a progress bar (fixed steps only); default: when stderr is a terminal.
        check_mass
            With mass-conserving boundaries, raise if total probability drifts by more than 1e-9.
        surface
            A dividing surface for a transient rate: ``{"x": 0.0}`` (the plane of faces normal to
            ``x`` nearest 0) or ``"auto"`` (through the lowest index-1 saddle, normal to the axis
            its unstable direction is closest to). Adds ``flux`` (time): the probability current
            across it, away from the side holding most of ``p0``; ``population`` (time): the
            mass on that side; ``transient_rate`` = flux / population and its ``rate_plateau``.

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
        if rtol is None and (progress or (progress is None and sys.stderr.isatty())):  # adaptive: step count unknown
            bar = ProgressBar(steps_for(t_end, dt, "t_end"))
            cbs.append(bar)
        try:
            times, snaps = integrate(self._systems, p, t_end, dt, scheme, save_every, cbs, rtol)
        finally:
            if bar is not None:
                bar.close()
        density = to_dataarray(self.grid, snaps, "p", DENSITY_ATTRS, leading=("time",))
        ds = xr.Dataset({"p": density})
        ds = ds.assign_coords(time=("time", times, {"long_name": "time", "units": TIME_UNITS}))
        ds["mass"] = (("time",), snaps @ self.volumes, {"long_name": "total probability", "units": "1"})
        ds.attrs.update(self.attrs())
        steps = {"dt": dt} if rtol is None else {"rtol": rtol, "factorisations": self._systems.factorisations}
        ds.attrs.update({"scheme": scheme, **steps, "time_units": TIME_UNITS})
        if surface is not None:
            flux = escape.surface_flux(self, snaps, times, surface, p)
            ds = ds.merge(flux)
            ds.attrs["surface"] = flux.attrs["surface"]
        return ds

    def stationary(self) -> xr.DataArray:
        """Stationary density (null vector of the generator, unit mass), by one sparse solve."""
        if not self.boundaries.conserves_mass:
            raise InputError(
                "there is no stationary density with absorbing boundaries (probability leaks out); "
                "use reflecting or periodic boundaries, or the slowest mode from spectrum()"
            )
        anchor = int(np.argmin(self.landscape_on_cells()))
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

    def mfpt(self, start: Sequence[float] | None = None, target: str | np.ndarray | None = None) -> xr.DataArray | float:
        r"""Mean first-passage time to the target, from the backward equation of the same discrete operator.

        Parameters
        ----------
        start
            A point (one coordinate per axis). Given: the MFPT from there (multilinear
            interpolation between cell centres) as a float. Omitted: the MFPT from every cell.
        target
            A region such as ``"x >= 0.5"`` (cells whose centres satisfy it absorb), or a boolean
            mask; probability leaving through absorbing faces always counts as reaching the target.

        Notes
        -----
        In 1-D the exact birth–death formula is evaluated subtraction-free in log space, so
        times up to ~1e300 keep their digits. Otherwise one sparse solve of
        :math:`Q^\top\tau = -1`, which loses digits once :math:`\tau\,\max|Q_{ii}|` exceeds ~1e10.
        In that regime a value from ``start`` comes from potential theory instead (the mean
        time from the equilibrium measure of the thermal basin around the start, which equals
        the time from the start to better than 1e-10 there; needs detailed balance), and the
        field without ``start`` comes with a :class:`~fpsolver.errors.FPSolverWarning`.
        """
        target_mask = self.target_mask(target)
        q = jump_rates(self.operator, self.volumes)
        tau = None
        if self.grid.ndim == 1:
            log_pi = log_detailed_balance_weights(q, self.grid)
            if log_pi is not None:
                tau = chain_mfpt_1d(q, log_pi, target_mask, self.leak_rates(q))
        precise = tau is not None
        if tau is None:
            tau = backward_mfpt(q, ~target_mask, self.solver)
            precise = not imprecise(tau, q)
            if start is None and not precise:
                warn_if_imprecise(tau, q)
        if start is None:
            attrs = {"long_name": "mean first-passage time to the target", "units": TIME_UNITS}
            return to_dataarray(self.grid, tau, "mfpt", attrs)
        if target_mask[self.cell_index(start)]:
            raise InputError(f"the start {list(start)} lies inside the target")
        if not precise:
            # Where the direct solve loses digits the start sits in a basin so metastable that
            # the mean time from the basin's equilibrium measure equals the time from the start to
            # better than the solve's own error: use the potential-theoretic value instead.
            rate, _ = escape.committor_rate(self, start, target_mask)
            if np.isfinite(rate):
                return 1.0 / rate
            warn_if_imprecise(tau, q)
        cells, weights = start_cells(self.grid, start)
        return float(np.dot(weights, tau[cells]))

    def flux_over_population(self, start: Sequence[float], target: str | np.ndarray | None = None) -> xr.Dataset:
        r"""Steady flux-over-population rate: a unit source in the start cell, the target absorbing.

        The steady density solves :math:`\mathcal L p = -\delta_{\rm start}` on the free cells; the
        flux into the target equals the source (1), so the rate is :math:`1/n` with :math:`n` the
        steady population. On the same chain :math:`n` equals the MFPT from the start cell
        (Hill relation), to round-off.

        Returns
        -------
        xarray.Dataset
            ``rate`` (scalar), ``population`` (scalar) and the steady density ``p_source``.
        """
        target_mask = self.target_mask(target)
        cell = self.cell_index(start)
        if target_mask[cell]:
            raise InputError(f"the start {list(start)} lies inside the target")
        free = ~target_mask
        source = np.zeros(self.grid.size)
        source[cell] = 1.0 / self.volumes[cell]
        p = np.zeros(self.grid.size)
        system = sps.csr_matrix(self.operator)[free][:, free]
        p[free] = factorize(system, self.solver).solve(-source[free])
        population = float(self.volumes @ p)
        ds = xr.Dataset(
            {
                "rate": ((), 1.0 / population, {"long_name": "steady flux-over-population rate", "units": f"1 / ({TIME_UNITS})"}),
                "population": ((), population, {"long_name": "steady population for a unit source", "units": TIME_UNITS}),
                "p_source": to_dataarray(self.grid, p, "p_source", {**DENSITY_ATTRS, "long_name": "steady density with a unit source"}),
            }
        )
        ds.attrs.update(self.attrs())
        return ds

    def committor(self, start: str | np.ndarray, target: str | np.ndarray | None = None, direction: str = "forward") -> xr.DataArray:
        """Committor between the ``start`` region and the ``target`` (transition-path theory).

        ``direction="forward"``: probability of reaching the target before the start (0 on the
        start, 1 on the target and beyond absorbing faces); solved directly, so values as small
        as e^{-ΔL/T} keep their relative precision. ``"backward"``: probability of having come
        from the start rather than the target, the forward committor (roles swapped) of the
        time-reversed chain; equal to 1 - forward under detailed balance, and needs a stationary
        density (no absorbing faces) otherwise.
        """
        if direction not in ("forward", "backward"):
            raise InputError(f"direction must be 'forward' or 'backward', got {direction!r}")
        start_mask = region_mask(self.grid, start, "start")
        target_mask = self.target_mask(target)
        if np.any(start_mask & target_mask):
            raise InputError("the start and target regions overlap")
        q = jump_rates(self.operator, self.volumes)
        if direction == "forward":
            value = committor(q, target_mask, start_mask, self.leak_rates(q), 1.0, self.solver)
            return to_dataarray(self.grid, value, "committor", COMMITTOR_ATTRS)
        value = committor(reversed_chain(q, self.log_stationary_masses(q)), start_mask, target_mask, self.leak_rates(q), 0.0, self.solver)
        attrs = {"long_name": "backward committor: probability to have come from the start rather than the target", "units": "1"}
        return to_dataarray(self.grid, value, "backward_committor", attrs)

    def reactive_current(self, start: str | np.ndarray, target: str | np.ndarray) -> xr.Dataset:
        """Net reactive current of transition-path theory (a vector field) and the reaction rate.

        Works with or without detailed balance (the stationary density comes from
        :meth:`stationary`); needs mass-conserving boundaries, with the target given as a region.

        Returns
        -------
        xarray.Dataset
            ``reactive_current`` (component, axes), scaled to a largest magnitude of 1;
            ``reaction_rate``: reactive trajectories from start to target per unit time.
        """
        start_mask = region_mask(self.grid, start, "start")
        target_mask = self.target_mask(target)
        q = jump_rates(self.operator, self.volumes)
        log_pi = self.log_stationary_masses(q)
        forward = committor(q, target_mask, start_mask, self.leak_rates(q), 1.0, self.solver)
        backward = committor(reversed_chain(q, log_pi), start_mask, target_mask, self.leak_rates(q), 0.0, self.solver)
        current, rate, _ = reactive_current(q, log_pi, forward, backward, self.grid)
        return xr.Dataset(
            {
                "reactive_current": to_dataarray(self.grid, current, "reactive_current", CURRENT_ATTRS, leading=("component",)),
                "reaction_rate": ((), rate, {"long_name": "rate of reactive trajectories (start -> target)", "units": f"1 / ({TIME_UNITS})"}),
            },
            coords={"component": ("component", list(self.grid.names))},
        )

    def log_stationary_masses(self, q: sps.spmatrix) -> np.ndarray:
        """log of the stationary masses: detailed-balance weights when they exist, else the null vector."""
        log_pi = log_detailed_balance_weights(q, self.grid)
        if log_pi is not None:
            return log_pi
        masses = self.stationary().values.ravel() * self.volumes
        with np.errstate(divide="ignore"):
            return np.log(np.maximum(masses, np.finfo(float).tiny))

    def escape_rate(
        self,
        start: Sequence[float],
        target: str | np.ndarray | None = None,
        methods: Sequence[str] = ESCAPE_METHODS,
    ) -> xr.Dataset:
        """Escape rate from ``start`` to ``target`` by several methods, beside the rate theory.

        See :func:`fpsolver.escape.escape_rate` for the methods and the returned variables.
        """
        return escape.escape_rate(self, start, target, methods)

    def leak_rates(self, q: sps.spmatrix) -> np.ndarray:
        """Rates of leaving each cell through absorbing faces (zero elsewhere)."""
        sides = [(lo == "absorbing", hi == "absorbing") for lo, hi in self.boundaries.sides]
        return face_leak(q, self.grid, sides)

    def target_mask(self, target: str | np.ndarray | None) -> np.ndarray:
        """Flat mask of the target cells: a region (``"x >= 1"``) or mask; None means only absorbing faces."""
        if target is None:
            if self.boundaries.conserves_mass:
                raise InputError("no target: give target= (a region such as 'x >= 1') or make a boundary absorbing")
            return np.zeros(self.grid.size, bool)
        mask = region_mask(self.grid, target, "target")
        if mask.all():
            raise InputError("the target region covers the whole grid")
        return mask

    def cell_index(self, point: Sequence[float]) -> int:
        """Flat index of the cell containing ``point``."""
        return int(np.ravel_multi_index(self.grid.locate(point), self.grid.shape))

    def landscape_on_cells(self) -> np.ndarray:
        """The loss at every cell centre (flat)."""
        points = dict(zip(self.grid.names, self.grid.mesh()))
        land = self.model.landscape
        return np.broadcast_to(land.value(**{v: points[v] for v in land.variables}), self.grid.shape).ravel()

