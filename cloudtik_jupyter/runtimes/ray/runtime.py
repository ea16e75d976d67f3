"""`RayRuntime`: Ray from the `ray` wheel, as a cluster runtime plugin.

Each node runs ``ray start --block`` in the foreground under the node agent: it starts the node's Ray
processes (GCS, dashboard and client server on the head; a raylet everywhere) as its children and exits when
one of them dies, so the agent restarts the node's Ray as a whole; stopping the service stops them all
(one process group). Every address Ray lets us choose is the node's private address. Ray's own usage
reporting is off. Each node keeps Ray's session files in its own short private directory (Unix socket paths
are short; nodes of `virtual` share one /tmp).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ...node.config import HealthCheck, ServiceSpec
from ...providers import tags as T
from ...records.cluster import ServiceLink
from ...records.node import NodeInfo
from ...records.node_env import scratch_dir
from ..base import PublishedEndpoint, installed_check
from .config import RayConfig, parse_ray_config

HEALTH_TIMEOUT = 180.0  # Ray starts several processes; slow on a busy 2-core machine
DEFAULT_CPUS = 1
ADDRESS_ENV = "RAY_ADDRESS"
QUIET = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_IMPORT_WARNING": "1"}
# The head's client server forks a server per Ray Client connection from a process busy in gRPC; gRPC's
# fork handlers then restart its threads in the child before exec, which crashes it (SIGSEGV) on a loaded
# machine and fails the client's ray.init. Nothing in these processes needs gRPC across a fork.
SERVICE_ENV = {**QUIET, "GRPC_ENABLE_FORK_SUPPORT": "0"}


def _ray(config: BaseModel) -> RayConfig:
    if not isinstance(config, RayConfig):
        raise TypeError(f"expected the RayConfig from RayRuntime.parse_config, got {type(config).__name__}")
    return config


def gcs_address(config: RayConfig, head_ip: str) -> str:
    return f"{head_ip}:{config.gcs_port}"


def temp_dir() -> Path:
    """Ray's sessions on this node: in its scratch dir (socket paths must fit in 107 bytes), which goes
    with the node (on `virtual`, removed when the node is terminated)."""
    return scratch_dir() / "ray"


def worker_resources(config: RayConfig, resources: Mapping[str, float]) -> tuple[int, int | None]:
    """(CPUs, memory in bytes or None for Ray's own estimate) a worker offers."""
    cpus = config.worker_cpus or max(1, int(resources.get("CPU", DEFAULT_CPUS)))
    if config.worker_memory is not None:
        return cpus, config.worker_memory * 2**20
    memory = resources.get("memory")
    return cpus, int(memory) if memory else None


class RayRuntime:
    """Ray head on the head, a Ray worker node per worker; links to the dashboard and client server."""

    name = "ray"

    def parse_config(self, section: Mapping[str, Any]) -> RayConfig:
        return parse_ray_config(section)

    def setup_commands(self, config: BaseModel, kind: str) -> list[str]:
        modules = ["ray"] + (["aiohttp"] if kind == T.KIND_HEAD and _ray(config).dashboard else [])
        return [installed_check(modules, "Ray is not installed: pip install 'cloudtik_jupyter[ray]'")]

    def services(self, config: BaseModel, node: NodeInfo) -> list[ServiceSpec]:
        ray = _ray(config)
        ip = node.ip
        session = temp_dir()
        argv = [
            sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats",
            "--node-ip-address", ip, "--temp-dir", str(session),
            "--object-store-memory", str(ray.object_store_memory * 2**20),
        ]  # fmt: skip
        if ray.node_manager_port:
            argv += ["--node-manager-port", str(ray.node_manager_port)]
        if ray.object_manager_port:
            argv += ["--object-manager-port", str(ray.object_manager_port)]
        if node.kind == T.KIND_HEAD:
            argv += ["--head", "--port", str(ray.gcs_port), "--ray-client-server-port", str(ray.client_port)]
            argv += ["--num-cpus", str(ray.head_cpus)]
            if ray.dashboard:
                argv += ["--include-dashboard", "true", "--dashboard-host", ip]
                argv += ["--dashboard-port", str(ray.dashboard_port)]
            else:
                argv += ["--include-dashboard", "false"]
            name = "ray-head"
        else:
            cpus, memory = worker_resources(ray, node.resources)
            argv += ["--address", gcs_address(ray, node.head_ip), "--num-cpus", str(cpus)]
            argv += ["--memory", str(memory)] if memory else []
            name = "ray-worker"
        # The head: its client server listens on the head's own address once the GCS is up. A worker: `ray
        # start --block` exits (and the agent restarts it) when its raylet fails to join.
        health = (
            HealthCheck(host=ip, port=ray.client_port, timeout=HEALTH_TIMEOUT)
            if node.kind == T.KIND_HEAD
            else None
        )
        # A fresh session directory per start, private to this node's user (a restart leaves no old
        # sessions behind); Ray creates what is inside.
        script = 'rm -rf -- "$1" && umask 077 && mkdir -p -- "$1" && shift && exec "$@"'
        return [
            ServiceSpec(
                name=name,
                argv=["/bin/sh", "-c", script, "ray", str(session), *argv],
                env=dict(SERVICE_ENV),
                health=health,
                stop_timeout=30.0,
                max_restarts=10,  # Ray gives a node 30 s to register; a loaded machine can miss that
            )
        ]

    def environment(self, config: BaseModel, head_ip: str) -> dict[str, str]:
        return dict(QUIET)

    def links(self, config: BaseModel, head_ip: str) -> list[ServiceLink]:
        ray = _ray(config)
        links = []
        if ray.dashboard:
            links.append(ServiceLink("Ray dashboard", f"http://{head_ip}:{ray.dashboard_port}", "web"))
        links.append(ServiceLink("Ray client", f"ray://{head_ip}:{ray.client_port}", "endpoint"))
        links.append(ServiceLink("Ray GCS", gcs_address(ray, head_ip), "endpoint"))
        return links

    def worker_links(self, config: BaseModel, worker_ip: str) -> list[ServiceLink]:
        return []  # the head's dashboard shows every node

    def ports(self, config: BaseModel, kind: str) -> dict[str, int]:
        ray = _ray(config)
        fixed = {"node_manager_port": ray.node_manager_port, "object_manager_port": ray.object_manager_port}
        node = {key: port for key, port in fixed.items() if port}
        if kind != T.KIND_HEAD:
            return node
        head = {"gcs_port": ray.gcs_port, "client_port": ray.client_port, **node}
        return head | ({"dashboard_port": ray.dashboard_port} if ray.dashboard else {})

    def published(self, config: BaseModel, head_ip: str) -> list[PublishedEndpoint]:
        ray = _ray(config)
        return [
            PublishedEndpoint("ray-gcs", "ray-gcs", ray.gcs_port, "tcp"),
            PublishedEndpoint("ray-client", "ray-client", ray.client_port, "ray"),
        ]

    def submit_argv(
        self,
        config: BaseModel,
        head_ip: str,
        job: str,
        args: Sequence[str],
        *,
        runtime_dir: Path | None = None,
    ) -> list[str]:
        """The script is the driver, on the head: ``ray.init()`` in it joins the cluster (``RAY_ADDRESS``)."""
        address = gcs_address(_ray(config), head_ip)
        return ["env", f"{ADDRESS_ENV}={address}", sys.executable, job, *args]
