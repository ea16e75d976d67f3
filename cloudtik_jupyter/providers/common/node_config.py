"""Validating a node type's provider-specific ``node_config`` with a pydantic model."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from ...errors import ConfigError
from ..base import NodeSpec

M = TypeVar("M", bound=BaseModel)


def parse_node_config(model: type[M], spec: NodeSpec) -> M:
    """`spec.node_config` as `model`; a bad key raises `ConfigError` naming its full key path."""
    try:
        return model.model_validate(dict(spec.node_config))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"available_node_types.{spec.node_type}.node_config.{where}", first["msg"]
        ) from None
