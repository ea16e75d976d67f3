"""What every view reads: the head's state store; the provider only when the head is not there.

The controller mirrors each node the provider lists into the store's node table (head/controller.py
`_sync_records`), beside what the agents report (heartbeats, metrics, events). So CLI `status`,
`Cluster.status()/watch_async()`, the notebook view and the side panel read the store and make no
provider call while the head is up, whatever the number of nodes or watchers. The head's address comes
from the last listing (`ClusterContext.known_head`, kept in the local record).

The provider is listed only when the head is unknown, not set up yet, or its store does not answer; the
status then says so: `source == "provider"`, and an `error` beginning "head unreachable: showing the
cloud's view" when the head should have answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable

from redis.exceptions import RedisError

from ..errors import CloudtikError, HostKeyChanged
from ..providers import tags as T
from ..records.cluster import ClusterEvent, ClusterInfo, ClusterStatus, NodeRow
from ..state.desired import DesiredState
from ..state.records import TERMINATED, NodeMetrics, NodeRecord
from ..state.store import Series, StateStore
from .context import ClusterContext, NodeRef
from .health import head_problem
from .identity_record import remember_identity
from .status import node_row, service_links

UP = T.NodeStatus.UP_TO_DATE.value
UNREACHABLE = "head unreachable: showing the cloud's view"
HEAD_GONE = "the head is gone; run `cloudtik up` to start a new one (it adopts the workers)"
# The store cannot be reached (restarting, the network) or answered something no version wrote.
STORE_ERRORS: tuple[type[BaseException], ...] = (CloudtikError, OSError, RedisError, asyncio.TimeoutError)
GARBAGE: tuple[type[BaseException], ...] = (ValueError, TypeError, KeyError, IndexError, AttributeError)

Lister = Callable[[], Awaitable[list[NodeRef]]]


def head_of(nodes: Iterable[NodeRef]) -> NodeRef | None:
    return next((n for n in nodes if n.kind == T.KIND_HEAD), None)


def shown(records: Iterable[NodeRecord]) -> list[NodeRecord]:
    """Rows a view shows: the controller's (a kind), not one a client just terminated; head first, then by
    sequence id (unnumbered last)."""
    rows = [r for r in records if r.kind in (T.KIND_HEAD, T.KIND_WORKER) and r.status != TERMINATED]
    return sorted(rows, key=lambda r: (r.kind != T.KIND_HEAD, r.seq_id is None, r.seq_id or 0, r.node_id))


def record_row(r: NodeRecord, now: float, metrics: NodeMetrics | None, series: Series | None) -> NodeRow:
    cpu, memory = series or ((), ())
    return NodeRow(
        node_id=r.node_id,
        seq=r.seq_id or 0,
        kind=r.kind,
        node_type=r.node_type,
        internal_ip=r.address,
        external_ip=r.external_ip or None,
        status=r.status,
        heartbeat_age=max(0.0, now - r.last_heartbeat) if r.last_heartbeat is not None else None,
        cpu_percent=metrics.cpu_percent if metrics else None,
        memory_used=metrics.memory_used if metrics else None,
        memory_total=metrics.memory_total if metrics else None,
        machine=metrics.machine if metrics else "",
        cpu_history=cpu,
        memory_history=memory,
    )


async def tolerant(read: Awaitable[object], default: object) -> object:
    """A read whose reply no version of cloudtik wrote (a hostile or broken writer) shows as nothing."""
    try:
        return await read
    except GARBAGE:
        return default


async def cluster_status(
    ctx: ClusterContext, *, events: int = 20, lister: Lister | None = None
) -> ClusterStatus:
    """The cluster as the head's store has it; the provider's view when the head is not up or not reachable.
    `lister`: how to list the provider when needed (a watcher passes a rate-limited one)."""
    listing = lister or ctx.nodes
    head = ctx.known_head()
    nodes: list[NodeRef] | None = None  # listed in this call
    if head is None or head.status != UP:
        nodes = await listing()  # not known here, or being set up: the cloud's view is all there is
        head = head_of(nodes)
        if head is None or head.status != UP:
            return await provider_status(ctx, nodes, HEAD_GONE if head is None and nodes else None)
    tried: set[str] = set()
    while True:
        tried.add(head.node_id)
        try:
            return await store_status(ctx, head, events, listing)
        except HostKeyChanged as exc:  # not "unreachable": something else may answer at the head's address
            problem, changed = str(exc), True
        except STORE_ERRORS as exc:
            problem, changed = f"head {head.node_id}: its state store does not answer ({_short(exc)})", False
        if nodes is None:
            nodes = await listing()  # has the head changed (a new one after a crash), or is it gone?
        now_head = head_of(nodes)
        if now_head is None:
            return await provider_status(ctx, nodes, HEAD_GONE if nodes else None)
        if now_head.status != UP:
            return await provider_status(ctx, nodes, None)  # being set up again (`up` repairing it)
        if now_head.node_id in tried and now_head == head:
            break
        head = now_head  # a new head (or the same at a new address): its store, once
    if changed:
        return await provider_status(ctx, nodes, problem)
    return await provider_status(ctx, nodes, f"{UNREACHABLE} ({problem}); run `cloudtik up` to repair it")


async def cluster_info(ctx: ClusterContext) -> ClusterInfo:
    """Addresses and service links, from the same read as `status`: the head's store, the provider only
    when the head is not up or does not answer (no cloud listing per `info` or `head-ip`)."""
    status = await cluster_status(ctx, events=0)
    head = next((n for n in status.nodes if n.kind == T.KIND_HEAD), None)
    return ClusterInfo(
        name=ctx.name,
        provider=ctx.config.provider.type,
        head_ip=(head.external_ip or head.internal_ip) if head else None,
        worker_ips=[n.internal_ip for n in status.nodes if n.kind == T.KIND_WORKER],
        links=status.links,
    )


async def store_status(ctx: ClusterContext, head: NodeRef, events: int, listing: Lister) -> ClusterStatus:
    """Raises STORE_ERRORS (or HostKeyChanged) when the store does not answer; garbage in it is skipped."""
    store = await ctx.store(head)
    records = shown(await store.nodes())
    try:
        wanted: DesiredState | None = await store.desired_state()
    except GARBAGE:  # counts no version wrote: show the config's minimums, remember nothing
        wanted = None
    now = time.time()
    if not any(r.kind == T.KIND_HEAD for r in records):
        # The controller has not mirrored the nodes yet (its first tick after `up`): the provider's rows.
        beats = await store.heartbeat_times()
        records = [node_record(n, beats.get(n.node_id)) for n in await listing()]
    ids = [r.node_id for r in records]
    metrics, histories, recent = await asyncio.gather(
        tolerant(store.all_metrics(), {}),
        tolerant(store.history_series(ids), {}),
        tolerant(store.events(events), []),
    )
    assert isinstance(metrics, dict) and isinstance(histories, dict) and isinstance(recent, list)
    if wanted is not None:
        with contextlib.suppress(*GARBAGE):
            await remember_identity(ctx, store, wanted)
    beat = next((r.last_heartbeat for r in records if r.node_id == head.node_id), None)
    error = None
    try:
        problem = await head_problem(ctx, head, beat)
    except GARBAGE:
        problem = f"head {head.node_id}: its node agent's report is unreadable"
    if problem is not None:  # a half-dead head is an error, never "up-to-date"
        error = f"{problem}; run `cloudtik up` to repair it"
    types = ctx.config.worker_types()
    desired = {t: nt.min_workers for t, nt in types.items()}
    desired.update({t: n for t, n in (wanted.counts if wanted else {}).items() if t in desired})
    return ClusterStatus(
        name=ctx.name,
        provider=ctx.config.provider.type,
        nodes=[record_row(r, now, metrics.get(r.node_id), histories.get(r.node_id)) for r in records],
        workers_min=sum(t.min_workers for t in types.values()),
        workers_max=sum(t.effective_max for t in types.values()),
        workers_desired=sum(desired.values()),
        links=await service_links(ctx, head),
        events=[ClusterEvent(e.time, e.kind, e.message, e.node_id) for e in recent],
        error=error,
        source="store",
    )


async def provider_status(ctx: ClusterContext, nodes: list[NodeRef], error: str | None) -> ClusterStatus:
    """What the provider alone can say: nodes and their setup state, no heartbeats or metrics."""
    types = ctx.config.worker_types()
    head = head_of(nodes)
    return ClusterStatus(
        name=ctx.name,
        provider=ctx.config.provider.type,
        nodes=[node_row(n) for n in nodes],
        workers_min=sum(t.min_workers for t in types.values()),
        workers_max=sum(t.effective_max for t in types.values()),
        workers_desired=sum(t.min_workers for t in types.values()),
        links=await service_links(ctx, head),
        error=error,
        source="provider",
    )


async def reachable_store(ctx: ClusterContext) -> StateStore | None:
    """The head's store when the head is known, up and answering; None otherwise (no listing here)."""
    head = ctx.known_head()
    if head is None or head.status != UP:
        return None
    try:
        return await ctx.store(head)
    except STORE_ERRORS:
        return None


def node_record(n: NodeRef, beat: float | None = None) -> NodeRecord:
    """A node's row in the store's node table, as the controller mirrors it from a listing."""
    return NodeRecord(
        n.node_id,
        n.node_type,
        n.kind,
        n.address.internal_ip,
        n.status,
        n.seq,
        beat,
        external_ip=n.address.external_ip or "",
        launch_hash=n.tags.get(T.LAUNCH_HASH, ""),
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
