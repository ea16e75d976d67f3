"""The Runtime plugin contract: what a runtime (Spark, ...) adds to a cluster's nodes.

A runtime validates its own config section (``runtime.<name>``), contributes setup commands, declares the
services the node agent runs on head and workers, and the service links front ends show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from ..node.config import RuntimeNode, ServiceSpec
from ..records.cluster import ServiceLink
from ..records.node import NodeInfo


@dataclass(frozen=True)
class PublishedEndpoint:
    """A service endpoint a runtime offers to the other clusters of its workspace (see discovery/)."""

    name: str  # unique in the cluster, e.g. "tracking"
    kind: str  # what it is, e.g. "mlflow-tracking", "dask-scheduler", "spark-master"
    port: int
    protocol: str  # URL scheme a consumer uses: "http", "tcp", "spark", ...


def node_info(
    cluster_name: str, node_id: str, kind: str, node_type: str, ip: str, node: RuntimeNode
) -> NodeInfo:
    return NodeInfo(
        cluster_name=cluster_name,
        node_id=node_id,
        kind=kind,
        node_type=node_type,
        ip=ip,
        head_ip=node.head_ip,
        runtime_dir=node.runtime_dir,
        resources=dict(node.resources),
        secret_file=node.secret_file,
    )


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

    # Fixed ports its services bind on a node of `kind`, by config key (``{"master_port": 7077}``): the
    # registry refuses two runtimes of one cluster that would bind the same port on the same node.
    def ports(self, config: BaseModel, kind: str) -> dict[str, int]: ...

    # Variables every runtime service on the cluster's nodes and every submitted job gets (all runtimes'
    # merged), e.g. MLflow's tracking URI.
    def environment(self, config: BaseModel, head_ip: str) -> dict[str, str]: ...

    # What other clusters of the workspace may consume (discovery): endpoints on the head.
    def published(self, config: BaseModel, head_ip: str) -> list[PublishedEndpoint]: ...

    def submit_argv(
        self,
        config: BaseModel,
        head_ip: str,
        job: str,
        args: Sequence[str],
        *,
        runtime_dir: Path | None = None,
    ) -> list[str]: ...  # the command that submits `job` from the head

    # Optional: ``busy(config, node) -> bool | None``, called by the node's agent (in a thread, a 5 s
    # deadline) to say whether the runtime runs work on this node; None when it cannot say. A busy node is
    # never released as idle. Not part of the Protocol so runtimes without it still satisfy it.


def installed_check(modules: list[str], hint: str) -> str:
    """A setup command that fails, saying `hint`, unless `modules` are importable here. Looks them up
    without importing them (importing mlflow or ray takes seconds)."""
    names = ", ".join(repr(m) for m in modules)
    code = f"import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ({names},)))"
    return f'python3 -c "{code}" || {{ echo "{hint}" >&2; exit 1; }}'
