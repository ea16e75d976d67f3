"""What `status`, `info` and `list` return: small frozen records, rendered by each front end."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..providers import tags as T
from .context import ClusterContext, NodeRef


@dataclass(frozen=True)
class NodeRow:
    node_id: str
    seq: int
    kind: str
    node_type: str
    internal_ip: str
    external_ip: str | None
    status: str
    heartbeat_age: float | None = None  # seconds; None until the node's agent has reported
    cpu_percent: float | None = None
    memory_used: int | None = None  # bytes
    memory_total: int | None = None


@dataclass(frozen=True)
class ServiceLink:
    name: str
    url: str
    kind: str  # "web" | "endpoint"


@dataclass(frozen=True)
class ClusterEvent:
    at: float  # unix time
    kind: str
    message: str
    node_id: str | None = None


@dataclass(frozen=True)
class ClusterStatus:
    name: str
    provider: str
    nodes: list[NodeRow]
    workers_min: int
    workers_max: int
    workers_desired: int = 0
    links: list[ServiceLink] = field(default_factory=list)
    events: list[ClusterEvent] = field(default_factory=list)

    @property
    def head(self) -> NodeRow | None:
        return next((n for n in self.nodes if n.kind == T.KIND_HEAD), None)

    @property
    def workers(self) -> list[NodeRow]:
        return [n for n in self.nodes if n.kind == T.KIND_WORKER]

    @property
    def workers_ready(self) -> int:
        return sum(1 for n in self.workers if n.status == T.NodeStatus.UP_TO_DATE.value)


@dataclass(frozen=True)
class ClusterInfo:
    name: str
    provider: str
    head_ip: str | None
    worker_ips: list[str]
    links: list[ServiceLink] = field(default_factory=list)


@dataclass(frozen=True)
class ClusterSummary:
    name: str
    provider: str
    workspace: str


def node_row(node: NodeRef) -> NodeRow:
    return NodeRow(
        node_id=node.node_id,
        seq=node.seq,
        kind=node.kind,
        node_type=node.node_type,
        internal_ip=node.address.internal_ip,
        external_ip=node.address.external_ip,
        status=node.status,
    )


async def cluster_status(ctx: ClusterContext) -> ClusterStatus:
    nodes = await ctx.nodes()
    types = ctx.config.worker_types().values()
    return ClusterStatus(
        name=ctx.name,
        provider=ctx.config.provider.type,
        nodes=[node_row(n) for n in nodes],
        workers_min=sum(t.min_workers for t in types),
        workers_max=sum(t.effective_max for t in types),
        workers_desired=sum(t.min_workers for t in types),
    )


async def cluster_info(ctx: ClusterContext) -> ClusterInfo:
    nodes = await ctx.nodes()
    head = next((n for n in nodes if n.kind == T.KIND_HEAD), None)
    return ClusterInfo(
        name=ctx.name,
        provider=ctx.config.provider.type,
        head_ip=(head.address.external_ip or head.address.internal_ip) if head else None,
        worker_ips=[n.address.internal_ip for n in nodes if n.kind == T.KIND_WORKER],
    )
