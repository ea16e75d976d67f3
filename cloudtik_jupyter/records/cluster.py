"""What `status`, `info` and `list` return: small frozen records, rendered by each front end (the CLI, the
notebook view, the panel's JSON) and filled by cluster/readmodel.py and cluster/status.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from .node import KIND_HEAD, KIND_WORKER, NodeStatus


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
    machine: str = ""  # nodes on one machine report the same memory (see NodeMetrics.machine)
    cpu_history: tuple[float, ...] = ()  # the store's recent samples, oldest first (percent)
    memory_history: tuple[int, ...] = ()  # bytes used, same samples


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
    # What the user must act on, which the nodes' rows cannot say: the head presenting another SSH host key
    # than the one pinned (both fingerprints named), a half-dead head (`up` repairs it), workers without a
    # head. None when all is well.
    error: str | None = None
    # Where the rows come from: "store" (the head's state store, the read model: cluster/readmodel.py) or
    # "provider" (the head is not up, or unreachable: no heartbeats or metrics, and `error` says why).
    source: str = "provider"

    @property
    def head(self) -> NodeRow | None:
        return next((n for n in self.nodes if n.kind == KIND_HEAD), None)

    @property
    def workers(self) -> list[NodeRow]:
        return [n for n in self.nodes if n.kind == KIND_WORKER]

    @property
    def workers_ready(self) -> int:
        return sum(1 for n in self.workers if n.status == NodeStatus.UP_TO_DATE.value)


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
