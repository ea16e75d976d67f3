"""The head's state store against real redis-server processes bound to a private 127.x address."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import stat
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError

from cloudtik_jupyter.errors import CloudtikError
from cloudtik_jupyter.state import redis_server
from cloudtik_jupyter.state.records import (
    ChangeKind,
    Heartbeat,
    MetricSample,
    NodeMetrics,
    NodeRecord,
    ProcessRecord,
    ProcessStatus,
)
from cloudtik_jupyter.state.redis_server import (
    RedisPlan,
    RedisServers,
    find_redis_server,
    prepare_redis,
    start_redis_servers,
)
from cloudtik_jupyter.state.store import HEARTBEATS, HISTORY_LENGTH, StateStore, node_key, shard_index
from cloudtik_jupyter.waiting import wait_for

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def private_loopback() -> str:
    """A random 127.x address of our own, away from 127.0.0.1 and other tests' blocks."""
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(2, 250)}"


class RedisFixture:
    """Owns every redis-server it starts (by PID) and can restart them like a head reboot."""

    def __init__(self, plan: RedisPlan) -> None:
        self.plan = plan
        self.servers: RedisServers | None = None
        self.started: list[psutil.Process] = []

    async def start(self) -> RedisServers:
        self.servers = await start_redis_servers(self.plan)
        self.started += [psutil.Process(p) for p in self.servers.pids]
        return self.servers

    async def stop(self) -> None:
        if self.servers is not None:
            await self.servers.stop()
            self.servers = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def store(self) -> StateStore:
        return StateStore.connect(self.plan.endpoints)


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisFixture]:
    plan = prepare_redis(tmp_path / "redis", private_loopback(), shards=2)
    fixture = RedisFixture(plan)
    await fixture.start()
    try:
        yield fixture
    finally:
        await fixture.stop()
        assert not [p.pid for p in fixture.started if p.is_running()], "redis-server left running"


@pytest.fixture
async def store(redis: RedisFixture) -> AsyncIterator[StateStore]:
    async with redis.store() as s:
        yield s


async def test_password_required_and_never_on_a_command_line(redis: RedisFixture) -> None:
    primary = redis.plan.endpoints.primary
    password = redis.plan.endpoints.read_password()
    assert len(password) >= 32

    for bad in (None, "not-the-password"):
        # No client-side retries: the refusal itself is what we check.
        client = aioredis.Redis(
            host=primary.host, port=primary.port, password=bad, retry=Retry(NoBackoff(), 0)
        )
        with pytest.raises(AuthenticationError):  # NOAUTH / WRONGPASS
            await client.ping()
        await client.aclose()

    cmdlines = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdlines.append(" ".join(proc.info["cmdline"] or []))
    assert not [c for c in cmdlines if password in c]
    assert any(f"{primary.host}:{primary.port}" in c for c in cmdlines)  # we did look at redis-server

    secret_files = [redis.plan.endpoints.password_file, *(s.config_file for s in redis.plan.servers)]
    for path in secret_files:
        assert path is not None
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


async def test_bound_only_to_the_private_address(redis: RedisFixture) -> None:
    assert redis.servers is not None
    host = redis.plan.endpoints.primary.host
    for server, pid in zip(redis.plan.servers, redis.servers.pids, strict=True):
        listening = [c.laddr for c in psutil.Process(pid).net_connections("inet") if c.status == "LISTEN"]
        assert listening and all(addr.ip == host for addr in listening), listening
        for other in ("127.0.0.1", "0.0.0.0"):
            with (
                pytest.raises(ConnectionRefusedError),
                socket.create_connection((other, server.address.port), 2),
            ):
                pass


async def test_sharding_spreads_nodes_stably(redis: RedisFixture, store: StateStore) -> None:
    ids = [f"node-{i}" for i in range(300)]
    counts = [0] * store.shard_count
    for node_id in ids:
        counts[store.shard_of(node_id)] += 1
    assert store.shard_count == 2 and min(counts) > 100, counts

    async with redis.store() as other:  # another client (process) places every node identically
        assert [other.shard_of(i) for i in ids] == [store.shard_of(i) for i in ids]
    await store.heartbeats([Heartbeat(i) for i in ids])
    for node_id in ids[:40]:
        await store.upsert_node(NodeRecord(node_id, "worker-type", "worker", "127.0.0.9", "up-to-date"))

    # The rows really live on the shard the hash names, and only there.
    password = redis.plan.endpoints.read_password()
    raw = [aioredis.Redis(host=a.host, port=a.port, password=password) for a in redis.plan.endpoints.shards]
    try:
        for node_id in ids[:40]:
            home = shard_index(node_id, 2)
            for index, client in enumerate(raw):
                assert bool(await client.exists(node_key(node_id))) == (index == home)
                assert (await client.zscore(HEARTBEATS, node_id) is not None) == (index == home)
    finally:
        for client in raw:
            await client.aclose()
    assert len(await store.nodes()) == 300


async def test_heartbeats_update_last_heartbeat(store: StateStore) -> None:
    record = NodeRecord("w-1", "worker", "worker", "127.0.0.9", "up-to-date", seq_id=2)
    await store.upsert_node(record)
    assert (await store.node("w-1")) == record  # no heartbeat yet

    procs = [ProcessRecord("spark-worker", 4242, ProcessStatus.RUNNING, 1, -9, 12.5, 1 << 28)]
    metrics = NodeMetrics(31.5, 6 << 30, 24 << 30, (0.5, 0.25, 0.125))
    assert await store.heartbeat("w-1", procs, metrics, now=1000.0) is True  # new to its shard
    assert (await store.node("w-1")) == replace(record, last_heartbeat=1000.0)
    assert await store.heartbeat("w-1", procs, metrics, now=1005.5) is False
    node = await store.node("w-1")
    assert node is not None and node.last_heartbeat == 1005.5
    assert await store.processes("w-1") == procs
    assert await store.metrics("w-1") == metrics

    await store.register_node(NodeRecord("w-1", "worker", "worker", "127.0.0.9", "running"))
    kept = await store.node("w-1")
    assert kept is not None and kept.status == "up-to-date" and kept.seq_id == 2  # agent can't clobber


async def test_each_node_keeps_a_short_ring_of_cpu_and_memory(store: StateStore) -> None:
    for i in range(HISTORY_LENGTH + 5):
        metrics = NodeMetrics(float(i), i << 20, 8 << 30, machine="m1")
        await store.heartbeat("w-1", metrics=metrics, now=1000.0 + i)
    await store.heartbeats(
        [Heartbeat("w-2", metrics=NodeMetrics(50.0, 1 << 30, 8 << 30), time=2000.0 + i) for i in range(3)]
    )
    rings = await store.histories(["w-1", "w-2", "never"])
    assert [s.cpu_percent for s in rings["w-1"]] == [float(i) for i in range(5, HISTORY_LENGTH + 5)]
    assert rings["w-1"][-1] == MetricSample(
        1000.0 + HISTORY_LENGTH + 4, HISTORY_LENGTH + 4.0, (HISTORY_LENGTH + 4) << 20
    )
    assert [s.time for s in rings["w-2"]] == [2000.0, 2001.0, 2002.0]
    assert rings["never"] == []
    assert (await store.metrics("w-1")) == NodeMetrics(
        float(HISTORY_LENGTH + 4), (HISTORY_LENGTH + 4) << 20, 8 << 30, machine="m1"
    )
    await store.remove_node("w-1")
    assert (await store.histories(["w-1"]))["w-1"] == []


async def test_lost_nodes_finds_a_node_whose_heartbeats_stopped(store: StateStore) -> None:
    await store.heartbeats([Heartbeat("alive"), Heartbeat("dies")], now=1000.0)
    await store.heartbeat("alive", now=1020.0)
    lost = await store.lost_nodes(timeout=10, now=1025.0)
    assert [n.node_id for n in lost] == ["dies"] and lost[0].last_heartbeat == 1000.0
    assert await store.lost_nodes(timeout=30, now=1025.0) == []
    # What the controller's silence watch reads: only the late ones, over every shard, cutoff excluded.
    await store.heartbeats([Heartbeat(f"many-{i}") for i in range(50)], now=1024.0)
    assert await store.heartbeats_before(1015.0) == {"dies": 1000.0}
    assert await store.heartbeats_before(1000.0) == {}
    assert await store.heartbeats_before(1024.5) == {
        "dies": 1000.0,
        "alive": 1020.0,
        **{f"many-{i}": 1024.0 for i in range(50)},
    }
    assert await store.heartbeats_before(1024.5) == await store.heartbeat_times()

    # In real time: a node that keeps beating is never lost, one that stopped soon is.
    await store.heartbeats([Heartbeat("live-rt"), Heartbeat("quiet-rt")])

    async def only_quiet_lost() -> bool:
        await store.heartbeat("live-rt")
        lost_ids = {n.node_id for n in await store.lost_nodes(timeout=0.3)}
        return "quiet-rt" in lost_ids and "live-rt" not in lost_ids

    assert await wait_for(only_quiet_lost, timeout=5, what="quiet-rt to be lost")


async def test_changes_are_published(redis: RedisFixture, store: StateStore) -> None:
    async with redis.store() as writer, store.subscribe() as changes:
        await writer.upsert_node(NodeRecord("n-7", "worker", "worker", "127.0.0.9", "setting-up"))
        change = await changes.next(timeout=5)
        assert (change.kind, change.node_ids, change.detail) == (ChangeKind.NODE, ("n-7",), "setting-up")

        await writer.heartbeat("n-7")
        assert (await changes.next(timeout=5)).kind == ChangeKind.HEARTBEAT

        await writer.add_event("node-lost", "n-7 missed heartbeats", "n-7")
        change = await changes.next(timeout=5)
        assert (change.kind, change.detail) == (ChangeKind.EVENT, "node-lost")

        await writer.remove_node("n-7")
        assert (await changes.next(timeout=5)).kind == ChangeKind.NODE_REMOVED
        assert await writer.node("n-7") is None
        assert await changes.poll(timeout=0.05) is None  # nothing else was published


async def test_seq_ids_unique_and_increasing_across_stores_and_restarts(redis: RedisFixture) -> None:
    async with redis.store() as a, redis.store() as b:

        async def take(store: StateStore) -> list[int]:
            return [await store.next_seq_id() for _ in range(50)]

        from_a, from_b = await asyncio.gather(take(a), take(b))
    assert from_a == sorted(from_a) and from_b == sorted(from_b)
    assert sorted(from_a + from_b) == list(range(1, 101))  # the head got 1

    await redis.restart()  # the primary persists its counter: ids are never reused
    async with redis.store() as c:
        assert await c.next_seq_id() == 101


async def test_events_are_capped_and_ordered(redis: RedisFixture) -> None:
    store = StateStore.connect(redis.plan.endpoints, max_events=5)
    try:
        for i in range(8):
            await store.add_event("test", f"message {i}", now=1000.0 + i)
        events = await store.events(limit=10)
        assert [e.message for e in events] == [f"message {i}" for i in range(3, 8)]
        assert [e.message for e in await store.events(limit=2)] == ["message 6", "message 7"]
    finally:
        await store.close()


async def test_no_shards_keeps_everything_on_the_primary(tmp_path: Path) -> None:
    plan = prepare_redis(tmp_path / "redis", private_loopback(), shards=0)
    servers = await start_redis_servers(plan)
    try:
        assert len(servers.pids) == 1
        async with StateStore.connect(plan.endpoints) as store:
            await store.heartbeat("solo", now=1.0)
            assert [n.node_id for n in await store.lost_nodes(timeout=1, now=10.0)] == ["solo"]
    finally:
        await servers.stop()
    assert not any(psutil.pid_exists(p) for p in servers.pids)


def test_missing_redis_server_names_the_install_script(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLOUDTIK_REDIS_SERVER", str(tmp_path / "nope"))
    with pytest.raises(CloudtikError, match="CLOUDTIK_REDIS_SERVER"):
        find_redis_server()
    monkeypatch.delenv("CLOUDTIK_REDIS_SERVER")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(redis_server, "_SEARCH_DIRS", (str(tmp_path),))
    with pytest.raises(CloudtikError, match=r"install-system-deps\.sh"):
        find_redis_server()


def test_install_script_is_a_no_op_when_redis_is_present() -> None:
    assert find_redis_server()
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-system-deps.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    assert result.returncode == 0, result.stderr
    assert "all system packages present" in result.stdout
