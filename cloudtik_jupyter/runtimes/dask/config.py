"""The ``runtime.dask`` config section: a frozen pydantic model; errors name ``runtime.dask.<key>``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..sections import MemoryMiB, Port, distinct_ports, parse_section

SECTION = "runtime.dask"


class DaskConfig(BaseModel):
    """Dask distributed: the scheduler (and its dashboard) on the head, one worker per worker node."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scheduler_port: Port = 8786
    dashboard: bool = True  # the scheduler's web dashboard (needs bokeh on the head)
    dashboard_port: Port = 8787
    worker_port: Port = 8788  # fixed, so the node agent can check the worker's health
    # A worker offers the node's resources (CPU -> threads, memory -> its memory limit); these override them.
    worker_threads: int | None = Field(default=None, ge=1, le=1024)
    worker_memory: MemoryMiB | None = None
    # Seconds a worker waits for a lost scheduler before it exits (the node agent then restarts it).
    death_timeout: float = Field(default=60.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _check(self) -> DaskConfig:
        head = {"scheduler_port": self.scheduler_port}
        distinct_ports(head | ({"dashboard_port": self.dashboard_port} if self.dashboard else {}), "head")
        return self


def parse_dask_config(section: Mapping[str, Any] | None) -> DaskConfig:
    return parse_section(DaskConfig, SECTION, section)
