"""Boundary conditions per axis side.

Three kinds, each meaning a statement about the probability flux through the
outer faces of the grid:

``reflecting``
    zero normal flux (probability is conserved);
``absorbing``
    the density is zero just beyond the face (probability leaves the domain);
``periodic``
    the last cell is a neighbour of the first (both sides of the axis).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Union

from .errors import InputError
from .grid import Grid

__all__ = ["BoundaryKind", "Boundaries", "BoundarySpec", "KINDS"]

BoundaryKind = Literal["reflecting", "absorbing", "periodic"]
KINDS: tuple[str, ...] = ("reflecting", "absorbing", "periodic")

#: What users may pass: one kind for every side, or a per-axis mapping of a kind or a (lower, upper) pair.
BoundarySpec = Union[str, Mapping[str, Union[str, tuple[str, str], list[str]]], "Boundaries"]


@dataclass(frozen=True)
class Boundaries:
    """Resolved boundary kinds, one ``(lower, upper)`` pair per grid axis (axis order)."""

    sides: tuple[tuple[BoundaryKind, BoundaryKind], ...]

    @classmethod
    def resolve(cls, spec: BoundarySpec, grid: Grid) -> Boundaries:
        """Turn a user specification into per-axis sides for ``grid``.

        Axes missing from a mapping are reflecting.
        """
        if isinstance(spec, Boundaries):
            if len(spec.sides) != grid.ndim:
                raise InputError(f"boundaries are given for {len(spec.sides)} axes, the grid has {grid.ndim}")
            return spec
        if isinstance(spec, str):
            kind = _check_kind(spec, "boundary")
            return cls(tuple((kind, kind) for _ in grid))
        if not isinstance(spec, Mapping):
            raise InputError(f"boundary must be a kind {KINDS} or a mapping axis -> kind, got {spec!r}")
        unknown = set(spec) - set(grid.names)
        if unknown:
            raise InputError(f"boundary names axes {sorted(unknown)} that the grid does not have {list(grid.names)}")
        sides = []
        for name in grid.names:
            value = spec.get(name, "reflecting")
            if isinstance(value, str):
                lower = upper = _check_kind(value, f"boundary.{name}")
            elif isinstance(value, (tuple, list)) and len(value) == 2:
                lower = _check_kind(value[0], f"boundary.{name}[0]")
                upper = _check_kind(value[1], f"boundary.{name}[1]")
            else:
                raise InputError(f"boundary.{name} must be a kind or a (lower, upper) pair of kinds, got {value!r}")
            if (lower == "periodic") != (upper == "periodic"):
                raise InputError(f"boundary.{name}: periodic must be used on both sides of the axis")
            sides.append((lower, upper))
        return cls(tuple(sides))

    def periodic(self, axis: int) -> bool:
        """Whether axis number ``axis`` is periodic."""
        return self.sides[axis][0] == "periodic"

    @property
    def conserves_mass(self) -> bool:
        """True when no side is absorbing."""
        return all(kind != "absorbing" for pair in self.sides for kind in pair)

    def as_dict(self, grid: Grid) -> dict[str, list[str]]:
        """Plain representation for output metadata."""
        return {name: list(pair) for name, pair in zip(grid.names, self.sides)}


def _check_kind(value: object, where: str) -> BoundaryKind:
    if value not in KINDS:
        raise InputError(f"{where}: unknown boundary kind {value!r}; choose one of {', '.join(KINDS)}")
    return value  # type: ignore[return-value]
