"""What the REST API and the live stream exchange with the side panel: small pydantic models.

Requests are validated here (unknown keys refused, with the key named); responses are built from the API's
frozen records (`ClusterStatus`, `ClusterSummary`) and never from anything the panel could not show.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..config.schema import ClusterConfig
from ..providers import tags as T
from ..records.cluster import ClusterStatus, ClusterSummary, NodeRow, ServiceLink
from .links import proxy_url

if TYPE_CHECKING:
    from ..api.workspace import WorkspaceSummary

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
    machine: str  # nodes with the same machine share its memory
    cpu_history: list[float]  # recent samples, oldest first (percent)
    memory_history: list[int]  # bytes used, same samples
    links: list[LinkOut]  # the node's own web UIs (a Spark worker's), through the proxy


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
    memory_used: int | None  # summed over machines (nodes sharing one are counted once)
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


class WorkspaceOut(_Response):
    """A workspace as a panel card: the clusters of this machine that live in it."""

    name: str
    provider: str
    created: bool  # created from this machine (`cloudtik workspace create`); the virtual default needs none
    clusters: list[str]


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


def _node_links(node: NodeRow, cluster: str, config: ClusterConfig | None, base_url: str) -> list[LinkOut]:
    if config is None or node.kind != T.KIND_WORKER:
        return []
    from ..runtimes import enabled_runtimes

    out = []
    for runtime, section in enabled_runtimes(config):
        for link in runtime.worker_links(section, node.internal_ip):
            proxy = proxy_url(link, cluster, node.internal_ip, base_url, node=str(node.seq))
            out.append(LinkOut(name=link.name, url=link.url, kind=link.kind, proxy_url=proxy))
    return out


def node_out(node: NodeRow, cluster: str, config: ClusterConfig | None, base_url: str) -> NodeOut:
    return NodeOut(
        node_id=node.node_id,
        seq=node.seq,
        kind=node.kind,
        node_type=node.node_type,
        internal_ip=node.internal_ip,
        status=node.status,
        heartbeat_age=node.heartbeat_age,
        cpu_percent=node.cpu_percent,
        memory_used=node.memory_used,
        memory_total=node.memory_total,
        machine=node.machine,
        cpu_history=list(node.cpu_history),
        memory_history=list(node.memory_history),
        links=_node_links(node, cluster, config, base_url),
    )


def memory_per_machine(nodes: list[NodeRow]) -> tuple[int | None, int | None]:
    """Used and total memory summed over machines: nodes on one machine (virtual nodes, containers)
    report that machine's memory each, so it is counted once. A node that does not say is its own."""
    machines: dict[str, tuple[int, int]] = {}
    for n in nodes:
        if n.memory_used is not None and n.memory_total is not None:
            machines[n.machine or f"node:{n.node_id}"] = (n.memory_used, n.memory_total)
    if not machines:
        return None, None
    return sum(u for u, _ in machines.values()), sum(t for _, t in machines.values())


def status_out(status: ClusterStatus, base_url: str, config: ClusterConfig | None = None) -> StatusOut:
    ages = [n.heartbeat_age for n in status.nodes if n.heartbeat_age is not None]
    cpus = [n.cpu_percent for n in status.nodes if n.cpu_percent is not None]
    used, total = memory_per_machine(status.nodes)
    head = status.head
    head_ip = head.internal_ip if head else None
    return StatusOut(
        nodes=[node_out(n, status.name, config, base_url) for n in status.nodes],
        head_status=head.status if head else None,
        workers_ready=status.workers_ready,
        workers_desired=status.workers_desired,
        workers_min=status.workers_min,
        workers_max=status.workers_max,
        heartbeat_age=max(ages) if ages else None,
        cpu_percent=sum(cpus) / len(cpus) if cpus else None,
        memory_used=used,
        memory_total=total,
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
        return "failed" if error or status.error else "stopped"
    if head.status == T.NodeStatus.UP_TO_DATE.value:
        return "failed" if status.error else "running"
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
    config: ClusterConfig | None = None,
) -> ClusterCard:
    return ClusterCard(
        name=summary.name,
        provider=summary.provider,
        workspace=summary.workspace,
        phase=phase_of(status, operation, error),
        operation=operation,
        # an operation's error, else what the status says needs action (a half-dead head: `up` repairs it)
        error=error or (status.error if status is not None else None),
        status=status_out(status, base_url, config) if status is not None else None,
    )


def workspaces_out(
    known: Sequence[WorkspaceSummary], clusters: Sequence[ClusterSummary]
) -> tuple[WorkspaceOut, ...]:
    """Workspaces created here, and those clusters name without one (the virtual default), sorted."""
    members: dict[tuple[str, str], list[str]] = {(w.provider, w.name): [] for w in known}
    for cluster in clusters:
        members.setdefault((cluster.provider, cluster.workspace), []).append(cluster.name)
    created = {(w.provider, w.name) for w in known}
    return tuple(
        WorkspaceOut(
            name=name, provider=provider, created=(provider, name) in created, clusters=sorted(names)
        )
        for (provider, name), names in sorted(members.items(), key=lambda item: (item[0][1], item[0][0]))
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
