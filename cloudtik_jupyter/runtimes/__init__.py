"""Runtime registry; a runtime's module is imported only when a cluster enables it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from ..config.schema import ClusterConfig
    from .base import Runtime

_RUNTIMES: dict[str, str] = {
    "spark": "cloudtik_jupyter.runtimes.spark.runtime:SparkRuntime",
}


def runtime_names() -> list[str]:
    return sorted(_RUNTIMES)


def get_runtime(name: str) -> Runtime:
    if name not in _RUNTIMES:
        raise ConfigError("runtime.types", f"unknown runtime {name!r} (known: {', '.join(runtime_names())})")
    module, _, attr = _RUNTIMES[name].partition(":")
    runtime: Runtime = getattr(importlib.import_module(module), attr)()
    return runtime


def enabled_runtimes(config: ClusterConfig) -> list[tuple[Runtime, BaseModel]]:
    """The runtimes of ``runtime.types``, each with its parsed ``runtime.<name>`` section."""
    enabled = []
    for name in config.runtime.types:
        runtime = get_runtime(name)
        section = (config.runtime.model_extra or {}).get(name) or {}
        enabled.append((runtime, runtime.parse_config(section)))
    return enabled
