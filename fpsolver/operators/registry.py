"""Model kind -> generator assembly, by registry.

A model binds to a grid (``model.on(grid)``) and returns a *coefficients* object;
the generator of the Fokker–Planck equation is assembled by the function
registered for that coefficients type. :class:`~fpsolver.problem.FokkerPlanck`
never names a model class: a new model kind (overdamped, inertial, optimizer
derived...) adds one entry here.

>>> @register_generator(MyCoefficients)
... def my_generator(coeffs, grid, boundaries): ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import scipy.sparse as sps

from ..boundary import Boundaries
from ..errors import InputError
from ..grid import Grid

__all__ = ["GENERATORS", "register_generator", "assemble_generator"]

Generator = Callable[[Any, Grid, Boundaries], sps.csr_matrix]

#: Coefficients type -> function assembling the generator :math:`\mathcal L` (``dP/dt = L @ P``).
GENERATORS: dict[type, Generator] = {}


def register_generator(coefficients_type: type) -> Callable[[Generator], Generator]:
    """Decorator registering the generator assembly for ``coefficients_type``."""

    def wrap(func: Generator) -> Generator:
        GENERATORS[coefficients_type] = func
        return func

    return wrap


def assemble_generator(coefficients: Any, grid: Grid, boundaries: Boundaries) -> sps.csr_matrix:
    """The generator for bound model ``coefficients`` (dispatch on its type, base classes included)."""
    for kind in type(coefficients).__mro__:
        if kind in GENERATORS:
            return GENERATORS[kind](coefficients, grid, boundaries)
    known = ", ".join(sorted(t.__name__ for t in GENERATORS))
    raise InputError(f"no generator is registered for {type(coefficients).__name__} (known: {known})")
