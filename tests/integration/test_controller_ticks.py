"""The controller's incremental ticks against a real redis-server store (the nodes are dict entries: no node
is launched or set up here, there is no head to do it from).

`tests/unit/test_incremental_tick.py` proves an incremental tick decides as a full one; this checks the
wiring: settled workers are only counted, a change in the provider's listing still reaches the node
table, a silent worker is still retired and a scale-down still removes exactly the excess.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import pytest

from cloudtik_jupyter.cluster.context import ClusterContext
from cloudtik_jupyter.cluster.updater import plan_for
from cloudtik_jupyter.config import dump_config, load_config
from cloudtik_jupyter.config.schema import ClusterConfig
from cloudtik_jupyter.head.controller import Controller
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.base import ListedNode, NodeAddress, NodeSpec
from cloudtik_jupyter.state.records import Heartbeat, ProcessRecord, ProcessStatus
from cloudtik_jupyter.state.redis_server import prepare_redis
from cloudtik_jupyter.state.store import StateStore

from .test_state_store import RedisFixture, private_loopback

pytestmark = pytest.mark.integration
WORKERS = 40


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[RedisFixture]:
    fixture = RedisFixture(prepare_redis(tmp_path / "redis", private_loopback(), shards=2))
    await fixture.start()
    try:
        yield fixture
    finally:
        await fixture.stop()
        assert not [p.pid for p in fixture.started if p.is_running()], "redis-server left running"


class DictProvider:
    """Nodes as dict entries: what the controller lists, tags and terminates."""

    def __init__(self) -> None:
        self.tags: dict[str, dict[str, str]] = {}
        self.addresses: dict[str, NodeAddress] = {}

    def non_terminated_nodes(self, tags: Mapping[str, str]) -> list[str]:
        return [n for n, t in self.tags.items() if all(t.get(k) == v for k, v in tags.items())]

    def list_nodes(self, tags: Mapping[str, str]) -> list[ListedNode]:
        return [ListedNode(n, dict(self.tags[n]), self.addresses[n]) for n in self.non_terminated_nodes(tags)]

    def create_nodes(self, spec: NodeSpec, tags: Mapping[str, str], count: int) -> list[str]:
        ids = [f"dict-{len(self.tags) + i:04d}" for i in range(count)]
        for node_id in ids:
            self.tags[node_id] = dict(tags)
            self.addresses[node_id] = NodeAddress(f"127.211.0.{len(self.addresses) + 2}")
        return ids

    def terminate_nodes(self, ids: Sequence[str]) -> None:
        for node_id in ids:
            self.tags.pop(node_id, None)

    def node_tags(self, node_id: str) -> dict[str, str]:
        return dict(self.tags[node_id])

    def set_node_tags(self, node_id: str, tags: Mapping[str, str]) -> None:
        self.tags[node_id].update(tags)

    def address(self, node_id: str) -> NodeAddress:
        return self.addresses[node_id]


def controller_context(
    provider: DictProvider, tmp_path: Path, name: str, *, max_workers: int, **head: float
) -> tuple[ClusterConfig, ClusterContext]:
    """A config of one worker type (0..`max_workers`, no idle release, `head` settings) and a context on
    `provider` in `tmp_path`, its record written: what a controller under test runs from."""
    config = load_config(
        {
            "cluster_name": name,
            "provider": {"type": "virtual"},
            "head_node_type": "head",
            "available_node_types": {"head": {}, "worker": {"min_workers": 0, "max_workers": max_workers}},
            "idle_timeout_minutes": 0,
            "head": head,
        }
    )
    ctx = ClusterContext(config, provider=provider, state_dir=tmp_path)  # type: ignore[arg-type]
    ctx.config_file.write_text(dump_config(config))
    return config, ctx


def settled_workers(provider: DictProvider, cluster: str, worker_hash: str, seqs: range) -> list[str]:
    """Up-to-date workers of the current config, one per sequence id: what a settled cluster lists."""
    tags = {
        T.CLUSTER: cluster,
        T.NODE_KIND: T.KIND_WORKER,
        T.NODE_TYPE: "worker",
        T.NODE_STATUS: T.NodeStatus.UP_TO_DATE.value,
        T.LAUNCH_HASH: worker_hash,
    }
    return [provider.create_nodes(NodeSpec("worker"), {**tags, T.NODE_SEQ: str(seq)}, 1)[0] for seq in seqs]


async def beat(store: StateStore, ids: Sequence[str], ago: float = 0.0) -> None:
    busy = (ProcessRecord("spark-worker", 1000, ProcessStatus.RUNNING, cpu_percent=50.0),)
    await store.heartbeats([Heartbeat(i, busy, time=time.time() - ago) for i in ids])


async def test_incremental_ticks_count_settled_workers_and_still_act(
    servers: RedisFixture, tmp_path: Path
) -> None:
    provider = DictProvider()
    config, ctx = controller_context(provider, tmp_path, "ticks", max_workers=100)
    worker_hash = plan_for(config, T.KIND_WORKER).launch_hash
    ids = settled_workers(provider, "ticks", worker_hash, range(2, WORKERS + 2))
    async with servers.store() as store:
        await store.set_desired({"worker": WORKERS})
        controller = Controller(config, ctx, store, tmp_path)
        seen = controller.memory.seen
        split = seen.split
        settled_counts: list[dict[str, int]] = []

        def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
            views, settled = split(*args, **kwargs)
            settled_counts.append(settled)
            return views, settled

        seen.split = spy  # type: ignore[method-assign]

        await beat(store, ids)
        assert (await controller.tick()).empty  # the first tick views every worker
        assert {r.node_id for r in await store.nodes()} == set(ids)
        await beat(store, ids)
        assert (await controller.tick()).empty
        assert settled_counts[-1] == {"worker": WORKERS}  # nothing to look at: every worker only counted

        # A change in the listing reaches the node table.
        provider.addresses[ids[3]] = NodeAddress("127.211.9.9")
        await beat(store, ids)
        assert (await controller.tick()).empty
        assert (await store.node(ids[3])).address == "127.211.9.9"  # type: ignore[union-attr]

        # A worker silent after a recovery attempt is retired (and one is wanted in its place).
        await beat(store, ids)
        await beat(store, ids[5:6], ago=120.0)
        await store.add_update_try(ids[5])
        decision = await controller.tick()
        assert decision.terminate == {
            ids[5]: f"unreachable (no heartbeat for {120:.0f}s) after a recovery attempt"
        }
        assert decision.launch == {"worker": 1}  # not launched: no head here
        assert settled_counts[-1] == {"worker": WORKERS - 1}
        assert ids[5] not in provider.tags and await store.node(ids[5]) is None

        # A scale-down needs every view, to remove the right ones: the newest, here.
        await store.set_desired({"worker": WORKERS - 5})
        await beat(store, [i for i in ids if i != ids[5]])
        decision = await controller.tick()
        assert decision.terminate == dict.fromkeys(ids[-4:], "scaled down")
        assert sorted(provider.tags) == sorted(set(ids[:-4]) - {ids[5]})
        assert {r.node_id for r in await store.nodes()} == set(provider.tags)
        assert set(controller.memory.listed) == set(provider.tags)  # nothing kept of the nodes gone
