"""Runtime registry; a runtime's module is imported only when a cluster enables it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:
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
