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

from .boundary import Boundaries, BoundarySpec
from .chain import MarkovChain
from .errors import InputError
from .escape import COMMITTOR_ATTRS, CURRENT_ATTRS, ESCAPE_METHODS, EscapeProblem, escape_rate
from .fields_xr import DENSITY_ATTRS, TIME_UNITS, from_field, to_dataarray
from .grid import Grid
from .kronecker import kronecker_modes  # noqa: F401  (registers the 'kronecker' solver)
from .linalg import AUTO, DIRECT_SOLVERS, choose_solver, grid_options
from .models import Model
from .operators import assemble_generator
from .rates import checked, checked_field, committor, direct_error, mfpt_at, mfpt_field, reactive_current, steady_population
from .regions import cell_index, point_text, region_mask, start_cells, target_mask
from .spectral import slowest_modes, stationary_density
from .stepping import LIMITED_SCHEMES, Callback, MassCheck, PositivityLimiter, ProgressBar, SystemCache, integrate, steps_for
from .threads import thread_summary
from .transient import dividing_plane, surface_flux

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

    @property
    def rate_solver(self) -> str:
        """The solver of the rate algorithms: always a direct one.

        Committors and the Markov decomposition need the *relative* precision of hitting
        probabilities as small as e^{-dL/T}, which the positive triangular solves of an LU keep
        and an iterative solve (absolute residual tolerance) does not: measured 0.8 % off at
        barrier/T = 50 in 3-D with amg, where SuperLU gives 1e-10.
        """
        return self.solver if self.solver in DIRECT_SOLVERS else "superlu"

    def __repr__(self) -> str:
        return f"FokkerPlanck({self.model!r}, {self.grid!r}, boundary={self.boundaries.as_dict(self.grid)})"

    @cached_property
    def operator(self) -> sps.csr_matrix:
        r"""Sparse generator :math:`\mathcal L` with ``dP/dt = operator @ P`` (cell densities, C order)."""
        return assemble_generator(self.coefficients, self.grid, self.boundaries)

    @cached_property
    def _systems(self) -> SystemCache:
        conserved = self.volumes if self.boundaries.conserves_mass else None
        return SystemCache(self.operator, self.solver, conserved, **grid_options(self.solver, self.grid.shape, "evolve"))

    @property
    def volumes(self) -> np.ndarray:
        """Flattened cell volumes (the weights of the conserved mass)."""
        return self.grid.cell_volumes.ravel()

    def attrs(self) -> dict[str, Any]:
        """Metadata describing the problem, for output datasets."""
        attrs: dict[str, Any] = {f"model_{k}": str(v) for k, v in self.model.describe().items()}
        attrs["boundary"] = str(self.boundaries.as_dict(self.grid))
        attrs["solver"] = self.solver
        attrs["threads"] = thread_summary()  # cached: read once per process
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
        positivity: bool | None = None,
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
        positivity
            Keep the density non-negative with mass exactly conserved
            (:class:`~fpsolver.stepping.PositivityLimiter`): default on for the L-stable
            schemes (euler, bdf2, trbdf2), off for cn (whose ringing is warned about instead).
            The largest share of the mass it removed is the output's ``positivity_removed``.
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
        limiter = PositivityLimiter(self.volumes) if (scheme in LIMITED_SCHEMES if positivity is None else positivity) else None
        cbs = ([limiter] if limiter is not None else []) + list(callbacks)  # the limiter acts first
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
        ds.attrs["positivity_limiter"] = "on" if limiter is not None else "off"
        if limiter is not None:
            ds.attrs["positivity_removed"] = limiter.removed
        if surface is not None:
            axis, position = dividing_plane(self.model.landscape, self.grid, surface)
            flux = surface_flux(self.chain, axis, position, snaps, times, p)
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
        if self._reference_log_density is not None:  # phase space: the most probable cell is at rest in the deepest well
            anchor = int(np.argmax(self._reference_log_density))
        else:
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
        modes = slowest_modes(self.operator, k, shift, self.solver, (self.coefficients, self.grid, self.boundaries))
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

    # Rates ---------------------------------------------------------------------
    @cached_property
    def chain(self) -> MarkovChain:
        """The Markov chain of the cells (jump rates, leaks, detailed-balance weights)."""
        return MarkovChain.from_operator(self.operator, self.grid, self.boundaries)

    def mfpt(self, start: Sequence[float] | None = None, target: str | np.ndarray | None = None) -> xr.DataArray | float:
        r"""Mean first-passage time to the target, from the backward equation of the same discrete chain.

        Parameters
        ----------
        start
            A point (one coordinate per axis). Given: the MFPT from there (multilinear
            interpolation of log τ between cell centres) as a float. Omitted: the MFPT from every cell.
        target
            A region such as ``"x >= 0.5"`` (cells whose centres satisfy it absorb), or a boolean
            mask; probability leaving through absorbing faces always counts as reaching the target.

        Returns
        -------
        float or xarray.DataArray
            In model time. NaN (with a :class:`~fpsolver.errors.FPSolverWarning`) only where no
            digits can be had.

        Notes
        -----
        Exact for the chain from every start at every rate scale (:func:`fpsolver.rates.mfpt_field`):
        the 1-D birth–death formula in log space, otherwise the strong Markov decomposition at the
        bottoms of the wells with a subtraction-free trace chain — no detailed balance needed. For a
        generator that is not an M-matrix (phase space) the times at the wells' bottoms come from
        potential theory with the Maxwell–Boltzmann weights and the time-reversed chain
        (:func:`fpsolver.rates.mfpt_log_from_basin`); cells whose times lose their digits (next to
        the target, where the decomposition's terms cancel) fall back to a direct solve whose
        error is estimated from the slowest survival rate, and are NaN where neither has digits.
        """
        mask = self.target_mask(target)
        if start is not None and mask[self.cell_index(start)]:
            raise InputError(f"the start {point_text(start)} lies inside the target")
        if start is not None:
            time, error = mfpt_at(self.chain, mask, self.log_weight(), start, self.rate_solver)
            return checked(time, error, f"mean first-passage time from {point_text(start)}")
        tau, error = mfpt_field(self.chain, mask, self.log_weight(), self.rate_solver)
        attrs = {"long_name": "mean first-passage time to the target", "units": TIME_UNITS}
        return to_dataarray(self.grid, checked_field(tau, error, "mean first-passage times"), "mfpt", attrs)

    def flux_over_population(self, start: Sequence[float], target: str | np.ndarray | None = None) -> xr.Dataset:
        r"""Steady flux-over-population rate: a unit source in the start cell, the target absorbing.

        The steady masses solve :math:`Qm = -e_{\rm start}` off the target; the flux into the target
        equals the source (1), so the rate is :math:`1/n` with :math:`n` the steady population,
        which equals the MFPT from the start cell (Hill relation). One direct solve: NaN with a
        warning where it has lost its digits.

        Returns
        -------
        xarray.Dataset
            ``rate`` (scalar), ``population`` (scalar) and the steady density ``p_source``.
        """
        mask = self.target_mask(target)
        cell = self.cell_index(start)
        if mask[cell]:
            raise InputError(f"the start {point_text(start)} lies inside the target")
        population, masses = steady_population(self.chain, cell, mask, self.rate_solver)
        population = checked(population, direct_error(self.chain.scale, population), "steady flux over population")
        ds = xr.Dataset(
            {
                "rate": ((), 1.0 / population, {"long_name": "steady flux-over-population rate", "units": f"1 / ({TIME_UNITS})"}),
                "population": ((), population, {"long_name": "steady population for a unit source", "units": TIME_UNITS}),
                "p_source": to_dataarray(self.grid, masses / self.volumes, "p_source", {**DENSITY_ATTRS, "long_name": "steady density with a unit source"}),
            }
        )
        ds.attrs.update(self.attrs())
        return ds

    def committor(self, start: str | np.ndarray, target: str | np.ndarray | None = None, direction: str = "forward") -> xr.DataArray:
        """Committor between the ``start`` region and the ``target`` (transition-path theory).

        Parameters
        ----------
        start
            The start region (condition or mask).
        target
            The target region; None: the absorbing faces.
        direction
            ``"forward"``: probability of reaching the target before the start (0 on the start, 1
            on the target and beyond absorbing faces); solved directly, so values as small as
            e^{-ΔL/T} keep their relative precision. ``"backward"``: probability of having come
            from the start rather than the target, the forward committor (roles swapped) of the
            time-reversed chain; equal to 1 - forward under detailed balance, and needs a
            stationary density (no absorbing faces) otherwise.

        Returns
        -------
        xarray.DataArray
            The committor on the grid.
        """
        if direction not in ("forward", "backward"):
            raise InputError(f"direction must be 'forward' or 'backward', got {direction!r}")
        start_mask = region_mask(self.grid, start, "start")
        target_cells = self.target_mask(target)
        if np.any(start_mask & target_cells):
            raise InputError("the start and target regions overlap")
        if direction == "forward":
            value = committor(self.chain, target_cells, start_mask, 1.0, self.rate_solver)
            return to_dataarray(self.grid, value, "committor", COMMITTOR_ATTRS)
        value = committor(self.chain.reversed(self.log_stationary_masses()), start_mask, target_cells, 0.0, self.rate_solver)
        attrs = {"long_name": "backward committor: probability to have come from the start rather than the target", "units": "1"}
        return to_dataarray(self.grid, value, "backward_committor", attrs)

    def reactive_current(self, start: str | np.ndarray, target: str | np.ndarray) -> xr.Dataset:
        """Net reactive current of transition-path theory (a vector field) and the reaction rate.

        Works with or without detailed balance and across periodic seams (the stationary density
        comes from :meth:`stationary` when detailed balance fails); needs mass-conserving
        boundaries, with the target given as a region.

        Returns
        -------
        xarray.Dataset
            ``reactive_current`` (component, axes), scaled to a largest magnitude of 1;
            ``reaction_rate``: reactive trajectories from start to target per unit time, measured
            out of the start set; ``reaction_rate_in``: the same measured into the target.
        """
        start_mask = region_mask(self.grid, start, "start")
        target_cells = self.target_mask(target)
        if np.any(start_mask & target_cells):
            raise InputError("the start and target regions overlap")
        log_pi = self.log_stationary_masses()
        forward = committor(self.chain, target_cells, start_mask, 1.0, self.rate_solver)
        backward = committor(self.chain.reversed(log_pi), start_mask, target_cells, 0.0, self.rate_solver)
        current, rate_out, rate_in = reactive_current(self.chain, log_pi, forward, backward)
        unit = f"1 / ({TIME_UNITS})"
        return xr.Dataset(
            {
                "reactive_current": to_dataarray(self.grid, current, "reactive_current", CURRENT_ATTRS, leading=("component",)),
                "reaction_rate": ((), rate_out, {"long_name": "rate of reactive trajectories (start -> target), out of the start", "units": unit}),
                "reaction_rate_in": ((), rate_in, {"long_name": "rate of reactive trajectories (start -> target), into the target", "units": unit}),
            },
            coords={"component": ("component", list(self.grid.names))},
        )

    def log_stationary_masses(self) -> np.ndarray:
        """log of the stationary masses: the detailed-balance weights when they exist, else the
        model's exact reference state (Maxwell–Boltzmann in phase space) when the generator keeps
        it stationary, else the computed null vector (mass-conserving boundaries only)."""
        if self.chain.log_pi is not None:
            return np.asarray(self.chain.log_pi)
        if self._reference_log_masses is not None:
            return self._reference_log_masses
        masses = self.stationary().values.ravel() * self.volumes
        with np.errstate(divide="ignore"):
            return np.log(np.maximum(masses, np.finfo(float).tiny))

    @cached_property
    def _reference_log_density(self) -> np.ndarray | None:
        """The model's reference log-density -E/T on the cells (flat), or None when it has none."""
        reference = getattr(self.coefficients, "log_density_reference", None)
        if reference is None:
            return None
        return np.broadcast_to(reference(dict(zip(self.grid.names, self.grid.mesh()))), self.grid.shape).ravel()

    @cached_property
    def _reference_log_masses(self) -> np.ndarray | None:
        """log masses of the reference density when it is an exact discrete steady state away from
        absorbing faces (to 1e-10 of the largest flux), else None."""
        if self._reference_log_density is None:
            return None
        log_m = self._reference_log_density + np.log(self.volumes)
        log_m = log_m - log_m.max()
        m = np.exp(log_m)
        residual = self.chain.q @ m
        away = self.chain.leak == 0
        scale = float(np.abs(self.chain.q.diagonal() * m).max())
        return log_m if np.abs(residual[away]).max() <= 1e-10 * scale else None

    def _escape_log_pi(self) -> np.ndarray | None:
        """Log masses for potential theory: the stationary ones, or the model's reference state (its
        identities hold for any positive weights, and weights close to stationary keep their terms
        O(1), also beside absorbing faces); None where there is neither."""
        if self.chain.log_pi is None and self._reference_log_density is not None:
            return self._reference_log_density + np.log(self.volumes)
        if self.chain.log_pi is None and not self.boundaries.conserves_mass:
            return None
        return self.log_stationary_masses()

    def log_weight(self) -> np.ndarray:
        """A field whose local maxima mark the wells: log pi under detailed balance, else the
        model's reference log-density (minus energy over temperature) when it has one, else minus
        the landscape over the thermal energy."""
        if self.chain.log_pi is not None:
            return np.asarray(self.chain.log_pi)
        if self._reference_log_density is not None:
            return self._reference_log_density
        return -self.landscape_on_cells() / self.thermal_energy()

    def thermal_energy(self, at: Sequence[float] | None = None) -> float:
        """Energy scale T of the noise: the temperature, or tr D / tr A at ``at`` (default: the grid centre)."""
        if self.model.temperature is not None:
            return float(self.model.temperature)
        scale = getattr(self.coefficients, "thermal_energy", None)
        if scale is None:
            raise InputError(f"{type(self.model).__name__} defines no temperature scale")
        point = at if at is not None else [0.5 * (ax.lo + ax.hi) for ax in self.grid]
        return float(np.ravel(scale({name: np.array([v]) for name, v in zip(self.grid.names, point)}))[0])

    def escape_rate(
        self,
        start: Sequence[float],
        target: str | np.ndarray | None = None,
        methods: Sequence[str] = ESCAPE_METHODS,
    ) -> xr.Dataset:
        """Escape rate from ``start`` to ``target`` by several estimators, beside the rate theory.

        Parameters
        ----------
        start
            Start point, one coordinate per axis.
        target
            Target region (``"x >= 1"``) or mask; None: the absorbing faces.
        methods
            Estimators among ``"mfpt"``, ``"flux"``, ``"committor"``, ``"eigen"`` (see
            :mod:`fpsolver.escape`).

        Returns
        -------
        xarray.Dataset
            ``escape_rate`` and ``escape_time`` along the dimension ``estimator``, the closed-form
            ``kramers_rate``, the ``barrier`` with its ``minimum`` and ``saddle`` (on the lowest
            path from the start's basin to the target), and the committor fields.
        """
        mask = self.target_mask(target)
        point = np.asarray(start, dtype=float).ravel()
        start_cells(self.grid, point)  # checks the length and that the point is inside
        ep = EscapeProblem(
            chain=self.chain,
            start=point,
            target=mask,
            log_weight=self.log_weight(),
            energy=self.landscape_on_cells(),
            thermal=self.thermal_energy(point),
            landscape=self.model.landscape,
            coefficients=self.coefficients,
            log_pi=self._escape_log_pi() if "committor" in methods else None,
            solver=self.rate_solver,
        )
        ds = escape_rate(ep, methods)
        ds.attrs.update(self.attrs())
        return ds

    def target_mask(self, target: str | np.ndarray | None) -> np.ndarray:
        """Flat mask of the target cells: a region (``"x >= 1"``) or mask; None means only absorbing faces."""
        return target_mask(self.grid, self.boundaries, target)

    def cell_index(self, point: Sequence[float]) -> int:
        """Flat index of the cell containing ``point``."""
        return cell_index(self.grid, point)

    def landscape_on_cells(self) -> np.ndarray:
        """The loss at every cell centre (flat)."""
        points = dict(zip(self.grid.names, self.grid.mesh()))
        land = self.model.landscape
        return np.broadcast_to(land.value(**{v: points[v] for v in land.variables}), self.grid.shape).ravel()
