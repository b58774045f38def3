"""Exception and warning types raised by fpsolver.

Every error caused by user input derives from :class:`InputError` (itself a
:class:`ValueError`), so callers can tell bad input (CLI exit code 2) from an
internal failure (exit code 1).
"""

from __future__ import annotations

__all__ = [
    "FPSolverError",
    "InputError",
    "ExpressionError",
    "ScenarioError",
    "SolverError",
    "SweepError",
    "FPSolverWarning",
]


class FPSolverError(Exception):
    """Base class of all fpsolver errors."""


class InputError(FPSolverError, ValueError):
    """Invalid user input: a bad parameter, shape, name or expression."""


class ExpressionError(InputError):
    """A landscape or coefficient expression that cannot be parsed safely.

    Parameters
    ----------
    message
        What is wrong.
    expression
        The offending expression text.
    column
        0-based column of the offending token in ``expression``, if known.
    """

    def __init__(self, message: str, expression: str = "", column: int | None = None):
        self.expression = expression
        self.column = column
        where = f" at column {column + 1}" if column is not None else ""
        text = f"{message}{where} in expression {expression!r}" if expression else message
        super().__init__(text)


class ScenarioError(InputError):
    """A problem in a scenario file, located by file, line and key path.

    Parameters
    ----------
    problems
        One ``(location, message)`` pair per problem, where ``location`` is the
        ready-made ``FILE:LINE: key.path`` prefix.
    """

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = list(problems)
        super().__init__("\n".join(f"{where}: {message}" for where, message in self.problems))


class SolverError(FPSolverError, RuntimeError):
    """A numerical solve failed (singular system, no convergence, ...)."""


class SweepError(SolverError):
    """Every run of a sweep failed at run time.

    Parameters
    ----------
    problems
        One ``(location, message)`` pair per run, ``location`` being the sweep key's
        ``FILE:LINE: sweep.KEY`` and ``message`` naming the run's swept values.
    """

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = list(problems)
        super().__init__("\n".join(f"{where}: {message}" for where, message in self.problems))


class FPSolverWarning(UserWarning):
    """Warnings about numerically questionable but legal requests."""
