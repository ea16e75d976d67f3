"""The views' read model (cluster/readmodel.py, cluster/follow.py) on a real redis-server standing in for the
head's state store, nodes heartbeating into it, and a provider that counts its listings:

- N watchers, a one-shot status and a worker wait make no provider listing while the head is up;
- heartbeats are coalesced: a watcher updates at most once per heartbeat interval whatever the node count;
- a node a client terminated leaves every view at once (not on the controller's next look);
- the head unreachable: the cloud's view, said so, listed once for all watchers of the process;
- garbage in the store (rows, metrics, histories, events, desired counts, the change channel) crashes no view.

A whole cluster on `virtual` (the controller mirroring, a worker killed, scaled again) is
tests/integration/test_read_model_journey.py.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest

from cloudtik_jupyter.cluster.context import ClusterContext, NodeRef
from cloudtik_jupyter.cluster.follow import Follower, wait_for_rows, watch_status
from cloudtik_jupyter.cluster.readmodel import UNREACHABLE, cluster_status
from cloudtik_jupyter.config import load_config
from cloudtik_jupyter.errors import Timeout
from cloudtik_jupyter.jupyter.rendering import status_html, status_text
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.base import ListedNode, NodeAddress
from cloudtik_jupyter.records.cluster import ClusterStatus
from cloudtik_jupyter.state.changes import CHANNEL
from cloudtik_jupyter.state.desired import DESIRED
from cloudtik_jupyter.state.records import NodeMetrics, NodeRecord
from cloudtik_jupyter.state.redis_server import RedisServers, prepare_redis, start_redis_servers
from cloudtik_jupyter.state.store import EVENTS, METRICS, PROCESSES, StateStore, history_key, node_key
from cloudtik_jupyter.waiting import wait_for

pytestmark = pytest.mark.integration
INTERVAL = 0.25  # head.heartbeat_interval of these clusters


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[RedisServers]:
    host = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(2, 250)}"
    plan = prepare_redis(tmp_path / "redis", host, shards=2)
    started = await start_redis_servers(plan)
    procs = [psutil.Process(p) for p in started.pids]
    try:
        yield started
    finally:
        await started.stop()
        assert not [p.pid for p in procs if p.is_running()], "redis-server left running"


class CountingProvider:
    """The cloud's node list: counts every listing a view makes."""

    def __init__(self, name: str, nodes: list[ListedNode]) -> None:
        self.cluster_name = name
        self.nodes = nodes
        self.listings = 0

    def list_nodes(self, tags: Mapping[str, str]) -> list[ListedNode]:
        self.listings += 1
        return [n for n in self.nodes if all(n.tags.get(k) == v for k, v in tags.items())]

    def terminate_nodes(self, ids: Sequence[str]) -> None:
        self.nodes = [n for n in self.nodes if n.node_id not in ids]


class StoreContext(ClusterContext):
    """A client's context whose head's store is the local redis-server (no SSH forwards)."""

    def __init__(self, config: Any, provider: CountingProvider, servers: RedisServers, home: Path) -> None:
        super().__init__(config, provider=provider, state_dir=home)  # type: ignore[arg-type]
        self.local = StateStore.connect(servers.plan.endpoints)
        self.reachable = True

    async def store(self, head: NodeRef) -> StateStore:
        if not self.reachable:
            raise OSError("connection refused")
        return self.local


class Cluster:
    """A head and `workers` workers in the provider and (mirrored, as the controller does) in the store."""

    def __init__(self, servers: RedisServers, home: Path, workers: int, interval: float = INTERVAL) -> None:
        self.name = f"rm{random.randint(0, 10**6)}"
        self.config = load_config(
            {
                "cluster_name": self.name,
                "provider": {"type": "virtual"},
                "head_node_type": "head",
                "head": {"heartbeat_interval": interval, "heartbeat_timeout": interval * 20},
                "available_node_types": {
                    "head": {},
                    "worker": {"min_workers": workers, "max_workers": workers},
                },
            },
            check_files=False,
        )
        self.servers, self.home = servers, home
        self.nodes = [self.listed(1, T.KIND_HEAD)] + [
            self.listed(i, T.KIND_WORKER) for i in range(2, workers + 2)
        ]
        self.providers: list[CountingProvider] = []
        self.contexts: list[StoreContext] = []

    def listed(self, seq: int, kind: str) -> ListedNode:
        tags = {T.CLUSTER: self.name, T.NODE_KIND: kind, T.NODE_TYPE: kind, T.NODE_SEQ: str(seq)}
        tags[T.NODE_STATUS] = "up-to-date"
        return ListedNode(f"vn-{seq}", tags, NodeAddress(f"127.77.0.{seq % 250 + 1}"))

    def context(self) -> StoreContext:
        """A new client (a CLI process, a notebook view, the panel's server): the head known from `up`."""
        provider = CountingProvider(self.name, list(self.nodes))
        ctx = StoreContext(self.config, provider, self.servers, self.home / str(len(self.contexts)))
        ctx.remember_head(self.nodes[0])
        self.providers.append(provider)
        self.contexts.append(ctx)
        return ctx

    @property
    def listings(self) -> int:
        return sum(p.listings for p in self.providers)

    async def mirror(self, store: StateStore) -> None:
        await store.upsert_nodes(
            [
                NodeRecord(n.node_id, n.node_type, n.kind, n.address.internal_ip, n.status, n.seq)
                for n in self.nodes
            ]
        )

    async def close(self) -> None:
        for ctx in self.contexts:
            await ctx.local.close()


@pytest.fixture
async def admin(servers: RedisServers) -> AsyncIterator[StateStore]:
    async with StateStore.connect(servers.plan.endpoints) as store:
        yield store


@pytest.fixture
async def make_cluster(servers: RedisServers, tmp_path: Path) -> AsyncIterator[Any]:
    made: list[Cluster] = []

    def make(workers: int, interval: float = INTERVAL) -> Cluster:
        made.append(Cluster(servers, tmp_path, workers, interval))
        return made[-1]

    yield make
    for cluster in made:
        await cluster.close()


async def heartbeat(store: StateStore, nodes: Sequence[NodeRef], stop: asyncio.Event) -> int:
    """Every node beats on its own (one change each), as fast as the store takes them."""
    beats = 0
    while not stop.is_set():
        for n in nodes:
            await store.heartbeat(n.node_id, metrics=NodeMetrics(12.5, 1 << 30, 4 << 30))
            beats += 1
    return beats


class Watcher:
    def __init__(self, ctx: ClusterContext) -> None:
        self.follower = Follower(ctx)
        self.seen: list[tuple[float, ClusterStatus]] = []
        self.task = asyncio.ensure_future(self.run(ctx))

    async def run(self, ctx: ClusterContext) -> None:
        async for status in watch_status(ctx, 2.0, lambda: True, self.follower):
            self.seen.append((time.monotonic(), status))

    @property
    def last(self) -> ClusterStatus | None:
        return self.seen[-1][1] if self.seen else None

    async def stop(self) -> None:
        """Cancel the watch; a watch that does not end within 10 s fails the test (it would leak)."""
        self.task.cancel()
        done, _ = await asyncio.wait({self.task}, timeout=10)
        if not done:
            stack = "".join(f"{frame}\n" for frame in self.task.get_stack())
            self.task.cancel()  # once more, so the test's loop can close
            raise AssertionError(f"the watch ignored its cancellation; it was at:\n{stack}")


async def test_views_read_the_store_and_never_list_the_provider_while_the_head_is_up(
    admin: StateStore, make_cluster: Any
) -> None:
    cluster = make_cluster(workers=12)
    await cluster.mirror(admin)
    watchers = [Watcher(cluster.context()) for _ in range(3)]
    stop = asyncio.Event()
    beating = asyncio.ensure_future(heartbeat(admin, cluster.nodes, stop))
    try:
        await wait_for(
            lambda: all(w.last and all(n.heartbeat_age is not None for n in w.last.nodes) for w in watchers),
            timeout=10,
            what="every watcher to show the nodes' heartbeats",
        )
        once = await cluster_status(cluster.context())  # a CLI `status`
        want = {"worker": 12}
        await wait_for_rows(  # `wait-for-ready` / `scale --wait`
            cluster.context(),
            lambda rows: len([r for r in rows if r[2] == "up-to-date"]) == want["worker"],
            timeout=10,
            what="the workers",
        )
        shown = len(watchers[0].seen)
        await wait_for(lambda: len(watchers[0].seen) >= shown + 3, timeout=10, what="more updates")
    finally:
        stop.set()
        await beating
        for w in watchers:
            await w.stop()
    assert cluster.listings == 0, [p.listings for p in cluster.providers]  # not one, whoever looked
    assert once.source == "store" and len(once.nodes) == 13 and once.error is None, once.error
    assert [n.seq for n in once.nodes] == list(range(1, 14)) and once.nodes[0].cpu_percent == 12.5
    for w in watchers:
        assert w.last is not None and w.last.source == "store" and len(w.last.nodes) == 13
        assert w.follower.opened == 1  # one subscription for the whole watch


async def test_heartbeats_are_coalesced_whatever_the_node_count(admin: StateStore, make_cluster: Any) -> None:
    cluster = make_cluster(workers=200)
    await cluster.mirror(admin)
    watchers = [Watcher(cluster.context()) for _ in range(2)]
    stop = asyncio.Event()
    await wait_for(lambda: all(w.seen for w in watchers), timeout=10, what="the first statuses")
    started = time.monotonic()
    beating = asyncio.ensure_future(heartbeat(admin, cluster.nodes, stop))
    try:
        await wait_for(
            lambda: time.monotonic() - started >= 2.0, timeout=10, what="two seconds of heartbeats"
        )
    finally:
        stop.set()
        beats = await beating
        last_beat = time.time()
    await wait_for(  # the last state is delivered: a look after the last heartbeat
        lambda: all(w.last and w.last.nodes[-1].heartbeat_age is not None for w in watchers),
        timeout=10,
        what="the last heartbeats in every view",
    )
    for w in watchers:
        await w.stop()
    assert beats > 400, beats  # hundreds of changes a second (one per heartbeat)
    for w in watchers:
        times = [t for t, _ in w.seen]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= INTERVAL * 0.9, gaps  # never two updates within one heartbeat interval
        updates = len([t for t in times if t >= started])
        assert updates <= (times[-1] - started) / INTERVAL + 2, (updates, beats)
    assert last_beat  # (the beats ended before the final look)
    assert cluster.listings == 0


async def test_a_node_a_client_terminated_leaves_every_view_at_once(
    admin: StateStore, make_cluster: Any
) -> None:
    # A heartbeat interval of a minute: a watcher looks again a minute after its last look, unless a node
    # was removed (then at once). So the node leaving within the wait below is the removal not coalesced.
    cluster = make_cluster(workers=3, interval=60.0)
    await cluster.mirror(admin)
    watcher = Watcher(cluster.context())
    await wait_for(lambda: watcher.last and len(watcher.last.nodes) == 4, timeout=10, what="four nodes")
    victim = cluster.nodes[2].node_id
    await admin.heartbeat(cluster.nodes[1].node_id)  # a change that waits for the interval
    await admin.mark_terminated(victim)  # what `kill-node` / `Cluster.kill_node` do after the provider call
    await wait_for(
        lambda: watcher.last and victim not in [n.node_id for n in watcher.last.nodes],
        timeout=20,
        what="the killed node to leave the view",
    )
    assert len(watcher.seen) == 2  # the first look, and the one the removal asked for
    after = await cluster_status(cluster.context())
    with pytest.raises(Timeout):  # 3 workers wanted, 2 left: a waiter does not say ready
        await wait_for_rows(cluster.context(), lambda rows: len(rows) == 3, timeout=0.5, what="3 workers")
    # The controller's next look removes the row (the provider no longer lists it); then it is really gone.
    await admin.remove_node(victim)
    assert await admin.node(victim) is None
    await admin.mark_terminated(victim)  # a late second kill must not bring a stub row back
    assert await admin.node(victim) is None
    await watcher.stop()
    assert victim not in [n.node_id for n in after.nodes] and len(after.nodes) == 3
    assert cluster.listings == 0


async def test_a_change_right_after_a_watchers_first_look_is_not_missed(
    admin: StateStore, make_cluster: Any
) -> None:
    """The watcher is subscribed before it first looks: a node removed while the first status is still
    being shown (before the watcher's next poll) is seen at once, not a period later (a minute here)."""
    cluster = make_cluster(workers=2, interval=60.0)
    await cluster.mirror(admin)
    victim = cluster.nodes[2].node_id
    statuses = watch_status(cluster.context(), 60.0, lambda: True)
    first = await anext(statuses)
    assert victim in [n.node_id for n in first.nodes]
    await admin.mark_terminated(victim)  # the generator is paused at its first yield: nothing polls now
    try:
        second = await asyncio.wait_for(anext(statuses), timeout=20)
    finally:
        await statuses.aclose()
    assert victim not in [n.node_id for n in second.nodes]


async def test_head_unreachable_shows_the_clouds_view_listed_once_for_all_watchers(
    admin: StateStore, make_cluster: Any
) -> None:
    cluster = make_cluster(workers=2)
    await cluster.mirror(admin)
    contexts = [cluster.context() for _ in range(3)]
    for ctx in contexts:
        ctx.reachable = False
    once = await cluster_status(contexts[0])
    assert once.source == "provider" and once.error is not None and once.error.startswith(UNREACHABLE)
    assert "run `cloudtik up` to repair it" in once.error and len(once.nodes) == 3
    before = cluster.listings
    watchers = [Watcher(ctx) for ctx in contexts]
    await wait_for(lambda: all(len(w.seen) >= 1 for w in watchers), timeout=10, what="three watchers")
    started = time.monotonic()
    await wait_for(lambda: time.monotonic() - started > 2.0, timeout=10, what="two seconds of watching")
    for w in watchers:
        await w.stop()
        assert w.last is not None and w.last.error is not None and w.last.error.startswith(UNREACHABLE)
    assert cluster.listings - before <= 1  # shared, and held while the head is up but unreachable


async def test_garbage_in_the_store_crashes_no_view(
    admin: StateStore, make_cluster: Any, servers: RedisServers
) -> None:
    cluster = make_cluster(workers=2)
    await cluster.mirror(admin)
    for n in cluster.nodes:
        await admin.heartbeat(n.node_id, metrics=NodeMetrics(1.0, 1, 2))
    watcher = Watcher(cluster.context())
    await wait_for(lambda: watcher.last and len(watcher.last.nodes) == 3, timeout=10, what="three nodes")
    seen = len(watcher.seen)
    shard = admin._shard("vn-2")
    primary = admin._primary
    # What a hostile or broken writer could leave: partial rows, rows of no kind, undecodable reports.
    await admin._shard("vn-9").hset(
        node_key("vn-9"), mapping={"kind": "worker", "seq_id": "NaN", "status": 7}
    )
    await admin._shard("vn-8").hset(node_key("vn-8"), mapping={"node_type": "\x00" * 3})
    await admin._shard("vn-8").sadd("cloudtik:nodes", "vn-8", "vn-9")
    await admin._shard("vn-7").zadd("cloudtik:heartbeats", {"vn-7": time.time()})  # a stranger beating
    await shard.hset(METRICS, "vn-2", "{not json")
    await admin._shard("vn-3").hset(METRICS, "vn-3", '["a", "b", "c", [1, 2]]')
    await shard.rpush(history_key("vn-2"), "x,y", "1,2", "1.0,2.0,3")
    await admin._shard("vn-1").hset(PROCESSES, "vn-1", "[[1, 2]")
    await primary.rpush(EVENTS, "garbage", "[1]", '["t", "k", "m", null]', '[1.0, "k", "a real one", null]')
    await primary.hset(DESIRED, "worker", "lots")
    await primary.publish(CHANNEL, "not a change")
    await primary.publish(CHANNEL, '["node-removed", 5, null]')
    status = await cluster_status(cluster.context())
    await wait_for(lambda: len(watcher.seen) > seen, timeout=10, what="the watcher to carry on")
    await watcher.stop()
    ids = [n.node_id for n in status.nodes]
    assert ids[:3] == ["vn-1", "vn-2", "vn-3"] and "vn-7" not in ids and "vn-8" not in ids
    assert all(n.cpu_percent is None for n in status.nodes if n.node_id in ("vn-2", "vn-3"))
    assert [e.message for e in status.events][-1] == "a real one"
    assert status.workers_desired == 2  # the config's count, not "lots"
    for shown in (status, watcher.last):
        assert shown is not None
        status_text(shown)  # renders: nothing in it a front end cannot show
        status_html(shown)
    assert status.error is not None and "unreadable" in status.error  # the head's report, not a crash
    assert servers.pids  # (the store kept serving throughout)
