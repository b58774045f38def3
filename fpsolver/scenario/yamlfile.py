"""YAML loading that remembers where every key came from.

Scenario files are data: they are read with PyYAML's safe loader (no Python
objects, no code) and, on the way, every mapping key and sequence item records
its 1-based line so that errors can say ``FILE:LINE: key.path: message``.
Duplicate keys, which plain YAML loading silently collapses, are rejected.

Aliases (``*name``) are bounded so that an "anchor bomb" (a few lines whose
aliases expand to billions of values) is refused in milliseconds: at most
:data:`MAX_ALIASES` aliases, at most :data:`MAX_VALUES` values after expansion,
and no alias inside its own anchor. These are counted on the composed node graph
(where an alias is one shared node), before anything is expanded. Files larger
than :data:`MAX_CHARACTERS` and flow collections (``[...]``, ``{...}``) nested
deeper than :data:`MAX_FLOW_DEPTH` are refused before PyYAML sees them: its
scanner takes time quadratic in the nesting depth (1.2 s for 5000 levels).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError, ScenarioError

__all__ = ["Located", "load_yaml", "parse_yaml", "key_path", "MAX_ALIASES", "MAX_VALUES"]

#: Most aliases (``*name``) one file may use; scenarios need a handful at most.
MAX_ALIASES = 100

#: Most values (mappings, lists and scalars) one file may expand to, each alias counted at every use.
MAX_VALUES = 100_000

#: Largest scenario file, in characters.
MAX_CHARACTERS = 1_000_000

#: Deepest nesting of flow collections (``[`` and ``{``); scenarios need 3.
MAX_FLOW_DEPTH = 50

Path_ = tuple[Any, ...]


@dataclass
class Located:
    """Parsed YAML data plus the line of every key path."""

    data: Any
    source: str
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Path_) -> int:
        """Line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)

    def resolve(self, loc: Path_) -> Path_:
        """Map a validation location onto a path that exists in the data.

        Elements that are not keys or indices of the data (such as the names of
        union members or discriminator tags in pydantic locations) are dropped.
        """
        node, path = self.data, []
        parts = list(loc)
        for i, part in enumerate(parts):
            if isinstance(node, dict) and part in node:
                node = node[part]
                path.append(part)
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
                path.append(part)
            elif isinstance(node, dict) and any(later in node for later in parts[i + 1 :]):
                continue  # a union tag (e.g. the landscape kind) standing between real keys
            elif isinstance(node, dict) and isinstance(part, str) and not _is_type_label(part):
                # A key the data lacks (missing or extra): still name it.
                path.append(part)
                break
        return tuple(path)

    def where(self, path: Path_) -> str:
        """``FILE:LINE: key.path`` for ``path``."""
        path = tuple(path)
        key = key_path(path)
        return f"{self.source}:{self.line(path)}" + (f": {key}" if key else "")

    def error(self, path: Path_, message: str) -> ScenarioError:
        """A located :class:`ScenarioError`."""
        return ScenarioError([(self.where(path), message)])

    @contextmanager
    def at(self, path: Path_) -> Iterator[None]:
        """Turn any :class:`InputError` raised inside into a :class:`ScenarioError` located at ``path``."""
        try:
            yield
        except ScenarioError:
            raise
        except InputError as exc:
            raise self.error(path, str(exc)) from None


def _is_type_label(part: str) -> bool:
    # pydantic labels union members by their type, e.g. 'float', 'list[float]', 'function-after[...]'.
    return any(ch in part for ch in "[]()") or part in {"str", "int", "float", "bool", "dict", "list", "none"}


def key_path(path: Path_) -> str:
    """Dotted key path, with list indices in brackets: ``tasks.evolve.dt``, ``initial.gaussian.mean[1]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_yaml(path: str | Path) -> Located:
    """Read and parse a scenario file (errors name the file and line)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([(source, "file not found")]) from None
    except IsADirectoryError:
        raise ScenarioError([(source, "is a directory, not a scenario file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([(source, f"cannot be read ({exc})")]) from None
    return parse_yaml(text, source)


def parse_yaml(text: str, source: str = "<string>") -> Located:
    """Parse YAML text, recording key lines."""
    _check_size(text, source)
    located = Located(None, source)
    loader = _BoundedLoader(text, source)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError([(f"{source}:1", "the file is empty")])
        _check_expanded_size(node, source)
        located.data = _construct(loader, node, (), located)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ScenarioError([(f"{source}:{line}", f"YAML syntax error: {exc.problem or exc.context}")]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([(f"{source}:1", f"YAML error: {exc}")]) from None
    except RecursionError:
        raise ScenarioError([(f"{source}:1", "the YAML is nested too deeply")]) from None
    finally:
        loader.dispose()
    located.lines.setdefault((), 1)
    return located


def _check_size(text: str, source: str) -> None:
    """Refuse huge files and deep flow nesting in one linear pass (quoted text and comments skipped)."""
    if len(text) > MAX_CHARACTERS:
        raise ScenarioError([(f"{source}:1", f"the file is larger than {MAX_CHARACTERS} characters")])
    depth, line, quote = 0, 1, ""
    for i, ch in enumerate(text):
        if ch == "\n":
            line += 1
            quote = "" if quote == "#" else quote
        elif quote:
            quote = "" if ch == quote and quote != "#" else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1].isspace()):
            quote = "#"
        elif ch in "[{":
            depth += 1
            if depth > MAX_FLOW_DEPTH:
                raise ScenarioError([(f"{source}:{line}", f"the YAML is nested more than {MAX_FLOW_DEPTH} levels deep")])
        elif ch in "]}":
            depth = max(depth - 1, 0)


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, counting aliases as they are composed."""

    def __init__(self, text: str, source: str):
        super().__init__(text)
        self.source = source
        self.aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                line = self.peek_event().start_mark.line + 1
                raise ScenarioError([(f"{self.source}:{line}", f"more than {MAX_ALIASES} YAML aliases (*name); write the values out")])
        return super().compose_node(parent, index)


def _check_expanded_size(root: yaml.Node, source: str) -> None:
    """Refuse a node graph that expands to more than :data:`MAX_VALUES` values, or is recursive.

    Sizes are memoised per node, so the cost is linear in the size of the *file*,
    not of its expansion.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        line = node.start_mark.line + 1
        if key in open_nodes:
            raise ScenarioError([(f"{source}:{line}", "an alias refers to its own anchor (a recursive structure)")])
        open_nodes.add(key)
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        total = 1 + sum(size(child) for child in children)
        if total > MAX_VALUES:
            raise ScenarioError([(f"{source}:{line}", f"the YAML expands (through its aliases) to more than {MAX_VALUES} values")])
        open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root)


def _construct(loader: yaml.SafeLoader, node: yaml.Node, path: Path_, located: Located) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, (str, int, float, bool)):
                raise ScenarioError([(f"{located.source}:{line}", f"unsupported key {key!r}")])
            if key in out:
                where = f"{located.source}:{line}: {key_path(path + (key,))}"
                raise ScenarioError([(where, f"duplicate key (first given on line {located.lines[path + (key,)]})")])
            located.lines[path + (key,)] = line
            out[key] = _construct(loader, value_node, path + (key,), located)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            located.lines[path + (i,)] = item.start_mark.line + 1
            items.append(_construct(loader, item, path + (i,), located))
        return items
    return loader.construct_object(node, deep=True)
