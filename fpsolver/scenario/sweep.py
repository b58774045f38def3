"""Sweeps: one scenario file expanded into several runs.

.. code-block:: yaml

    sweep:
      model.temperature: [0.05, 0.025, 0.0125]   # dotted key path -> list of values
      mode: product                              # or zip (all lists of equal length)

Each run is the file with the swept keys replaced, validated and built like any
scenario (errors point at the swept key's line and name the value). The results
share one output file. With a single swept key the runs stack along a dimension
named after the key's last part (``temperature``); otherwise along a dimension
``run`` with one coordinate per swept key.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any

from ..errors import ScenarioError
from .yamlfile import Located, key_path

__all__ = ["Variant", "expand_sweep", "located_variant_error", "SWEEP_KEY"]

SWEEP_KEY = "sweep"
MODES = ("product", "zip")


@dataclass(frozen=True)
class Variant:
    """One run of a sweep: the swept values (dotted key -> value) and the file data it uses."""

    values: dict[str, Any]
    located: Located

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.values.items())


def expand_sweep(located: Located) -> list[Variant]:
    """The runs described by ``located`` (a single run when there is no ``sweep`` block)."""
    data = located.data
    if not isinstance(data, dict) or SWEEP_KEY not in data:
        return [Variant({}, located)]
    block = data[SWEEP_KEY]
    where = (SWEEP_KEY,)
    if not isinstance(block, dict) or not block:
        raise located.error(where, "sweep must map dotted keys (such as model.temperature) to lists of values")
    block = dict(block)
    mode = block.pop("mode", "product")
    if mode not in MODES:
        raise located.error(where + ("mode",), f"sweep mode must be one of {', '.join(MODES)}, got {mode!r}")
    base = {k: v for k, v in data.items() if k != SWEEP_KEY}
    keys = list(block)
    for key in keys:
        values = block[key]
        if not isinstance(key, str) or not isinstance(values, list) or not values:
            raise located.error(where + (key,), "a swept key needs a non-empty list of values")
        path = tuple(key.split("."))
        if path[0] == SWEEP_KEY or not _parent_exists(base, path):
            raise located.error(where + (key,), f"cannot sweep {key!r}: {key_path(path[:-1]) or 'the file'} has no such mapping")
    if mode == "zip" and len({len(block[k]) for k in keys}) > 1:
        raise located.error(where, "sweep mode zip needs lists of equal length")
    combos = zip(*(block[k] for k in keys)) if mode == "zip" else itertools.product(*(block[k] for k in keys))
    variants = []
    for combo in combos:
        variant = copy.deepcopy(base)
        lines = dict(located.lines)
        for key, value in zip(keys, combo):
            path = tuple(key.split("."))
            _set(variant, path, value)
            lines[path] = located.lines.get(where + (key,), located.line(where))
        variants.append(Variant(dict(zip(keys, combo)), Located(variant, located.source, lines)))
    return variants


def _parent_exists(data: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = data
    for part in path[:-1]:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return isinstance(node, dict)


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = copy.deepcopy(value)


def located_variant_error(exc: ScenarioError, variant: Variant) -> ScenarioError:
    """Name the swept values in every message of ``exc``."""
    if not variant.values:
        return exc
    return ScenarioError([(where, f"{message} (in the sweep run {variant.label})") for where, message in exc.problems])

