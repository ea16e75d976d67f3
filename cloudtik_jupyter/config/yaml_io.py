"""Read YAML strictly (duplicate keys are errors) and report syntax errors by line and column."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml

from ..errors import ConfigError


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


def parse_yaml(text: str, origin: str = "") -> Any:
    """Parse one YAML document; `origin` (a file or template name) is named in errors."""
    where = f" in {origin}" if origin else ""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: plain data only
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError("", f"invalid YAML{where}{at}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError("", f"invalid YAML{where}: {exc}") from None


def dump_yaml(data: Any) -> str:
    """Block-style YAML in the order given (the schema's field order reads best)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
