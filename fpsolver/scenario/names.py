"""Names an output file already uses, which grid axes therefore may not take.

Grid axes become dimensions and coordinate variables of the output dataset. An
axis called ``p`` or ``mass`` would silently replace the density or the mass
variable, and ``time``, ``mode`` or ``method`` would collide with a dimension
after minutes of computing. The list below is every variable, coordinate and
dimension name the tasks and sweeps write (a test computes a scenario with every
task and checks that nothing it writes is missing here), plus the names the
lead's rename (``method`` -> ``estimator``) and the sweep bookkeeping use.
"""

from __future__ import annotations

__all__ = ["RESERVED_NAMES", "RESERVED_PREFIXES", "reserved_clashes"]

#: Prefixes of output names written per model kind or task (closed-form columns ``theory_*``, the
#: stationary_variance task's ``well_*``).
RESERVED_PREFIXES: tuple[str, ...] = ("theory_", "well_")

RESERVED_NAMES: frozenset[str] = frozenset(
    {
        # evolve
        "p", "time", "mass", "negative_mass", "flux", "population", "transient_rate", "rate_plateau",
        # stationary, spectrum
        "p_stationary", "rate", "frequency", "mode", "eigenfunction",
        # mfpt, escape_rate
        "mfpt", "mfpt_at_start", "escape_rate", "kramers_rate", "barrier", "minimum", "saddle",
        "hessian_minimum", "hessian_saddle", "steady_population", "method", "estimator",
        "coordinate", "committor", "component", "reactive_current", "escape_time",
        "escape_iterations", "kramers_iterations", "reaction_rate", "reaction_rate_in",
        # simulate
        "survival", "iteration", "iteration_time", "bound", "escaped_fraction", "mean_escape_iterations",
        "mean_escape_iterations_ci", "mean_escape_time", "mean_escape_time_ci", "mean_escape_estimator",
        "escape_hazard", "hazard_window_escapes",
        # mfpt of an optimizer's model, escape_theory, stationary_variance
        "mfpt_at_start_iterations", "dynamics", "parameter",
        # sweeps
        "run", "run_error", "run_failed",
    }
)  # fmt: skip


def reserved_clashes(names: list[str] | tuple[str, ...]) -> list[str]:
    """The names in ``names`` that an output already uses."""
    return [n for n in names if n in RESERVED_NAMES or n.startswith(RESERVED_PREFIXES)]
