"""What every runtime's config section shares: ports, sizes, and errors that name ``runtime.<name>.<key>``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from ..errors import ConfigError
from .spark.config import MemoryMiB, parse_memory_mib

Port = Annotated[int, Field(ge=1, le=65535)]
M = TypeVar("M", bound=BaseModel)

__all__ = ["MemoryMiB", "Port", "parse_memory_mib", "parse_section"]


def parse_section(model: type[M], section: str, data: Mapping[str, Any] | None) -> M:
    """Validate a runtime's section; the first problem raises `ConfigError` with its key path.

    A model validator may name the key itself with a ``"key: message"`` error.
    """
    from ..config.issues import did_you_mean

    try:
        return model.model_validate(dict(data or {}))
    except ValidationError as e:
        err = e.errors()[0]
        loc = [str(p) for p in err["loc"]]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}; {did_you_mean(loc[-1], list(model.model_fields))}"
        elif not loc and (keyed := re.match(r"^([\w.-]+): (.+)$", message, re.DOTALL)):
            loc, message = keyed.group(1).split("."), keyed.group(2)
        raise ConfigError(".".join([section, *loc]), message) from None


def distinct_ports(ports: Mapping[str, int | None], where: str) -> None:
    """Raise ``"key: ..."`` (for `parse_section`) when two of `ports` are the same number."""
    seen: dict[int, str] = {}
    for key, port in ports.items():
        if port is None:
            continue
        if port in seen:
            raise ValueError(f"{key}: port {port} is already used by {seen[port]} on the {where}")
        seen[port] = key
