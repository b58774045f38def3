"""From a scenario file to solver objects, with every error located in the file.

:func:`load_scenario` parses and validates (schema, then the checks that need
several keys and the real objects); the result builds a
:class:`~fpsolver.problem.FokkerPlanck` problem and initial density without any
further possibility of an input error, so nothing is computed or written for a
bad file.
"""

from __future__ import annotations

import inspect
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import xarray as xr
import yaml

from ..boundary import Boundaries
from .. import resources
from ..critical import critical_points
from ..errors import InputError, ScenarioError
from ..fields import MatrixField
from ..expressions import parse_condition
from ..grid import Axis, Grid
from ..gridcheck import require_finite
from ..initial import gaussian
from ..landscapes import LIBRARY, Landscape, library
from ..tabulated import read_table
from ..linalg import AUTO, DIRECT_LIMITS, SOLVERS
from ..models import VELOCITY_CELLS, Inertial, Model, Overdamped
from ..noise import NOISES, EmpiricalNoise, NoiseModel
from ..optimizers import OPTIMIZERS
from ..escape import ESCAPE_METHODS
from ..transient import dividing_plane
from ..problem import FokkerPlanck
from ..stepping import SCHEMES, steps_for
from .names import RESERVED_NAMES, reserved_clashes
from .schema import DataLandscape, ExpressionLandscape, TableLandscape, InertialModelSpec, ModelSpec, NoiseSpec, OptimizerSpec, Scenario
from .sweep import Variant, expand_sweep, located_variant_error
from .yamlfile import Located, load_yaml, parse_yaml

__all__ = ["LoadedScenario", "Run", "build_located", "load_runs", "load_scenario", "loads_scenario", "check_output_path"]

DEFAULT_OUTPUT_DIR = "outputs"


@dataclass(frozen=True)
class OptimizerRun:
    """The optimizer of an ``optimizer:`` scenario, its gradient noise and the loss it trains on."""

    optimizer: Any
    noise: Any
    landscape: Landscape
    dynamics: str = "overdamped"


@dataclass
class LoadedScenario:
    """A validated scenario and the objects it describes."""

    spec: Scenario
    located: Located
    problem: FokkerPlanck
    initial: xr.DataArray | None
    output: Path
    optimizer: OptimizerRun | None = None

    @property
    def source(self) -> str:
        return self.located.source

    def resolved_yaml(self) -> str:
        """The scenario with every default filled in, as YAML."""
        return yaml.safe_dump(self.spec.model_dump(mode="json", exclude_none=True), sort_keys=False)


@dataclass
class Run:
    """Everything one scenario file asks for: one or more runs (a sweep) sharing an output."""

    source: str
    runs: list[tuple[Variant, LoadedScenario]]

    @property
    def output(self) -> Path:
        return self.runs[0][1].output

    @property
    def is_sweep(self) -> bool:
        return bool(self.runs[0][0].values)


def load_runs(path: str | Path, output: str | Path | None = None) -> Run:
    """Read a scenario file, expand its ``sweep`` block (if any) and build every run.

    All runs are validated before any is computed; errors name the swept values.
    """
    located = load_yaml(path)
    runs, problems = [], []
    for variant in expand_sweep(located):
        try:
            runs.append((variant, _build(variant.located, output)))
        except ScenarioError as exc:
            problems.extend(located_variant_error(exc, variant).problems)
    if problems:
        raise ScenarioError(list(dict.fromkeys(problems)))
    return Run(located.source, runs)


def load_scenario(path: str | Path, output: str | Path | None = None) -> LoadedScenario:
    """Read, validate and build the scenario in ``path`` (a file without a sweep; see :func:`load_runs`).

    Parameters
    ----------
    path
        The YAML file.
    output
        Overrides the file's ``output`` key (e.g. the CLI's ``-o``).

    Raises
    ------
    ScenarioError
        With one ``FILE:LINE: key.path: message`` line per problem.
    """
    run = load_runs(path, output)
    if run.is_sweep:
        raise ScenarioError([(f"{run.source}", "the file contains a sweep: load it with load_runs")])
    return run.runs[0][1]


def build_located(located: Located, output: str | Path | None = None) -> LoadedScenario:
    """Validate and build one run from its parsed YAML data (a sweep run, in a worker process)."""
    return _build(located, output)


def loads_scenario(text: str, source: str = "<string>", output: str | Path | None = None) -> LoadedScenario:
    """Like :func:`load_scenario` for YAML text."""
    return _build(parse_yaml(text, source), output)


def _build(located: Located, output: str | Path | None) -> LoadedScenario:
    spec = _validate(located)
    with _at(located, ("solver",)):
        if spec.solver != AUTO and spec.solver not in SOLVERS:
            raise InputError(f"unknown linear solver {spec.solver!r}; choose one of {AUTO}, {', '.join(SOLVERS)}")
    clashes = reserved_clashes(list(spec.grid))
    if clashes:
        reserved = ", ".join(sorted(RESERVED_NAMES))
        raise located.error(("grid", clashes[0]), f"the axis name {clashes[0]!r} is used by the output; choose another (reserved: {reserved})")
    _check_resources(spec, located)
    with _at(located, ("grid",)):
        grid = Grid([Axis.uniform(name, a.min, a.max, a.n, a.kind) for name, a in spec.grid.items()])
    landscape, data_noise = _landscape(spec, located, grid)
    model, optimizer, grid = _model(spec, located, landscape, grid, data_noise)
    if grid.shape != tuple(a.n for a in spec.grid.values()):  # velocity axes added for an inertial optimizer
        _check_resources(spec, located, grid.shape)
    spec = _at_rest(spec, grid)
    with _at(located, ("boundary",)):
        boundaries = Boundaries.resolve(_boundary_value(spec.boundary), grid)
    problem = FokkerPlanck(model, grid, boundaries, solver=spec.solver)
    initial = None
    if spec.initial is not None:
        g = spec.initial.gaussian
        with _at(located, ("initial", "gaussian")):
            initial = gaussian(grid, g.mean, g.std)
    _check_tasks(spec, located, boundaries)
    _check_rate_tasks(spec, located, problem)
    if output is not None:
        out_path, where = Path(output), None
    else:
        out_path = Path(spec.output) if spec.output else Path(DEFAULT_OUTPUT_DIR) / f"{spec.name}.nc"
        where = ("output",) if spec.output else ("name",)
    try:
        check_output_path(out_path)
    except InputError as exc:
        if where is None:
            raise ScenarioError([(f"{located.source}: output {out_path}", str(exc))]) from None
        raise located.error(where, str(exc)) from None
    return LoadedScenario(spec, located, problem, initial, out_path, optimizer)


def _validate(located: Located) -> Scenario:
    if not isinstance(located.data, dict):
        raise located.error((), "a scenario file must be a mapping of keys (name, landscape, grid, model, tasks, ...)")
    try:
        return Scenario.model_validate(located.data)
    except pydantic.ValidationError as exc:
        problems: dict[str, tuple[str, str]] = {}
        for err in exc.errors():
            loc = err["loc"]
            if loc[:1] == ("model",) and len(loc) > 1 and loc[1] in MODEL_KINDS:
                loc = loc[:1] + loc[2:]  # the union tag names no key of the file
            path = located.resolve(loc)
            message = _message(err)
            landscape = located.data.get("landscape")
            if err["type"] == "landscape" and isinstance(landscape, dict) and "kind" in landscape:
                path, message = ("landscape", "kind"), f"unknown landscape kind {landscape['kind']!r}; choose one of {', '.join(LIBRARY)}, data, table (or give 'expression')"
            if err["type"] == "model" and isinstance(located.data.get("model"), dict):
                kind = located.data["model"].get("kind")
                path, message = ("model", "kind"), f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}"
            where = located.where(path)
            problems.setdefault(where, (where, message))
        raise ScenarioError(list(problems.values())) from None


def _message(err: dict[str, Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = err["msg"]
    return msg.removeprefix("Value error, ")


def _at(located: Located, path: tuple[Any, ...]) -> Any:
    """Turn any :class:`InputError` raised inside into a located :class:`ScenarioError`."""
    return located.at(path)


def _check_resources(spec: Scenario, located: Located, shape: tuple[int, ...] | None = None) -> None:
    """Refuse, before anything grid-sized is allocated, runs beyond the step limit or the memory (on ``shape``, default the file's grid)."""
    tasks = spec.tasks
    ev = tasks.evolve
    steps = ev.t_end / ev.dt if ev is not None and ev.rtol is None else 0.0  # adaptive: not known ahead
    snapshots = 0.0
    if ev is not None:
        snapshots = min(ev.t_end / ev.save_every + 1.0 if ev.save_every else 2.0, steps + 1.0)
    vectors = 20 + (3 * tasks.spectrum.k + 1 if tasks.spectrum is not None else 0)
    if spec.model is not None:
        full = any(isinstance(c, list) and any(isinstance(row, list) for row in c) for c in (spec.model.diffusion, getattr(spec.model, "mobility", None)))
    else:  # an optimizer's gradient noise is a full matrix in more than one dimension
        full = len(spec.grid) > 1
    shape = shape or tuple(a.n for a in spec.grid.values())
    solver = spec.solver
    if solver == AUTO:
        cells = float(np.prod([float(n) for n in shape]))
        solver = "superlu" if len(shape) <= 2 or cells <= DIRECT_LIMITS["evolve" if ev is not None else "solve"] else "amg"
    with _at(located, ("solver",)):
        estimate = resources.estimate(
            shape,
            solver,
            n_snapshots=snapshots,
            steps=steps,
            factorisations=2 if ev is not None or tasks.mfpt is not None or tasks.escape_rate is not None else 1,
            vectors=vectors,
            full_diffusion=full,
        )
    if ev is not None:
        with _at(located, ("tasks", "evolve", "dt")):
            resources.check_steps(estimate)
    with _at(located, ("grid",)):
        resources.check_memory(estimate)


def _landscape(spec: Scenario, located: Located, grid: Grid) -> tuple[Landscape, EmpiricalNoise | None]:
    """The scenario's landscape and, for a ``data`` landscape, the empirical noise of the same loss and data."""
    ls = spec.landscape
    data_noise = None
    if isinstance(ls, ExpressionLandscape):
        path: tuple[Any, ...] = ("landscape", "expression")
        with _at(located, path):
            landscape = Landscape.from_expression(ls.expression, grid.position_names)
    elif isinstance(ls, DataLandscape):
        path = ("landscape", "loss")
        data_noise = _data_noise(ls, located)
        landscape = data_noise.landscape
    elif isinstance(ls, TableLandscape):
        path = ("landscape", "file")
        with _at(located, path):
            landscape = read_table(_beside(located, ls.file), ls.variables, ls.values)
    else:
        path = ("landscape", "kind")
        params = ls.model_dump(exclude={"kind", "sharpness"}, exclude_none=True)
        with _at(located, ("landscape",)):
            landscape = library(ls.kind, **params)
    missing = [v for v in landscape.variables if v not in grid.names]
    if missing:
        raise located.error(path, f"uses variables {missing} that are not grid axes {list(grid.names)}")
    if ls.sharpness is not None:
        landscape = landscape.with_sharpness(ls.sharpness)
    centres = dict(zip(grid.names, grid.mesh()))
    args = {v: centres[v] for v in landscape.variables}
    with _at(located, path):
        require_finite(grid, landscape.value(**args), "the landscape")
        require_finite(grid, landscape.gradient(**args), "the landscape gradient")
    return landscape, data_noise


def _beside(located: Located, name: str) -> Path:
    """A file named in the scenario: a relative path is relative to the scenario file (to the working
    directory for scenario text that has no file, whose source reads like ``<string>``)."""
    if Path(name).is_absolute() or located.source.startswith("<"):
        return Path(name)
    return Path(located.source).parent / name


def _data_noise(ls: DataLandscape, located: Located) -> EmpiricalNoise:
    """The per-sample loss over its data file."""
    try:
        return EmpiricalNoise(ls.loss, _beside(located, ls.data), ls.variables)
    except InputError as exc:
        # Loss problems belong to the loss; missing columns, NaNs and unreadable files to the data.
        message = str(exc)
        key = "loss" if any(part in message for part in ("EmpiricalNoise loss", "the loss uses", "does not depend")) else "data"
        raise located.error(("landscape", key), message) from None


def _noise(spec: NoiseSpec | None, data_noise: EmpiricalNoise | None) -> NoiseModel | None:
    """The optimizer's gradient noise; ``empirical`` takes the loss and data of the ``data`` landscape."""
    if spec is None:
        return None
    if spec.kind == "empirical":
        if data_noise is None:
            raise InputError("empirical noise needs a data landscape (landscape: {kind: data, loss: ..., data: FILE, variables: [...]})")
        return data_noise
    return NOISES[spec.kind](**spec.model_dump(exclude={"kind"}, exclude_none=True))


def _model(spec: Scenario, located: Located, landscape: Landscape, grid: Grid, data_noise: EmpiricalNoise | None) -> tuple[Model, OptimizerRun | None, Grid]:
    """The model, the optimizer run (optimizer scenarios) and the grid (with velocity axes an inertial optimizer added)."""
    if spec.optimizer is not None:
        return _optimizer_model(spec.optimizer, located, landscape, grid, data_noise, check=spec.tasks.solve_the_model)
    return _MODEL_BUILDERS[type(spec.model)](spec.model, located, landscape, grid), None, grid


def _at_rest(spec: Scenario, grid: Grid) -> Scenario:
    """Starts of the grid-point tasks given by positions only, extended by zero velocities (at rest in phase space)."""
    positions = sum(a.kind == "position" for a in grid)
    update = {}
    for name in ("mfpt", "escape_rate"):
        task = getattr(spec.tasks, name)
        if task is not None and task.start is not None and len(task.start) == positions < grid.ndim:
            update[name] = task.model_copy(update={"start": list(task.start) + [0.0] * (grid.ndim - positions)})
    return spec.model_copy(update={"tasks": spec.tasks.model_copy(update=update)}) if update else spec


def _overdamped(m: ModelSpec, located: Located, landscape: Landscape, grid: Grid) -> Overdamped:
    noise_key = "temperature" if m.temperature is not None else "diffusion"
    centres = dict(zip(grid.names, grid.mesh()))
    for key in ("mobility", "diffusion"):
        field = getattr(m, key)
        if field is not None:
            with _at(located, ("model", key)):
                require_finite(grid, MatrixField(field, grid.position_names, key)(centres), key)
    with _at(located, ("model", noise_key)):
        model = Overdamped(landscape, m.temperature, diffusion=m.diffusion, mobility=m.mobility, convention=m.convention)
    key = noise_key if noise_key == "diffusion" else "mobility"
    with _at(located, ("model", key)):
        model.on(grid)
    return model


def _optimizer_model(
    o: OptimizerSpec, located: Located, landscape: Landscape, grid: Grid, data_noise: EmpiricalNoise | None, check: bool = True
) -> tuple[Model, OptimizerRun, Grid]:
    """The optimizer's continuous model; a bad hyperparameter is located at its own key.

    ``dynamics: auto`` picks the model at the landscape's minima and saddles
    (:meth:`~fpsolver.optimizers.Optimizer.choose_dynamics`); an inertial model on a grid of
    positions only gets its velocity axes from the temperature (:meth:`~fpsolver.models.Inertial.phase_grid`).
    With ``check`` (some task solves the model) an overdamped model's validity is checked at
    those points; a run that only simulates the real updates does not warn about a model it never uses.
    """
    with _at(located, ("optimizer", "kind")):
        if o.kind not in OPTIMIZERS:
            raise InputError(f"unknown optimizer kind {o.kind!r}; choose one of {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[o.kind]
    params = o.hyperparameters()
    accepted = inspect.signature(cls).parameters
    for key in params:
        if key not in accepted:
            raise located.error(("optimizer", key), f"{o.kind} does not take {key!r}; it takes {', '.join(accepted)}")
    try:
        optimizer = cls(**params)
    except InputError as exc:
        key = next((k for k in params if re.search(rf"\b{k}\b", str(exc))), None)
        raise located.error(("optimizer",) + ((key,) if key else ()), str(exc)) from None
    with _at(located, ("optimizer", "noise")):
        noise = _noise(o.noise, data_noise)
    with _at(located, ("optimizer",)):
        # Kramers-type rates depend on the curvatures at minima and saddles: decide and check there.
        points = [cp.position for cp in critical_points(landscape, grid)]
        at = {v: np.array([q[i] for q in points]) for i, v in enumerate(landscape.variables)}
        dynamics = o.dynamics
        if dynamics == "auto":
            dynamics = optimizer.choose_dynamics(landscape, noise, at, freeze_at=o.freeze_at) if points else "overdamped"
        model = optimizer.model(landscape, noise, dynamics=dynamics, convention=o.convention, freeze_at=o.freeze_at)
        if isinstance(model, Inertial) and all(a.kind == "position" for a in grid) and grid.ndim == len(landscape.variables):
            grid = model.phase_grid(grid, o.velocity_cells or VELOCITY_CELLS)
        model.on(grid)
        if dynamics == "overdamped" and points and check:
            optimizer.check_overdamped(landscape, noise, at, freeze_at=o.freeze_at)
    return model, OptimizerRun(optimizer, noise, landscape, dynamics), grid


def _inertial(m: InertialModelSpec, located: Located, landscape: Landscape, grid: Grid) -> Inertial:
    with _at(located, ("model",)):
        model = Inertial(landscape, m.mass, m.damping, m.temperature, diffusion=m.diffusion)
    with _at(located, ("grid",)):
        model.on(grid)  # axis order and velocity widths are grid errors
    return model


#: Model spec type -> builder (model kinds are added here, not by if-chains).
_MODEL_BUILDERS = {ModelSpec: _overdamped, InertialModelSpec: _inertial}
#: The model kinds a scenario may name.
MODEL_KINDS = ("overdamped", "inertial")


def _boundary_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    return value


def _landscape_variables(spec: Scenario) -> list[str] | None:
    """The position axes of the grid (the landscape's variables in an optimizer scenario)."""
    return [name for name, axis in spec.grid.items() if getattr(axis, "kind", "position") == "position"]


#: Tasks that need an ``optimizer`` block (with why), and those of them computed in 1-D only.
OPTIMIZER_TASKS = {
    "simulate": "runs an optimizer's discrete updates",
    "escape_theory": "evaluates an optimizer's closed-form escape time",
    "stationary_variance": "compares an optimizer's simulated variance with its model's",
}
ONE_DIMENSIONAL_TASKS = ("escape_theory", "stationary_variance")


def _check_tasks(spec: Scenario, located: Located, boundaries: Boundaries) -> None:
    tasks = spec.tasks
    variables = _landscape_variables(spec)
    for name, why in OPTIMIZER_TASKS.items():
        task = getattr(tasks, name)
        if task is None:
            continue
        where = ("tasks", name)
        if spec.optimizer is None:
            raise located.error(where, f"{name} {why}: give an 'optimizer' block instead of 'model'")
        if name in ONE_DIMENSIONAL_TASKS and len(variables) != 1:
            raise located.error(where, f"{name} is computed for 1-D landscapes only; this one has variables {variables}")
        if len(task.start) != len(variables):
            raise located.error(where + ("start",), f"start needs {len(variables)} value(s), one per landscape variable {variables}")
        with _at(located, where + ("target",)):
            parse_condition(task.target, variables)
    if tasks.evolve is not None:
        ev = tasks.evolve
        if ev.method not in SCHEMES:
            raise located.error(("tasks", "evolve", "scheme"), f"unknown scheme {ev.method!r}; choose one of {', '.join(SCHEMES)}")
        if ev.rtol is None:
            with _at(located, ("tasks", "evolve", "t_end")):
                steps_for(ev.t_end, ev.dt, "t_end")
        if ev.save_every is not None and ev.rtol is None:
            with _at(located, ("tasks", "evolve", "save_every")):
                steps_for(ev.save_every, ev.dt, "save_every")
        if spec.initial is None:
            raise located.error(("tasks", "evolve"), "evolve needs an 'initial' density (add initial: {gaussian: {mean, std}})")
    if tasks.stationary is not None and not boundaries.conserves_mass:
        raise located.error(("tasks", "stationary"), "no stationary density exists with absorbing boundaries")
    if tasks.spectrum is not None:
        size = int(np.prod([a.n for a in spec.grid.values()]))
        if tasks.spectrum.k > size:
            raise located.error(("tasks", "spectrum", "k"), f"k={tasks.spectrum.k} exceeds the number of cells ({size})")


def _check_rate_tasks(spec: Scenario, located: Located, problem: FokkerPlanck) -> None:
    """Targets, starts and methods of the mfpt and escape_rate tasks, and the evolve task's
    dividing surface, checked on the real grid."""
    if spec.tasks.evolve is not None and spec.tasks.evolve.surface is not None:
        with _at(located, ("tasks", "evolve", "surface")):
            dividing_plane(problem.model.landscape, problem.grid, spec.tasks.evolve.surface)
    for name in ("mfpt", "escape_rate"):
        task = getattr(spec.tasks, name)
        if task is None:
            continue
        with _at(located, ("tasks", name, "target")):
            target = problem.target_mask(task.target)
        if task.start is not None:
            with _at(located, ("tasks", name, "start")):
                if len(task.start) != problem.grid.ndim:
                    raise InputError(f"start needs {problem.grid.ndim} value(s), one per axis {list(problem.grid.names)}")
                if target[problem.cell_index(task.start)]:
                    raise InputError(f"the start {task.start} lies inside the target")
        if name == "escape_rate":
            unknown = [m for m in task.methods if m not in ESCAPE_METHODS]
            if unknown or not task.methods:
                raise located.error(("tasks", name, "methods"), f"unknown method(s) {unknown}; choose from {', '.join(ESCAPE_METHODS)}")


def check_output_path(path: Path) -> None:
    """Raise :class:`InputError` unless a file can be written at ``path``.

    Nothing is left on disk: the probe is a temporary file without a name (deleted on close)
    in the nearest existing ancestor directory.
    """
    if path.suffix not in (".nc", ".h5", ".nc4"):
        raise InputError(f"output {str(path)!r} should end in .nc (netCDF4/HDF5)")
    if path.is_dir():
        raise InputError(f"output {str(path)!r} is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    probe = parent
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"output {str(path)!r} cannot be created: {str(probe)!r} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"output {str(path)!r} cannot be written: no permission in {str(probe)!r}")
    try:  # os.access says yes to root everywhere (even /proc): create an unnamed file to be sure
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise InputError(f"output {str(path)!r} cannot be written: {str(probe)!r} refuses new files ({exc.strerror})") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"output {str(path)!r} exists and is not writable")
