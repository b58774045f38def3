"""fpsolver: Fokker–Planck solvers for how fast optimizers escape loss valleys.

The nouns are a :class:`Grid`, a :class:`Landscape`, a model such as
:class:`Overdamped` and a :class:`FokkerPlanck` problem; the verbs on the problem
(``evolve``, ``stationary``, ``spectrum``) return xarray objects.
"""

from __future__ import annotations

from ._version import __version__
from . import regions
from .boundary import Boundaries
from .errors import ExpressionError, FPSolverError, FPSolverWarning, InputError, ScenarioError, SolverError
from .grid import Axis, Grid
from .initial import gaussian
from .landscapes import Landscape
from .models import Inertial, Overdamped
from .problem import FokkerPlanck

__all__ = [
    "__version__",
    "Axis",
    "Grid",
    "Boundaries",
    "Landscape",
    "Overdamped",
    "Inertial",
    "FokkerPlanck",
    "gaussian",
    "FPSolverError",
    "InputError",
    "ExpressionError",
    "ScenarioError",
    "SolverError",
    "FPSolverWarning",
]
