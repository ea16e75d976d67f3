"""What the REST API and the live stream exchange with the side panel: small pydantic models.

Requests are validated here (unknown keys refused, with the key named); responses are built from the API's
frozen records (`ClusterStatus`, `ClusterSummary`) and never from anything the panel could not show.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..cluster.status import ClusterStatus, ClusterSummary, ServiceLink
from ..config.schema import ClusterConfig
from ..providers import tags as T
from .links import proxy_url

Phase = Literal["starting", "running", "failed", "stopping", "stopped", "unknown"]
Operation = Literal["up", "down"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScaleRequest(_Request):
    workers: int = Field(ge=0)
    node_type: str | None = None


class CreateRequest(_Request):
    template: str
    cluster_name: str
    workers: int | None = Field(default=None, ge=0)  # min_workers of the template's only worker type


class _Response(BaseModel):
    model_config = ConfigDict(frozen=True)


class LinkOut(_Response):
    name: str
    url: str
    kind: str
    proxy_url: str | None  # the same service through this Jupyter server (web UIs on the head)


class NodeOut(_Response):
    node_id: str
    seq: int
    kind: str
    node_type: str
    internal_ip: str
    status: str
    heartbeat_age: float | None
    cpu_percent: float | None
    memory_used: int | None
    memory_total: int | None


class EventOut(_Response):
    at: float
    kind: str
    message: str
    node_id: str | None


class StatusOut(_Response):
    nodes: list[NodeOut]
    head_status: str | None
    workers_ready: int
    workers_desired: int
    workers_min: int
    workers_max: int
    heartbeat_age: float | None  # the stalest reporting node's
    cpu_percent: float | None  # mean over reporting nodes
    memory_used: int | None  # summed over reporting nodes
    memory_total: int | None
    links: list[LinkOut]
    events: list[EventOut]


class ClusterCard(_Response):
    """One cluster as a panel card: what it is, where it stands, and what we are doing to it."""

    name: str
    provider: str
    workspace: str
    phase: Phase
    operation: Operation | None = None
    error: str | None = None
    status: StatusOut | None = None


class WorkerTypeOut(_Response):
    name: str
    min_workers: int
    max_workers: int


class TemplateOut(_Response):
    name: str
    provider: str
    runtimes: list[str]
    worker_types: list[WorkerTypeOut]


class ErrorOut(_Response):
    message: str
    path: str | None = None  # the offending key, for bad input


def link_out(link: ServiceLink, cluster: str, head_ip: str | None, base_url: str) -> LinkOut:
    """A web link to the head gets a proxy URL, so it works from any browser that reaches Jupyter."""
    proxy = proxy_url(link, cluster, head_ip, base_url)
    return LinkOut(name=link.name, url=link.url, kind=link.kind, proxy_url=proxy)


def status_out(status: ClusterStatus, base_url: str) -> StatusOut:
    nodes = [
        NodeOut(
            node_id=n.node_id,
            seq=n.seq,
            kind=n.kind,
            node_type=n.node_type,
            internal_ip=n.internal_ip,
            status=n.status,
            heartbeat_age=n.heartbeat_age,
            cpu_percent=n.cpu_percent,
            memory_used=n.memory_used,
            memory_total=n.memory_total,
        )
        for n in status.nodes
    ]
    ages = [n.heartbeat_age for n in status.nodes if n.heartbeat_age is not None]
    cpus = [n.cpu_percent for n in status.nodes if n.cpu_percent is not None]
    used = [n.memory_used for n in status.nodes if n.memory_used is not None]
    total = [n.memory_total for n in status.nodes if n.memory_total is not None]
    head = status.head
    head_ip = head.internal_ip if head else None
    return StatusOut(
        nodes=nodes,
        head_status=head.status if head else None,
        workers_ready=status.workers_ready,
        workers_desired=status.workers_desired,
        workers_min=status.workers_min,
        workers_max=status.workers_max,
        heartbeat_age=max(ages) if ages else None,
        cpu_percent=sum(cpus) / len(cpus) if cpus else None,
        memory_used=sum(used) if used else None,
        memory_total=sum(total) if total else None,
        links=[link_out(link, status.name, head_ip, base_url) for link in status.links],
        events=[EventOut(at=e.at, kind=e.kind, message=e.message, node_id=e.node_id) for e in status.events],
    )


def phase_of(status: ClusterStatus | None, operation: Operation | None, error: str | None) -> Phase:
    if operation == "up":
        return "starting"
    if operation == "down":
        return "stopping"
    if status is None:
        return "failed" if error else "unknown"
    head = status.head
    if head is None:
        return "failed" if error else "stopped"
    if head.status == T.NodeStatus.UP_TO_DATE.value:
        return "running"
    if head.status == T.NodeStatus.UPDATE_FAILED.value:
        return "failed"
    return "starting"


def card(
    summary: ClusterSummary,
    status: ClusterStatus | None,
    base_url: str,
    *,
    operation: Operation | None = None,
    error: str | None = None,
) -> ClusterCard:
    return ClusterCard(
        name=summary.name,
        provider=summary.provider,
        workspace=summary.workspace,
        phase=phase_of(status, operation, error),
        operation=operation,
        error=error,
        status=status_out(status, base_url) if status is not None else None,
    )


def template_out(name: str, config: ClusterConfig) -> TemplateOut:
    return TemplateOut(
        name=name,
        provider=config.provider.type,
        runtimes=list(config.runtime.types),
        worker_types=[
            WorkerTypeOut(name=t, min_workers=nt.min_workers, max_workers=nt.effective_max)
            for t, nt in config.worker_types().items()
        ],
    )
