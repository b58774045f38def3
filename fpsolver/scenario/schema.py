"""The scenario file schema (pydantic).

Every key is documented here (``description``); unknown keys are rejected.
Only type and range checks live here; checks that need several keys at once
(landscape variables vs grid axes, shapes, multiples of dt...) happen when the
scenario is built (:mod:`fpsolver.scenario.build`), with the same located errors.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

__all__ = ["Scenario", "AxisSpec", "ModelSpec", "InertialModelSpec", "OptimizerSpec", "NoiseSpec", "Tasks"]

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


def _as_list(value: Any) -> Any:
    """A lone number stands for a one-element list (convenient on 1-D grids)."""
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value


#: One value per grid axis (a lone number is accepted for 1-D grids).
Point = Annotated[list[Finite], BeforeValidator(_as_list)]
PositivePoint = Annotated[list[Positive], BeforeValidator(_as_list)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class AxisSpec(_Strict):
    """One grid axis of ``n`` equal cells on ``[min, max]``."""

    min: Finite = Field(description="Lower end of the axis.")
    max: Finite = Field(description="Upper end of the axis (greater than min).")
    n: int = Field(ge=3, description="Number of cells (at least 3).")
    kind: Literal["position", "velocity"] = Field("position", description="'velocity' for the momentum axes of an inertial model.")

    @field_validator("max")
    @classmethod
    def _max_above_min(cls, value: float, info) -> float:
        low = info.data.get("min")
        if low is not None and not value > low:
            raise ValueError(f"max must be greater than min ({low})")
        return value


def _coefficient(value: Any) -> Any:
    """Coefficient specs: number, expression string, or (nested) list of those."""
    def entry(v: Any) -> bool:
        return isinstance(v, (int, float, str)) and not isinstance(v, bool)

    if entry(value) or (isinstance(value, list) and all(entry(v) or (isinstance(v, list) and all(map(entry, v))) for v in value)):
        return value
    raise ValueError("expected a number, an expression string, a list of diagonal entries or a matrix (list of rows)")


Coefficient = Annotated[Any, Field(json_schema_extra={"type": ["number", "string", "array"]})]


class _LandscapeBase(_Strict):
    sharpness: Positive | None = Field(None, description="Optional k: use L(sqrt(k) * theta) (every Hessian times k).")


class ExpressionLandscape(_LandscapeBase):
    """Landscape from a formula in the grid's position axes, e.g. ``x**4/4 - x**2/2``."""

    expression: str = Field(description="Formula in Python syntax (** for powers); parsed safely, never evaluated.")


class QuadraticLandscape(_LandscapeBase):
    """``0.5 (theta - center)^T H (theta - center)``."""

    kind: Literal["quadratic"]
    hessian: Union[Finite, list[Finite], list[list[Finite]]] = Field(description="Scalar, diagonal entries or symmetric matrix.")
    center: list[Finite] | None = Field(None, description="Minimum location (default: origin).")
    variables: list[str] | None = Field(None, description="Variable names (default x, y, z).")


class DoubleWellLandscape(_LandscapeBase):
    """``height * ((x/width)**2 - 1)**2 + tilt * x``."""

    kind: Literal["double_well"]
    height: Positive = Field(0.25, description="Barrier height (untilted).")
    width: Positive = Field(1.0, description="Position of the minima (untilted).")
    tilt: Finite = Field(0.0, description="Linear tilt.")
    variable: str = Field("x", description="Variable name.")


class CubicWellLandscape(_LandscapeBase):
    """``height * (3u**2 - 2u**3)``, ``u = x/width``: metastable minimum at 0, barrier at x = width."""

    kind: Literal["cubic_well"]
    height: Positive = Field(1.0, description="Barrier height.")
    width: Positive = Field(1.0, description="Barrier position.")
    variable: str = Field("x", description="Variable name.")


class StyblinskiTangLandscape(_LandscapeBase):
    """``0.5 * sum(theta_i**4 - 16 theta_i**2 + 5 theta_i)``."""

    kind: Literal["styblinski_tang"]
    variables: list[str] = Field(["x", "y"], description="Variable names.")


class DataLandscape(_LandscapeBase):
    """``L(theta) = mean over the rows of a data file of a per-sample loss ell(theta; columns)``.

    The optimizer's ``noise: {kind: empirical}`` then uses the same loss and data for the
    gradient-noise covariance (fpsolver.noise.EmpiricalNoise).
    """

    kind: Literal["data"]
    loss: str = Field(description="Per-sample loss in the parameters and data column names, e.g. log(1 + exp(-y*(w*x + b))).")
    data: str = Field(description="A .csv file (header row of column names) or a .npz file; relative to the scenario file.")
    variables: list[str] = Field(min_length=1, description="The parameters: the grid's position axes, in order.")

    @model_validator(mode="after")
    def _no_sharpness(self) -> DataLandscape:
        if self.sharpness is not None:
            raise ValueError("a data landscape takes no sharpness (rescale the parameters in the loss instead)")
        return self


class TableLandscape(_LandscapeBase):
    """L known only at the nodes of a rectilinear table (fpsolver.tabulated): derivatives from findiff's
    fourth-order stencils, cubic splines between nodes."""

    kind: Literal["table"]
    file: str = Field(description="A .npz file with one coordinate array per variable and the array of values; relative to the scenario file.")
    variables: list[str] = Field(min_length=1, description="Names of the coordinate arrays: the grid's position axes, in order.")
    values: str = Field("loss", description="Name of the array of values, shape (n0, n1, ...).")


def _landscape_tag(value: Any) -> str | None:
    if isinstance(value, ExpressionLandscape):
        return "expression"
    if isinstance(value, BaseModel):
        return getattr(value, "kind", None)
    if isinstance(value, dict):
        return "expression" if "expression" in value and "kind" not in value else value.get("kind")
    return None


LandscapeSpec = Annotated[
    Union[
        Annotated[ExpressionLandscape, Tag("expression")],
        Annotated[QuadraticLandscape, Tag("quadratic")],
        Annotated[DoubleWellLandscape, Tag("double_well")],
        Annotated[CubicWellLandscape, Tag("cubic_well")],
        Annotated[StyblinskiTangLandscape, Tag("styblinski_tang")],
        Annotated[DataLandscape, Tag("data")],
        Annotated[TableLandscape, Tag("table")],
    ],
    Discriminator(
        _landscape_tag,
        custom_error_type="landscape",
        custom_error_message="give either 'expression' or a 'kind' (quadratic, double_well, cubic_well, styblinski_tang, data, table)",
    ),
]


class ModelSpec(_Strict):
    """The stochastic model. ``dtheta = -A grad L dt + sqrt(2 D) dW``."""

    kind: Literal["overdamped"] = Field("overdamped", description="Model kind.")
    temperature: Positive | None = Field(None, description="T > 0; sets D = T * mobility. Give this or diffusion.")
    diffusion: Coefficient | None = Field(None, description="D: number, expression, diagonal list or matrix.")
    mobility: Coefficient = Field(1.0, description="A: number, expression, diagonal list or matrix (default 1).")
    convention: Literal["ito", "stratonovich", "isothermal"] = Field("ito", description="Stochastic calculus when D depends on theta.")

    @field_validator("diffusion", "mobility")
    @classmethod
    def _coefficient_form(cls, value: Any) -> Any:
        return value if value is None else _coefficient(value)

    @model_validator(mode="after")
    def _one_noise(self) -> ModelSpec:
        if (self.temperature is None) == (self.diffusion is None):
            raise ValueError("give exactly one of 'temperature' or 'diffusion'")
        return self


class InertialModelSpec(_Strict):
    """Inertial model ``dtheta = r dt, M dr = -gamma M r dt - grad L dt + sqrt(2 D) dW`` (velocity axes in the grid)."""

    kind: Literal["inertial"] = Field(description="Model kind.")
    mass: Coefficient = Field(1.0, description="M > 0: number, expression or one entry per direction.")
    damping: Coefficient = Field(description="gamma > 0: number, expression or one entry per direction.")
    temperature: Positive | None = Field(None, description="T > 0; sets D = gamma * M * T. Give this or diffusion.")
    diffusion: Coefficient | None = Field(None, description="D > 0: number, expression or one entry per direction.")

    @field_validator("mass", "damping", "diffusion")
    @classmethod
    def _coefficient_form(cls, value: Any) -> Any:
        return value if value is None else _coefficient(value)

    @model_validator(mode="after")
    def _one_noise(self) -> InertialModelSpec:
        if (self.temperature is None) == (self.diffusion is None):
            raise ValueError("give exactly one of 'temperature' or 'diffusion'")
        return self


def _model_tag(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return getattr(value, "kind", None)
    if isinstance(value, dict):
        return value.get("kind", "overdamped")
    return None


AnyModelSpec = Annotated[
    Union[Annotated[ModelSpec, Tag("overdamped")], Annotated[InertialModelSpec, Tag("inertial")]],
    Discriminator(_model_tag, custom_error_type="model", custom_error_message="model kind must be 'overdamped' or 'inertial'"),
]


class NoiseSpec(_Strict):
    """Per-sample gradient noise Sigma(theta) (fpsolver.noise); the optimizer's batch_size divides it."""

    kind: Literal["hessian", "white", "covariance", "empirical"] = Field(
        "hessian",
        description="hessian: |H| + delta; white: sigma**2 I; covariance: a matrix of expressions; empirical: from the per-sample loss and data of a 'data' landscape.",
    )
    delta: Positive | None = Field(None, description="hessian: regularisation delta > 0 (default 1e-3).")
    sigma: Positive | None = Field(None, description="white: per-sample standard deviation.")
    matrix: list[Any] | None = Field(None, description="covariance: n x n matrix (or diagonal list) of numbers or expressions.")

    @model_validator(mode="after")
    def _keys_of_kind(self) -> NoiseSpec:
        allowed = {"hessian": {"delta"}, "white": {"sigma"}, "covariance": {"matrix"}, "empirical": set()}[self.kind]
        extra = [k for k in ("delta", "sigma", "matrix") if getattr(self, k) is not None and k not in allowed]
        if extra:
            raise ValueError(f"{self.kind} noise does not take {', '.join(extra)}")
        if self.kind not in ("hessian", "empirical") and not any(getattr(self, k) is not None for k in allowed):
            raise ValueError(f"{self.kind} noise needs {', '.join(sorted(allowed))}")
        return self


class OptimizerSpec(_Strict):
    """An optimizer in place of ``model`` (fpsolver.optimizers): its continuous-time model, in SGD time t = k * lr."""

    kind: str = Field(description="gd_noise, sgd, momentum, adam, adamw, adai, adaiw, sadam, samsgrad or adamomentum.")
    lr: Positive = Field(description="Learning rate.")
    batch_size: int | None = Field(None, description="Batch size B >= 1 (not for gd_noise).")
    sigma: Positive | None = Field(None, description="gd_noise: white gradient-noise standard deviation.")
    beta1: Finite | None = Field(None, description="momentum, adam family: beta1 in [0, 1).")
    beta2: Finite | None = Field(None, description="adam family, adai: beta2 in [0, 1).")
    beta0: Finite | None = Field(None, description="adai: inertia scale beta0 in [0, 1).")
    eps: Finite | None = Field(None, description="adam: epsilon >= 0; adai: inertia bound in (0, 1].")
    weight_decay: Finite | None = Field(None, description="lambda >= 0 (adam, adamw, adai, adaiw, sadam, samsgrad, adamomentum).")
    softplus: Positive | None = Field(None, description="sadam, samsgrad: softplus sharpness.")
    form: Literal["pytorch", "ema"] | None = Field(None, description="momentum: pytorch (m = beta1 m + g) or ema.")
    noise: NoiseSpec | None = Field(None, description="Gradient noise; default hessian with delta 1e-3 (gd_noise: its own white noise).")
    dynamics: Literal["overdamped", "inertial", "auto"] = Field(
        "overdamped",
        description="overdamped (large-damping limit), inertial (phase space), or auto: inertial for momentum methods where "
        "4 lr beta3 P |H| / (1 - beta1)**2 > 0.1 at a minimum or saddle, else overdamped.",
    )
    velocity_cells: int | None = Field(None, ge=3, description="Inertial runs whose grid lists only positions: cells per added velocity axis (default 64).")
    convention: Literal["ito", "stratonovich", "isothermal"] = Field("ito", description="Overdamped: stochastic calculus when D depends on theta.")
    freeze_at: Point | None = Field(None, description="Evaluate the adaptive preconditioner at this point (one value per landscape variable).")

    #: Keys that are not constructor arguments of the optimizer.
    MODEL_KEYS: ClassVar[tuple[str, ...]] = ("kind", "noise", "dynamics", "convention", "freeze_at", "velocity_cells")

    def hyperparameters(self) -> dict[str, Any]:
        """The optimizer's constructor arguments that the file sets."""
        return self.model_dump(exclude=set(self.MODEL_KEYS), exclude_none=True)


class GaussianSpec(_Strict):
    """Product Gaussian initial density."""

    mean: Point = Field(description="One value per grid axis.")
    std: PositivePoint = Field(description="One positive value per grid axis.")


class InitialSpec(_Strict):
    """Initial density."""

    gaussian: GaussianSpec = Field(description="Gaussian with mean and std per axis.")


class EvolveTask(_Strict):
    """Time evolution with fixed steps (``dt``) or adaptive ones (``rtol``)."""

    t_end: Positive = Field(description="End time (a multiple of dt with fixed steps).")
    dt: Positive | None = Field(None, description="Time step (fixed steps); with rtol, the first step.")
    rtol: Positive | None = Field(None, description="Adaptive TR-BDF2: local error per step relative to the peak density.")
    scheme: str | None = Field(None, description="euler, cn, bdf2 or trbdf2; default bdf2 with dt, trbdf2 with rtol.")
    save_every: Positive | None = Field(None, description="Output interval (a multiple of dt); default only start and end.")
    surface: Union[Literal["auto"], dict[str, Finite], None] = Field(
        None, description="Dividing surface for a transient rate: 'auto' (through the saddle) or {axis: position}."
    )

    @model_validator(mode="after")
    def _steps(self) -> EvolveTask:
        if self.dt is None and self.rtol is None:
            raise ValueError("give dt (fixed steps) or rtol (adaptive steps)")
        return self

    @property
    def method(self) -> str:
        """The scheme to use: as given, else bdf2 for fixed steps and trbdf2 (embedded estimate) for rtol."""
        return self.scheme or ("trbdf2" if self.rtol is not None else "bdf2")


class StationaryTask(_Strict):
    """Stationary density by a direct null-space solve (no options)."""


class SpectrumTask(_Strict):
    """Slowest relaxation modes by shift-invert."""

    k: int = Field(3, ge=1, description="Number of modes, including the stationary one.")


class MfptTask(_Strict):
    """Mean first-passage time to the target from every cell (and from ``start``)."""

    start: Point | None = Field(None, description="Optional start point (one value per axis): also report the MFPT from there.")
    target: str | None = Field(None, description="Target region, e.g. 'x >= 1'; default: the absorbing faces.")
    field: bool = Field(True, description="Write the MFPT over the grid (false: only mfpt_at_start, e.g. when a sweep mixes grids).")


class SimulateTask(_Strict):
    """Escape times of the optimizer's real discrete updates (needs ``optimizer``): the ground truth
    beside the continuous model's times."""

    start: Point = Field(description="Start point of every particle (one value per landscape variable).")
    target: str = Field(description="Region to reach, e.g. 'x >= 0.3'.")
    particles: int = Field(10_000, ge=10, le=10_000_000, description="Ensemble size.")
    max_iterations: int = Field(100_000, ge=4, le=100_000_000, description="Iterations before unescaped particles are censored (their mean then comes from the late escape hazard, fpsolver.censoring).")
    seed: int = Field(0, ge=0, description="Random seed (reproducible runs).")
    hazard_window: float = Field(0.5, gt=0, le=1, description="Fraction of the run, at its end, over which a censored run's escape hazard is estimated (fpsolver.censoring); past the in-well transient.")


class EscapeTheoryTask(_Strict):
    """Closed-form escape time of the optimizer's model (needs ``optimizer``; 1-D): Kramers with the local temperature."""

    start: Point = Field(description="A point in the basin to escape from (one value per landscape variable).")
    target: str = Field(description="Region to reach, e.g. 'x >= 0.4'; the barrier is the saddle between.")


class StationaryVarianceTask(_Strict):
    """Variance of theta in the start's well (needs ``optimizer``): PDE and simulator (quasi-stationary, target
    absorbing) beside the harmonic theory T/H."""

    start: Point = Field(description="A point in the well (one value per landscape variable); particles start there.")
    target: str = Field(description="Region where particles are removed, e.g. 'x >= 0.4' (as for the escape).")
    particles: int = Field(10_000, ge=10, le=10_000_000, description="Ensemble size.")
    burn_in: int = Field(1_000, ge=0, le=100_000_000, description="Iterations before sampling (relaxation in the well).")
    samples: int = Field(10, ge=1, le=100_000, description="Snapshots of the surviving particles.")
    every: int = Field(100, ge=1, le=100_000_000, description="Iterations between snapshots.")
    seed: int = Field(0, ge=0, description="Random seed (reproducible runs).")


class EscapeRateTask(_Strict):
    """Escape rate from ``start`` to ``target`` by several methods, beside Kramers / Eyring–Kramers."""

    start: Point = Field(description="Start point (one value per axis).")
    target: str | None = Field(None, description="Target region, e.g. 'x >= 1'; default: the absorbing faces.")
    methods: list[str] = Field(["mfpt", "flux", "committor", "eigen"], description="Any of mfpt, flux, committor, eigen.")


class Tasks(_Strict):
    """What to compute; at least one task."""

    evolve: EvolveTask | None = Field(None, description="Time evolution from the initial density.")
    stationary: StationaryTask | None = Field(None, description="Stationary density; write 'stationary: {}' or 'stationary: true'.")
    spectrum: SpectrumTask | None = Field(None, description="Slowest relaxation rates and eigenfunctions.")
    mfpt: MfptTask | None = Field(None, description="Mean first-passage time field (and value at start).")
    escape_rate: EscapeRateTask | None = Field(None, description="Escape rate by several methods, with Kramers.")
    simulate: SimulateTask | None = Field(None, description="Escape times of the optimizer's discrete updates (optimizer scenarios).")
    escape_theory: EscapeTheoryTask | None = Field(None, description="Closed-form escape time of the optimizer's model (optimizer scenarios, 1-D).")
    stationary_variance: StationaryVarianceTask | None = Field(None, description="Variance in the start's well: PDE, simulator, theory (optimizer scenarios).")

    @field_validator("stationary", "spectrum", mode="before")
    @classmethod
    def _true_means_defaults(cls, value: Any) -> Any:
        if value is True:
            return {}
        if value is False:
            return None
        return value

    #: Tasks that run the optimizer's discrete updates only, never the continuous model.
    SIMULATOR_ONLY: ClassVar[frozenset[str]] = frozenset({"simulate"})

    @property
    def solve_the_model(self) -> bool:
        """Whether any task given uses the continuous model (the PDE or its closed forms)."""
        return any(getattr(self, name) is not None for name in type(self).model_fields if name not in self.SIMULATOR_ONLY)

    @model_validator(mode="after")
    def _at_least_one(self) -> Tasks:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError(f"no task given: add one of {', '.join(type(self).model_fields)}")
        return self


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Scenario(_Strict):
    """One scenario file: a landscape, a grid, a model, tasks and an output."""

    name: str = Field(description="Run name (letters, digits, _ . -); default output is outputs/NAME.nc.")
    title: str | None = Field(None, description="Human-readable title for the output file.")
    landscape: LandscapeSpec = Field(description="The loss landscape.")
    grid: dict[str, AxisSpec] = Field(min_length=1, description="Axes in order: name -> {min, max, n}.")
    boundary: Any = Field("reflecting", description="Kind for all sides, or per axis: kind or [lower, upper].")
    model: AnyModelSpec | None = Field(None, description="The stochastic model, overdamped or inertial (or give 'optimizer').")
    optimizer: OptimizerSpec | None = Field(None, description="An optimizer whose continuous-time model is solved (instead of 'model').")
    initial: InitialSpec | None = Field(None, description="Initial density (needed by evolve).")
    tasks: Tasks = Field(description="What to compute.")
    solver: str = Field("auto", description="Linear solver: auto (by dimension and size), superlu, krylov or amg.")
    output: str | None = Field(None, description="Output file (.nc); relative paths are relative to the working directory.")

    @model_validator(mode="after")
    def _one_model(self) -> Scenario:
        if (self.model is None) == (self.optimizer is None):
            raise ValueError("give exactly one of 'model' or 'optimizer'")
        return self

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("name may contain only letters, digits, '_', '.', '-' and must start with a letter or digit")
        return value

    @field_validator("grid")
    @classmethod
    def _axis_names(cls, value: dict[str, AxisSpec]) -> dict[str, AxisSpec]:
        bad = [k for k in value if not k.isidentifier()]
        if bad:
            raise ValueError(f"axis names must be identifiers such as x or y, got {bad}")
        return value
