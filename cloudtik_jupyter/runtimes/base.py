"""The Runtime plugin contract: what a runtime (Spark, ...) adds to a cluster's nodes.

A runtime validates its own config section (``runtime.<name>``), contributes setup commands, declares the
services the node agent runs on head and workers, and the service links front ends show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from ..cluster.status import ServiceLink
from ..node.config import ServiceSpec


@dataclass(frozen=True)
class NodeInfo:
    """What a runtime needs to know about the node it configures."""

    cluster_name: str
    node_id: str
    kind: str  # "head" | "worker"
    node_type: str
    ip: str  # the node's private address; bind services here
    head_ip: str
    runtime_dir: Path  # the runtime's own directory on this node (work dirs, logs, event logs)
    resources: Mapping[str, float] = field(default_factory=dict)  # e.g. {"CPU": 2, "memory": 4 * 2**30}


@runtime_checkable
class Runtime(Protocol):
    name: str

    def parse_config(
        self, section: Mapping[str, Any]
    ) -> BaseModel: ...  # ConfigError paths below runtime.<name>

    def setup_commands(self, config: BaseModel, kind: str) -> list[str]: ...  # idempotent; run during setup

    def services(self, config: BaseModel, node: NodeInfo) -> list[ServiceSpec]: ...  # run by the node agent

    def links(self, config: BaseModel, head_ip: str) -> list[ServiceLink]: ...

    def worker_links(self, config: BaseModel, worker_ip: str) -> list[ServiceLink]: ...  # a worker's UIs

    def submit_argv(
        self,
        config: BaseModel,
        head_ip: str,
        job: str,
        args: Sequence[str],
        *,
        runtime_dir: Path | None = None,
    ) -> list[str]: ...  # the command that submits `job` from the head
