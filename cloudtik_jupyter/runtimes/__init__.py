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
    "dask": "cloudtik_jupyter.runtimes.dask.runtime:DaskRuntime",
    "mlflow": "cloudtik_jupyter.runtimes.mlflow.runtime:MlflowRuntime",
    "ray": "cloudtik_jupyter.runtimes.ray.runtime:RayRuntime",
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
    if len(set(config.runtime.types)) != len(config.runtime.types):
        raise ConfigError("runtime.types", f"a runtime is listed twice: {config.runtime.types}")
    for name in config.runtime.types:
        runtime = get_runtime(name)
        section = (config.runtime.model_extra or {}).get(name) or {}
        parsed = runtime.parse_config(section)
        bind = getattr(runtime, "bind", None)  # a runtime that needs the cluster's workspace (discovery)
        enabled.append((runtime, bind(parsed, config) if bind else parsed))
    _check_ports(config, enabled)
    return enabled


def _check_ports(config: ClusterConfig, enabled: list[tuple[Runtime, BaseModel]]) -> None:
    """Runtimes combined on one cluster must not bind the same port on the same node (nor the head's
    state store ports)."""
    from ..state.endpoints import DEFAULT_PRIMARY_PORT

    store = {DEFAULT_PRIMARY_PORT + i: "the state store (redis)" for i in range(config.head.redis_shards + 1)}
    for kind in ("head", "worker"):
        taken: dict[int, str] = dict(store) if kind == "head" else {}
        for runtime, cfg in enabled:
            for key, port in runtime.ports(cfg, kind).items():
                path = f"runtime.{runtime.name}.{key}"
                if port in taken:
                    raise ConfigError(path, f"port {port} is already used by {taken[port]} on the {kind}")
                taken[port] = path


def runtime_environment(config: ClusterConfig, head_ip: str) -> dict[str, str]:
    """Every enabled runtime's variables for the cluster's services and jobs (e.g. MLFLOW_TRACKING_URI)."""
    env: dict[str, str] = {}
    for runtime, cfg in enabled_runtimes(config):
        env |= runtime.environment(cfg, head_ip)
    return env


def consumed_clusters(config: ClusterConfig) -> list[str]:
    """The clusters of the workspace whose published services this cluster's runtimes use (a runtime
    says so with an optional ``consumes(config) -> list[str]`` hook)."""
    found: list[str] = []
    for runtime, cfg in enabled_runtimes(config):
        consumes = getattr(runtime, "consumes", None)
        found += [c for c in (consumes(cfg) if consumes else []) if c not in found]
    return found
