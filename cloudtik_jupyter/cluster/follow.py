"""Following a cluster: one long-lived subscription to the head's store per watcher, heartbeats coalesced.

Every write to the store publishes a change (state/changes.py), every heartbeat too: a thousand nodes
beating once a second are a thousand changes a second. A watcher (`watch_status`: `Cluster.watch_async`,
so the notebook view, the side panel's stream and `status --watch`) or a waiter (`wait_for_workers`)
keeps ONE subscription for its whole life and looks again at most once per `head.heartbeat_interval`
(`Coalescer`), whatever the number of changes; the last change is always looked at.

While the head is up the provider is never listed here; when its store does not answer, a watcher's
listings are shared by every watcher of the cluster in the process and made at most once per
RELIST_UNREACHABLE (the status then says "head unreachable").
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from ..errors import Timeout
from ..providers import tags as T
from ..records.cluster import ClusterStatus
from ..state.changes import ChangeStream, ChangeSubscription
from ..state.records import ChangeKind
from ..state.store import StateStore
from .context import ClusterContext, NodeRef
from .readmodel import GARBAGE, STORE_ERRORS, UP, cluster_status, reachable_store, shown

RELIST_UNREACHABLE = 30.0  # seconds between a cluster's listings while its head is up but unreachable
STORE_RECHECK = 2.0  # a waiter re-reads the store this often even without a change (a missed message)
RECONNECT_PAUSE = 0.5  # after a lost subscription, before subscribing again (backoff, not synchronisation)


@dataclass
class Coalescer:
    """When a watcher looks next: never sooner than `interval` after its last look (whatever the number of
    heartbeats), as soon as that allows after a change, and every `period` without one (ages move on).
    A node's removal is the one change looked at at once: a killed worker leaves the view promptly."""

    interval: float
    period: float
    last: float | None = None  # when it last looked (monotonic)
    dirty: bool = True  # a change came since that look (or none was made yet)
    urgent: bool = False  # a node was removed since that look

    def changed(self, seen: Seen) -> None:
        if seen is not Seen.NOTHING:
            self.dirty = True
        if seen is Seen.REMOVAL:
            self.urgent = True

    def looked(self, now: float) -> None:
        self.last, self.dirty, self.urgent = now, False, False

    def next_look(self) -> float:
        if self.last is None or self.urgent:
            return -math.inf
        return self.last + (self.interval if self.dirty else max(self.period, self.interval))


class Seen(Enum):
    NOTHING = "nothing"
    CHANGE = "change"
    REMOVAL = "removal"  # a node left the table (terminated, lost): shown without waiting


Poll = Callable[[float], Awaitable[Seen]]  # wait up to `timeout` for a change


async def wait_for_look(
    coalescer: Coalescer, poll: Poll, clock: Callable[[], float] = time.monotonic, until: float = math.inf
) -> None:
    """Return when the coalescer says look (or at `until`); changes that come meanwhile are consumed."""
    while True:
        remaining = min(coalescer.next_look(), until) - clock()
        if remaining <= 0:
            return
        coalescer.changed(await poll(remaining))


class Follower:
    """One subscription to the store's change channel, kept across looks; opened again only when the
    store under it changed (a new head) or the connection broke."""

    def __init__(self, ctx: ClusterContext) -> None:
        self.ctx = ctx
        self._store: StateStore | None = None
        self._subscription: ChangeSubscription | None = None
        self._stream: ChangeStream | None = None
        self.opened = 0  # subscriptions opened so far (tests: one per watcher while the store stays up)

    async def _stream_now(self) -> ChangeStream | None:
        store = await reachable_store(self.ctx)
        if store is None:
            await self.close()
            return None
        if store is not self._store or self._stream is None:
            await self.close()
            subscription = store.subscribe()
            self._stream = await subscription.__aenter__()
            self._subscription, self._store = subscription, store
            self.opened += 1
        return self._stream

    async def open(self) -> None:
        """Subscribe now (before a first look, so a change made just after that look is not missed)."""
        with contextlib.suppress(*STORE_ERRORS, *GARBAGE):
            await self._stream_now()

    async def poll(self, timeout: float) -> Seen:
        """Wait up to `timeout` for a change; without a store, just the time (the caller's period)."""
        try:
            stream = await self._stream_now()
            if stream is None:
                await asyncio.sleep(timeout)  # the period of a view without a store, not synchronisation
                return Seen.NOTHING
            change = await stream.poll(timeout)
        except GARBAGE:
            return Seen.CHANGE  # something no version of cloudtik published: look at the store again
        except STORE_ERRORS:
            await self.close()
            await asyncio.sleep(min(timeout, RECONNECT_PAUSE))
            return Seen.CHANGE  # look again: the status will say what is reachable
        if change is None:
            return Seen.NOTHING
        return Seen.REMOVAL if change.kind == ChangeKind.NODE_REMOVED else Seen.CHANGE

    async def close(self) -> None:
        subscription = self._subscription
        self._subscription = self._stream = self._store = None
        if subscription is not None:
            with contextlib.suppress(*STORE_ERRORS):  # the connection may be gone already
                await subscription.__aexit__(None, None, None)


# (cluster, provider type) -> (when listed, the listing): shared by the watchers of one process.
_listings: dict[tuple[str, str], tuple[float, list[NodeRef]]] = {}
_in_flight: dict[tuple[str, str], asyncio.Task[list[NodeRef]]] = {}


def forget_listing(ctx: ClusterContext) -> None:
    """This process changed the cluster (terminated a node): the next look lists again."""
    _listings.pop((ctx.name, ctx.config.provider.type), None)


async def shared_listing(ctx: ClusterContext) -> list[NodeRef]:
    """A watcher's provider listing: fresh while the head is not up (being set up, or gone), shared and at
    most once per RELIST_UNREACHABLE while it is up but unreachable (the status says so)."""
    key = (ctx.name, ctx.config.provider.type)
    head = ctx.known_head()
    hold = RELIST_UNREACHABLE if head is not None and head.status == UP else 0.0
    cached = _listings.get(key)
    if cached is not None and time.monotonic() - cached[0] < hold:
        return cached[1]
    task = _in_flight.get(key)
    if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
        task = asyncio.ensure_future(ctx.nodes())
        _in_flight[key] = task
    nodes = await asyncio.shield(task)
    _listings[key] = (time.monotonic(), nodes)
    ctx.remember_head(next((n for n in nodes if n.kind == T.KIND_HEAD), None))
    return nodes


async def watch_status(
    ctx: ClusterContext, max_interval: float, exists: Callable[[], bool], follower: Follower | None = None
) -> AsyncIterator[ClusterStatus]:
    """The status now and after every (coalesced) change, until the cluster is gone."""
    follower = follower or Follower(ctx)
    coalescer = Coalescer(ctx.config.head.heartbeat_interval, max_interval)
    last: ClusterStatus | None = None
    try:
        await follower.open()
        while True:
            current = await cluster_status(ctx, lister=lambda: shared_listing(ctx))
            coalescer.looked(time.monotonic())
            if current != last:
                yield current
                last = current
            if not current.nodes and not exists():
                return
            await wait_for_look(coalescer, follower.poll)
    finally:
        await follower.close()


WorkerRow = tuple[str, str, str, str]  # node id, node type, status, launch hash


async def _store_workers(ctx: ClusterContext) -> list[WorkerRow] | None:
    """Workers as the store's node table has them; None when it cannot say (no store, not mirrored yet)."""
    store = await reachable_store(ctx)
    if store is None:
        return None
    try:
        records = shown(await store.nodes())
    except (*STORE_ERRORS, *GARBAGE):
        return None
    if not any(r.kind == T.KIND_HEAD for r in records):
        return None
    return [(r.node_id, r.node_type, r.status, r.launch_hash) for r in records if r.kind == T.KIND_WORKER]


async def wait_for_rows(
    ctx: ClusterContext,
    settled: Callable[[list[WorkerRow]], bool],
    *,
    timeout: float,
    what: str,
    provider_period: float = 0.5,
) -> None:
    """Until `settled(workers)`: re-read on the store's changes (coalesced), the provider only while the
    store cannot say (then every `provider_period`)."""
    head = ctx.known_head()
    if head is None or head.status != UP:
        await ctx.head()  # the head was set up since it was last listed here
    deadline = time.monotonic() + timeout
    follower = Follower(ctx)
    coalescer = Coalescer(min(ctx.config.head.heartbeat_interval, provider_period), STORE_RECHECK)
    try:
        await follower.open()
        while True:
            rows = await _store_workers(ctx)
            from_store = rows is not None
            if rows is None:
                nodes = await ctx.nodes()
                rows = [
                    (n.node_id, n.node_type, n.status, n.tags.get(T.LAUNCH_HASH, ""))
                    for n in nodes
                    if n.kind == T.KIND_WORKER
                ]
            if settled(rows):
                return
            now = time.monotonic()
            if now >= deadline:
                raise Timeout(f"timed out after {timeout:g}s waiting for {what}")
            coalescer.period = STORE_RECHECK if from_store else provider_period
            coalescer.looked(now)
            await wait_for_look(coalescer, follower.poll, until=deadline)
    finally:
        await follower.close()
