"""The pieces of a status the provider alone can fill (the records of records/cluster.py); `status` and
`info` themselves are read from the head's store by cluster/readmodel.py."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..records.cluster import NodeRow, ServiceLink
from .context import ClusterContext, NodeRef

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


async def service_links(ctx: ClusterContext, head: NodeRef | None) -> list[ServiceLink]:
    """Links of the enabled runtimes' services on the head."""
    if head is None or not ctx.config.runtime.types:
        return []
    from ..runtimes import enabled_runtimes

    ip = head.address.internal_ip
    return [link for runtime, cfg in enabled_runtimes(ctx.config) for link in runtime.links(cfg, ip)]
