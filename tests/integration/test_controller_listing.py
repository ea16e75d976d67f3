"""When the controller lists the provider: every tick something could have changed, and only then.

A periodic tick (nothing woke the loop) after a settled one reuses that listing: on a cloud a listing call
saved per period, at 10,000 nodes most of a quiet tick. Random sequences of ticks (woken or periodic),
workers killed from outside or hung (they fall silent, as the silence watch sees), unannounced tag
changes (of a worker's address, of the head's status as a client sets it up again), scale requests that accept a loss, full reconciles falling due and heartbeats are run against a real redis-server store; after every tick:

- a woken tick, a tick after an unsettled one, a tick while a node is silent and a due full reconcile
  always list; a periodic tick after a settled one never does;
- after a listing tick the node table is exactly the provider's nodes, with their current addresses and
  the head's current status; a head that is not up-to-date keeps every tick listing;
- a killed worker is never in the node table after the next tick.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cloudtik_jupyter.cluster.updater import plan_for
from cloudtik_jupyter.head import controller as controller_module
from cloudtik_jupyter.head.controller import Controller
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.base import ListedNode, NodeAddress, NodeSpec
from cloudtik_jupyter.waiting import wait_for

from .test_controller_ticks import DictProvider, beat, controller_context, servers, settled_workers  # noqa: F401  (servers: a fixture)
from .test_state_store import RedisFixture

pytestmark = pytest.mark.integration
WORKERS = 6
INTERVAL = 1.0  # heartbeat_interval of the config below


class CountingProvider(DictProvider):
    def __init__(self) -> None:
        super().__init__()
        self.listings = 0

    def list_nodes(self, tags: Mapping[str, str]) -> list[ListedNode]:
        self.listings += 1
        return super().list_nodes(tags)


UP = T.NodeStatus.UP_TO_DATE.value


def add_head(provider: DictProvider, cluster: str) -> str:
    tags = {T.CLUSTER: cluster, T.NODE_KIND: T.KIND_HEAD, T.NODE_STATUS: UP, T.NODE_SEQ: "1"}
    return provider.create_nodes(NodeSpec("head"), tags, 1)[0]


def without_launching(controller: Controller) -> list[dict[str, int]]:
    """Launches are recorded, not made: nothing here could be set up (no node runs anything)."""
    asked: list[dict[str, int]] = []

    async def record(counts: dict[str, int], head: object) -> None:
        if counts:
            asked.append(dict(counts))

    controller._launch = record  # type: ignore[method-assign]
    return asked


STEPS = st.lists(
    st.one_of(
        st.just(("periodic",)),
        st.just(("woken",)),
        st.just(("beat",)),
        st.just(("full-due",)),
        st.tuples(st.just("kill"), st.integers(0, WORKERS - 1)),
        st.tuples(st.just("retag"), st.integers(0, WORKERS - 1)),
        st.tuples(st.just("hang"), st.integers(0, WORKERS - 1)),
        st.just(("scale-to-listed",)),
        st.sampled_from([("head", T.NodeStatus.SETTING_UP.value), ("head", UP)]),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
@example(steps=[("woken",), ("periodic",), ("hang", 1), ("periodic",)])  # silent, still listed
@example(steps=[("woken",), ("kill", 2), ("scale-to-listed",), ("periodic",)])  # gone, loss accepted
@example(steps=[("head", "setting-up"), ("woken",), ("head", UP), ("periodic",), ("periodic",)])
async def test_ticks_list_exactly_when_something_could_have_changed(
    servers: RedisFixture,  # noqa: F811
    tmp_path: Path,
    steps: list[tuple[object, ...]],
) -> None:
    provider = CountingProvider()
    config, ctx = controller_context(provider, tmp_path, "listing", max_workers=20, heartbeat_interval=INTERVAL)
    worker_hash = plan_for(config, T.KIND_WORKER).launch_hash
    head = add_head(provider, "listing")
    ids = settled_workers(provider, "listing", worker_hash, range(2, WORKERS + 2))
    async with servers.store() as store:
        for node_id in [r.node_id for r in await store.nodes()]:  # the previous example's table
            await store.remove_node(node_id)
        await store.set_desired({"worker": WORKERS})
        controller = Controller(config, ctx, store, tmp_path)
        without_launching(controller)
        killed: set[str] = set()
        hung: set[str] = set()  # still listed, no longer heartbeating

        async def beat_alive() -> None:
            await beat(store, [i for i in ids if i not in killed | hung])

        async def look_for_silence() -> None:  # what the silence watch does, 4 times an interval
            known = list(controller.memory.rows or {})
            controller.silence.newly_silent(await store.heartbeat_times(), known, time.time(), INTERVAL)

        await beat_alive()
        await controller.tick()
        settled_before = controller.memory.quiet_listing is not None
        for step in steps:
            kind = step[0]
            if kind == "beat":
                await beat_alive()
                continue
            if kind == "full-due":
                assert controller.memory.full_at is not None
                controller.memory.full_at -= controller_module.FULL_RECONCILE
                continue
            if kind == "head":  # a client setting the head up again re-tags it, unannounced
                provider.set_node_tags(head, {T.NODE_STATUS: str(step[1])})
                continue
            if kind == "scale-to-listed":  # the user accepts the loss (announced: a SCALE change)
                await store.set_desired({"worker": len(provider.tags) - 1})  # the head is not a worker
                continue
            if kind in ("kill", "retag", "hang"):
                index = int(step[1])  # type: ignore[call-overload]
                node_id = ids[index]
                if node_id in killed:
                    continue
                if kind == "retag":  # unannounced: seen at the next listing, not necessarily sooner
                    provider.addresses[node_id] = NodeAddress(f"127.212.{len(killed)}.{index + 2}")
                    continue
                (hung if kind == "hang" else killed).add(node_id)
                if kind == "kill":
                    provider.terminate_nodes([node_id])
                await beat(store, [node_id], ago=10 * INTERVAL)  # its last heartbeat, long ago
                await look_for_silence()
                continue
            woken = kind == "woken"
            assert controller.memory.full_at is not None
            full_due = time.monotonic() - controller.memory.full_at >= controller_module.FULL_RECONCILE
            must_list = woken or not settled_before or bool(controller.silence.suspected) or full_due
            before = provider.listings
            await controller.tick(relist=woken)
            listed = provider.listings > before
            assert listed == must_list, (kind, settled_before, controller.silence.suspected, full_due)
            rows = {r.node_id: r for r in await store.nodes()}
            assert not (killed & set(rows)), "a killed worker outlived the tick after its silence"
            if listed:
                assert set(rows) == set(provider.tags)
                assert rows[head].status == provider.tags[head][T.NODE_STATUS]
                for node_id, row in rows.items():
                    assert row.address == provider.addresses[node_id].internal_ip
            settled_before = controller.memory.quiet_listing is not None
            if len(provider.tags) - 1 < (await store.desired_state()).counts["worker"]:
                assert not settled_before  # a worker short of the request: the next tick lists again
            if listed and provider.tags[head][T.NODE_STATUS] != UP:
                assert not settled_before  # the head being set up: listed until it is up-to-date
            await look_for_silence()


async def test_the_loop_reuses_a_settled_listing_until_something_wakes_it(
    servers: RedisFixture,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The run loop: periodic ticks of a settled cluster list nothing; a removed node (NODE_REMOVED, as
    `kill-node` publishes) wakes a tick that lists and drops the row."""
    provider = CountingProvider()
    config, ctx = controller_context(provider, tmp_path, "loop", max_workers=20, controller_interval=0.1, heartbeat_interval=20.0, heartbeat_timeout=60.0)
    worker_hash = plan_for(config, T.KIND_WORKER).launch_hash
    ids = settled_workers(provider, "loop", worker_hash, range(2, 5))
    add_head(provider, "loop")
    async with servers.store() as store:
        await store.set_desired({"worker": 3})
        await beat(store, ids)  # fresh for the whole test: heartbeat_interval is 20 s
        controller = Controller(config, ctx, store, tmp_path)
        without_launching(controller)
        ticks = 0
        tick = controller.tick

        async def counted(*, relist: bool = True) -> object:
            nonlocal ticks
            ticks += 1
            return await tick(relist=relist)

        controller.tick = counted  # type: ignore[assignment,method-assign]
        stop = asyncio.Event()
        loop = asyncio.create_task(controller.run(stop))
        try:
            await wait_for(
                lambda: controller.memory.quiet_listing is not None, timeout=10, what="a settled tick"
            )
            listings, start = provider.listings, ticks
            await wait_for(lambda: ticks >= start + 10, timeout=20, what="ten more periodic ticks")
            assert provider.listings == listings, "a periodic tick of a settled cluster listed the provider"

            provider.terminate_nodes([ids[0]])
            await store.mark_terminated(ids[0])  # what `kill-node` does beside the provider call
            await wait_for(lambda: provider.listings > listings, timeout=10, what="the woken tick's listing")

            async def row_gone() -> bool:
                return await store.node(ids[0]) is None

            await wait_for(row_gone, timeout=10, what="the removed node's row to go")
        finally:
            stop.set()
            controller.wake.set()
            await asyncio.wait_for(loop, timeout=10)


class CollectorWatchingProvider(CountingProvider):
    """Notes whether the cyclic collector was on while the controller listed it."""

    def __init__(self) -> None:
        super().__init__()
        self.collector_on: list[bool] = []

    def list_nodes(self, tags: Mapping[str, str]) -> list[ListedNode]:
        self.collector_on.append(gc.isenabled())
        return super().list_nodes(tags)


async def test_a_tick_runs_without_the_cyclic_collector_and_gives_it_back(
    servers: RedisFixture,  # noqa: F811
    tmp_path: Path,
) -> None:
    """At 10,000 nodes a listing's records pushed the collector into a ~20 ms full pass in most ticks; a
    tick pauses it and turns it back on after (also when the tick fails), and leaves a pause it did not
    start alone."""
    provider = CollectorWatchingProvider()
    config, ctx = controller_context(provider, tmp_path, "gc", max_workers=4)
    ids = settled_workers(provider, "gc", plan_for(config, T.KIND_WORKER).launch_hash, range(2, 4))
    add_head(provider, "gc")
    assert gc.isenabled()
    async with servers.store() as store:
        await store.set_desired({"worker": 2})
        await beat(store, ids)
        controller = Controller(config, ctx, store, tmp_path)
        without_launching(controller)
        await controller.tick()
        assert provider.collector_on == [False], "the listing ran with the collector on"
        assert gc.isenabled(), "the tick left the collector off"

        def broken(tags: Mapping[str, str]) -> list[ListedNode]:
            raise OSError("the cloud is down")

        provider.list_nodes = broken  # type: ignore[method-assign]
        with pytest.raises(OSError):
            await controller.tick()
        assert gc.isenabled(), "a failed tick left the collector off"

        del provider.list_nodes  # the class's again
        gc.disable()  # somebody else's pause
        try:
            await controller.tick()
            assert not gc.isenabled(), "the tick ended a pause it did not start"
        finally:
            gc.enable()
        assert provider.collector_on == [False, False]
