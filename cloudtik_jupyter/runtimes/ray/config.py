"""The ``runtime.ray`` config section: a frozen pydantic model; errors name ``runtime.ray.<key>``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..sections import MemoryMiB, Port, distinct_ports, parse_section

SECTION = "runtime.ray"


class RayConfig(BaseModel):
    """Ray: GCS, dashboard and client server on the head; a raylet on every node."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gcs_port: Port = 6379
    dashboard: bool = True
    dashboard_port: Port = 8265
    client_port: Port = 10001  # Ray Client: ``ray.init("ray://head:10001")`` from a notebook
    # A raylet's ports; None: random. Ray binds them on every interface, so nodes sharing a machine (virtual)
    # must not fix them; on a cloud, fixing them lets a firewall name them.
    node_manager_port: Port | None = None
    object_manager_port: Port | None = None
    # Tasks run on the workers; the head only coordinates unless this gives it CPUs.
    head_cpus: int = Field(default=0, ge=0, le=1024)
    # A worker offers the node's resources (CPU, memory); these override them.
    worker_cpus: int | None = Field(default=None, ge=1, le=1024)
    worker_memory: MemoryMiB | None = None
    object_store_memory: MemoryMiB = 128  # per node, in shared memory (Ray's default is 30% of the machine)

    @model_validator(mode="after")
    def _check(self) -> RayConfig:
        head = {
            "gcs_port": self.gcs_port,
            "client_port": self.client_port,
            "node_manager_port": self.node_manager_port,
            "object_manager_port": self.object_manager_port,
        }
        distinct_ports(head | ({"dashboard_port": self.dashboard_port} if self.dashboard else {}), "head")
        if self.object_store_memory < 80:
            raise ValueError("object_store_memory: Ray needs at least 80m")
        return self


def parse_ray_config(section: Mapping[str, Any] | None) -> RayConfig:
    return parse_section(RayConfig, SECTION, section)
