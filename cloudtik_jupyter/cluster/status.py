"""`status` and `info` of a cluster: the provider's view joined with the head's store, as the records of
records/cluster.py."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..errors import CloudtikError, HostKeyChanged
from ..providers import tags as T
from ..records.cluster import (
    ClusterEvent,
    ClusterInfo,
    ClusterStatus,
    NodeRow,
    ServiceLink,
)
from .context import ClusterContext, NodeRef
from .health import head_problem
from .identity_record import remember_identity

if TYPE_CHECKING:
    from ..state.records import MetricSample, NodeMetrics


def node_row(
    node: NodeRef,
    beat: float | None = None,
    metrics: NodeMetrics | None = None,
    history: list[MetricSample] | None = None,
) -> NodeRow:
    samples = history or []
    return NodeRow(
        node_id=node.node_id,
        seq=node.seq,
        kind=node.kind,
        node_type=node.node_type,
        internal_ip=node.address.internal_ip,
        external_ip=node.address.external_ip,
        status=node.status,
        heartbeat_age=max(0.0, time.time() - beat) if beat is not None else None,
        cpu_percent=metrics.cpu_percent if metrics else None,
        memory_used=metrics.memory_used if metrics else None,
        memory_total=metrics.memory_total if metrics else None,
        machine=metrics.machine if metrics else "",
        cpu_history=tuple(s.cpu_percent for s in samples),
        memory_history=tuple(s.memory_used for s in samples),
    )


async def cluster_status(
    ctx: ClusterContext, *, events: int = 20, nodes: list[NodeRef] | None = None
) -> ClusterStatus:
    """Provider view (nodes, their setup state) joined with the head's store (heartbeats, metrics, events).
    `nodes`: a listing the caller just made (`ctx.nodes()`), so it is not made twice."""
    nodes = await ctx.nodes() if nodes is None else nodes
    types = ctx.config.worker_types()
    desired = {t: nt.min_workers for t, nt in types.items()}
    beats: dict[str, float] = {}
    metrics: dict[str, NodeMetrics] = {}
    histories: dict[str, list[MetricSample]] = {}
    recent: list[ClusterEvent] = []
    error: str | None = None
    head = next((n for n in nodes if n.kind == T.KIND_HEAD), None)
    from redis.exceptions import RedisError

    if head is not None and head.status == T.NodeStatus.UP_TO_DATE.value:
        try:
            store = await ctx.store(head)
            beats = await store.heartbeat_times()
            metrics = await store.all_metrics()
            histories = await store.histories(n.node_id for n in nodes)
            wanted = await store.desired_state()
            desired.update({t: n for t, n in wanted.counts.items() if t in desired})
            recent = [ClusterEvent(e.time, e.kind, e.message, e.node_id) for e in await store.events(events)]
            await remember_identity(ctx, store, wanted)
        except HostKeyChanged as exc:
            error = str(exc)  # not "no heartbeat": something else may be answering at the head's address
        except (CloudtikError, OSError, RedisError):
            pass  # the head's store is unreachable: show what the provider knows (head_problem says so)
        problem = None if error else await head_problem(ctx, head, beats.get(head.node_id))
        if problem is not None:  # a half-dead head is an error, never "up-to-date"
            error = f"{problem}; run `cloudtik up` to repair it"
    elif head is None and nodes:
        error = "the head is gone; run `cloudtik up` to start a new one (it adopts the workers)"
    return ClusterStatus(
        name=ctx.name,
        provider=ctx.config.provider.type,
        nodes=[
            node_row(n, beats.get(n.node_id), metrics.get(n.node_id), histories.get(n.node_id)) for n in nodes
        ],
        workers_min=sum(t.min_workers for t in types.values()),
        workers_max=sum(t.effective_max for t in types.values()),
        workers_desired=sum(desired.values()),
        links=await service_links(ctx, head),
        events=recent,
        error=error,
    )


async def service_links(ctx: ClusterContext, head: NodeRef | None) -> list[ServiceLink]:
    """Links of the enabled runtimes' services on the head."""
    if head is None or not ctx.config.runtime.types:
        return []
    from ..runtimes import enabled_runtimes

    ip = head.address.internal_ip
    return [link for runtime, cfg in enabled_runtimes(ctx.config) for link in runtime.links(cfg, ip)]


async def cluster_info(ctx: ClusterContext) -> ClusterInfo:
    nodes = await ctx.nodes()
    head = next((n for n in nodes if n.kind == T.KIND_HEAD), None)
    return ClusterInfo(
        name=ctx.name,
        provider=ctx.config.provider.type,
        head_ip=(head.address.external_ip or head.address.internal_ip) if head else None,
        worker_ips=[n.address.internal_ip for n in nodes if n.kind == T.KIND_WORKER],
        links=await service_links(ctx, head),
    )
