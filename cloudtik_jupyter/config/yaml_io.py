"""Read YAML strictly and boundedly, and report syntax errors by line and column.

Strict: a key given twice is an error (PyYAML silently keeps the last). Bounded: the text is at most
`MAX_CONFIG_BYTES`, and the document may expand to at most `MAX_CONFIG_VALUES` values counting every use
of an alias (a "billion laughs" alias bomb is a few hundred bytes that expand to gigabytes once copied);
an alias that contains itself is refused.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from .limits import MAX_CONFIG_BYTES, MAX_CONFIG_VALUES


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML silently keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)  # resolve `<<:` merge keys first: overriding a merged key is allowed
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def expanded_size(root: yaml.Node, limit: int = MAX_CONFIG_VALUES) -> int:
    """How many values the document holds once every alias is expanded; refuses past `limit` and
    refuses a recursive alias. Linear in the (unexpanded) node graph: shared nodes are sized once."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            size = 1 + sum(sizes[id(child)] for child in _children(node))
            if size > limit:
                raise ConfigError(
                    "", f"config expands to more than {limit} values (through YAML aliases?); refused"
                )
            sizes[key] = size
            continue
        if key in sizes:
            continue
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise ConfigError("", "a YAML alias refers to a value that contains it (recursive); refused")
            if id(child) not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


def check_text_size(text: str, where: str = "") -> None:
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError("", f"config{where} is larger than {MAX_CONFIG_BYTES // 1024} KiB; refused")


def read_config_text(path: Path, what: str = "config file") -> str:
    """A config file's text: a regular file (a fifo or device could block or never end), at most
    `MAX_CONFIG_BYTES`, UTF-8."""
    if not path.exists():
        raise ConfigError("", f"{what} not found: {path}")
    if not path.is_file():
        raise ConfigError("", f"{what} is not a regular file: {path}")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"cannot read {what} {path}: {exc}") from None
    check_text_size(text, f" {path}")
    return text


def parse_yaml(text: str, origin: str = "") -> Any:
    """Parse one YAML document; `origin` (a file or template name) is named in errors."""
    where = f" in {origin}" if origin else ""
    check_text_size(text, where)
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)  # a SafeLoader subclass: plain data only; reads (and checks) the text
        node = loader.get_single_node()
        if node is None:
            return None
        expanded_size(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError("", f"invalid YAML{where}{at}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError("", f"invalid YAML{where}: {exc}") from None
    except RecursionError:
        raise ConfigError("", f"invalid YAML{where}: nested too deeply") from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer of more digits than Python converts
        raise ConfigError("", f"invalid YAML{where}: {str(exc).splitlines()[0][:200]}") from None
    finally:
        if loader is not None:
            loader.dispose()


def dump_yaml(data: Any) -> str:
    """Block-style YAML in the order given (the schema's field order reads best)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
