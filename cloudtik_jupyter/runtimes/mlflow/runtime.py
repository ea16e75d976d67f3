"""`MlflowRuntime`: an MLflow tracking server on the head, supervised by the node agent.

The server binds the head's private address and proxies artifacts (``--serve-artifacts``), so jobs on the
workers log runs and artifacts over HTTP and hold no storage credentials. Every runtime service and every
submitted job gets ``MLFLOW_TRACKING_URI``, so ``mlflow.start_run()`` anywhere on the cluster lands there.
With ``from_cluster`` the URI is the one that cluster publishes in the workspace (see discovery/).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ...errors import CloudtikError
from ...node.config import HealthCheck, ServiceSpec
from ...providers import tags as T
from ...records.cluster import ServiceLink
from ...records.node import NodeInfo
from ..base import PublishedEndpoint, installed_check
from .config import SECTION, MlflowConfig, parse_mlflow_config

if TYPE_CHECKING:
    from ...config.schema import ClusterConfig

log = logging.getLogger(__name__)

KIND = "mlflow-tracking"
URI_ENV = "MLFLOW_TRACKING_URI"
# MLflow would report usage to its makers from every process that imports it: nodes talk to their cluster.
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
HEALTH_TIMEOUT = 120.0  # importing mlflow and creating the database on a busy 2-core machine


def _mlflow(config: BaseModel) -> MlflowConfig:
    if not isinstance(config, MlflowConfig):
        raise TypeError(
            f"expected the MlflowConfig from MlflowRuntime.parse_config, got {type(config).__name__}"
        )
    return config


def tracking_uri(config: MlflowConfig, head_ip: str) -> str:
    """This cluster's own server, or the one `from_cluster` publishes (looked up now)."""
    if config.from_cluster:
        from ...discovery import lookup

        return lookup(config.scope, config.from_cluster, KIND, where=f"{SECTION}.from_cluster").url
    return f"http://{head_ip}:{config.port}"


def default_artifacts(config: MlflowConfig, runtime_dir: Path) -> str:
    """The workspace's bucket where this head can reach one (AWS), else a directory on the head."""
    if config.artifacts:
        return config.artifacts
    if config.scope.provider.type == "aws":
        from ...discovery.clouds import aws_registry

        try:
            return f"s3://{aws_registry(config.scope).bucket}/mlflow-artifacts"
        except CloudtikError as exc:
            log.warning("no workspace bucket for MLflow artifacts (%s); using the head's disk", exc)
    return str(runtime_dir / "mlflow" / "artifacts")


def server_argv(config: MlflowConfig, ip: str, runtime_dir: Path) -> list[str]:
    store = config.backend_store or f"sqlite:///{runtime_dir / 'mlflow' / 'mlflow.db'}"
    argv = [
        sys.executable, "-m", "mlflow", "server", "--host", ip, "--port", str(config.port),
        "--workers", str(config.server_workers), "--backend-store-uri", store,
        "--serve-artifacts", "--artifacts-destination", default_artifacts(config, runtime_dir),
        # Host headers it answers (DNS-rebinding guard): its own address, and the loopback end of an SSH
        # forward (the side panel's proxy, `cloudtik` port forwards).
        "--allowed-hosts", f"{ip},{ip}:{config.port},localhost,localhost:*,127.0.0.1,127.0.0.1:*",
    ]  # fmt: skip
    # SQLite and the artifact directory need their directory to exist before the server starts.
    return [
        "/bin/sh",
        "-c",
        'mkdir -p -- "$1" && shift && exec "$@"',
        "mlflow",
        str(runtime_dir / "mlflow"),
        *argv,
    ]


class MlflowRuntime:
    """The tracking server on the head (none with `from_cluster`); links to its UI."""

    name = "mlflow"

    def parse_config(self, section: Mapping[str, Any]) -> MlflowConfig:
        return parse_mlflow_config(section)

    def bind(self, config: BaseModel, cluster: ClusterConfig) -> MlflowConfig:
        """The section, knowing which workspace registry `from_cluster` and the bucket are found in."""
        from ...discovery import DiscoveryScope

        bound = _mlflow(config).model_copy()
        bound._scope = DiscoveryScope.of(cluster)
        return bound

    def setup_commands(self, config: BaseModel, kind: str) -> list[str]:
        if kind != T.KIND_HEAD or _mlflow(config).from_cluster:
            return [installed_check(["mlflow"], "MLflow is not installed: pip install mlflow-skinny")]
        hint = "the MLflow server is not installed: pip install 'cloudtik_jupyter[mlflow]'"
        return [installed_check(["mlflow", "sqlalchemy", "alembic", "uvicorn"], hint)]

    def services(self, config: BaseModel, node: NodeInfo) -> list[ServiceSpec]:
        mlflow = _mlflow(config)
        if node.kind != T.KIND_HEAD or mlflow.from_cluster:
            return []
        health = HealthCheck(host=node.ip, port=mlflow.port, timeout=HEALTH_TIMEOUT)
        argv = server_argv(mlflow, node.ip, node.runtime_dir)
        env = {**QUIET, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no extra job-runner process
        return [ServiceSpec(name="mlflow-server", argv=argv, env=env, health=health, stop_timeout=5.0)]

    def environment(self, config: BaseModel, head_ip: str) -> dict[str, str]:
        return {URI_ENV: tracking_uri(_mlflow(config), head_ip), **QUIET}

    def links(self, config: BaseModel, head_ip: str) -> list[ServiceLink]:
        mlflow = _mlflow(config)
        try:
            uri = tracking_uri(mlflow, head_ip)
        except CloudtikError:
            return []  # the provider cluster is down: nothing to link to
        if mlflow.from_cluster:  # its UI is the provider cluster's (linked, and proxied, there)
            return [ServiceLink("MLflow tracking", uri, "endpoint")]
        return [ServiceLink("MLflow UI", uri, "web"), ServiceLink("MLflow tracking", uri, "endpoint")]

    def worker_links(self, config: BaseModel, worker_ip: str) -> list[ServiceLink]:
        return []  # MLflow runs nothing on the workers

    def ports(self, config: BaseModel, kind: str) -> dict[str, int]:
        mlflow = _mlflow(config)
        return {"port": mlflow.port} if kind == T.KIND_HEAD and not mlflow.from_cluster else {}

    def consumes(self, config: BaseModel) -> list[str]:
        mlflow = _mlflow(config)
        return [mlflow.from_cluster] if mlflow.from_cluster else []

    def published(self, config: BaseModel, head_ip: str) -> list[PublishedEndpoint]:
        mlflow = _mlflow(config)
        return [] if mlflow.from_cluster else [PublishedEndpoint(KIND, KIND, mlflow.port, "http")]

    def submit_argv(
        self,
        config: BaseModel,
        head_ip: str,
        job: str,
        args: Sequence[str],
        *,
        runtime_dir: Path | None = None,
    ) -> list[str]:
        """A Python script run on the head with ``MLFLOW_TRACKING_URI`` set (the submit module adds it)."""
        return [sys.executable, job, *args]
