"""`DaskRuntime`: Dask distributed from the `distributed` wheel, as a cluster runtime plugin.

The scheduler and each worker run in the foreground under the node agent (``python -m
distributed.cli.dask_*``), bound to the node's private address. A worker runs without a nanny: the agent
is its nanny (it restarts a worker that dies, and a replaced node's new worker joins the scheduler).
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
from ..base import PublishedEndpoint, installed_check
from .config import DaskConfig, parse_dask_config

SCHEDULER_MODULE = "distributed.cli.dask_scheduler"
WORKER_MODULE = "distributed.cli.dask_worker"
DEFAULT_THREADS = 1
DEFAULT_MEMORY_MIB = 1024
HEALTH_TIMEOUT = 90.0  # importing distributed (+ bokeh) on a busy 2-core machine
ADDRESS_ENV = "DASK_SCHEDULER_ADDRESS"  # `distributed.Client()` with no address reads it


def _dask(config: BaseModel) -> DaskConfig:
    if not isinstance(config, DaskConfig):
        raise TypeError(f"expected the DaskConfig from DaskRuntime.parse_config, got {type(config).__name__}")
    return config


def scheduler_address(config: DaskConfig, head_ip: str) -> str:
    return f"tcp://{head_ip}:{config.scheduler_port}"


def worker_resources(config: DaskConfig, resources: Mapping[str, float]) -> tuple[int, int]:
    """(threads, memory limit in MiB) of a worker: the config's override, else the node's resources."""
    threads = config.worker_threads or max(1, int(resources.get("CPU", DEFAULT_THREADS)))
    memory = config.worker_memory
    if memory is None:
        node_bytes = resources.get("memory")
        memory = max(256, int(node_bytes) // 2**20) if node_bytes else DEFAULT_MEMORY_MIB
    return threads, memory


def _env() -> dict[str, str]:
    return {"OMP_NUM_THREADS": "1"}  # a task's BLAS call uses its own thread, not every core


class DaskRuntime:
    """Scheduler (+ dashboard) on the head, one worker per worker node, links to the dashboard."""

    name = "dask"

    def parse_config(self, section: Mapping[str, Any]) -> DaskConfig:
        return parse_dask_config(section)

    def setup_commands(self, config: BaseModel, kind: str) -> list[str]:
        # Fail setup early, with what to install, rather than a service that never turns healthy.
        modules = ["distributed"] + (["bokeh"] if kind == T.KIND_HEAD and _dask(config).dashboard else [])
        return [installed_check(modules, "Dask is not installed: pip install 'cloudtik_jupyter[dask]'")]

    def services(self, config: BaseModel, node: NodeInfo) -> list[ServiceSpec]:
        dask = _dask(config)
        ip = node.ip
        if node.kind == T.KIND_HEAD:
            argv = [sys.executable, "-m", SCHEDULER_MODULE, "--host", ip, "--port", str(dask.scheduler_port)]
            if dask.dashboard:
                argv += ["--dashboard-address", f"{ip}:{dask.dashboard_port}"]
            else:
                argv += ["--no-dashboard"]
            health = HealthCheck(host=ip, port=dask.scheduler_port, timeout=HEALTH_TIMEOUT)
            return [ServiceSpec(name="dask-scheduler", argv=argv, env=_env(), health=health)]
        threads, memory = worker_resources(dask, node.resources)
        argv = [
            sys.executable, "-m", WORKER_MODULE, scheduler_address(dask, node.head_ip),
            "--host", ip, "--worker-port", str(dask.worker_port), "--no-nanny", "--no-dashboard",
            "--dashboard-address", f"{ip}:0",  # its /health and /metrics server, else on 0.0.0.0
            "--nthreads", str(threads), "--memory-limit", f"{memory}MiB",
            "--name", node.node_id, "--local-directory", str(node.runtime_dir / "dask-worker"),
            "--death-timeout", f"{dask.death_timeout:g}",
        ]  # fmt: skip
        health = HealthCheck(host=ip, port=dask.worker_port, timeout=HEALTH_TIMEOUT)
        return [ServiceSpec(name="dask-worker", argv=argv, env=_env(), health=health)]

    def links(self, config: BaseModel, head_ip: str) -> list[ServiceLink]:
        dask = _dask(config)
        links = []
        if dask.dashboard:
            links.append(
                ServiceLink("Dask dashboard", f"http://{head_ip}:{dask.dashboard_port}/status", "web")
            )
        links.append(ServiceLink("Dask scheduler", scheduler_address(dask, head_ip), "endpoint"))
        return links

    def environment(self, config: BaseModel, head_ip: str) -> dict[str, str]:
        return {}

    def worker_links(self, config: BaseModel, worker_ip: str) -> list[ServiceLink]:
        return []  # workers run without their dashboard (the scheduler's shows them)

    def ports(self, config: BaseModel, kind: str) -> dict[str, int]:
        dask = _dask(config)
        if kind == T.KIND_HEAD:
            return {"scheduler_port": dask.scheduler_port} | (
                {"dashboard_port": dask.dashboard_port} if dask.dashboard else {}
            )
        return {"worker_port": dask.worker_port}

    def published(self, config: BaseModel, head_ip: str) -> list[PublishedEndpoint]:
        return [PublishedEndpoint("dask-scheduler", "dask-scheduler", _dask(config).scheduler_port, "tcp")]

    def submit_argv(
        self,
        config: BaseModel,
        head_ip: str,
        job: str,
        args: Sequence[str],
        *,
        runtime_dir: Path | None = None,
    ) -> list[str]:
        """The script runs on the head with ``DASK_SCHEDULER_ADDRESS`` set: ``distributed.Client()`` in it
        connects to the cluster."""
        address = scheduler_address(_dask(config), head_ip)
        return ["env", f"{ADDRESS_ENV}={address}", sys.executable, job, *args]
