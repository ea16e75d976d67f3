"""A worker's Redis credential (its own restricted user) against real redis-servers: what a taken-over
worker could do with it. It keeps heartbeating; it cannot reconfigure, wipe or read the store, nor write
another node's record; the admin keeps everything, and the users survive a server restart."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from cloudtik_jupyter.state.acl import grant_node, node_user, revoke_node
from cloudtik_jupyter.state.records import NodeRecord, ProcessRecord, ProcessStatus
from cloudtik_jupyter.state.redis_server import RedisPlan, prepare_redis, start_redis_servers
from cloudtik_jupyter.state.store import StateStore, node_key

pytestmark = pytest.mark.integration


class Servers:
    def __init__(self, plan: RedisPlan) -> None:
        self.plan = plan
        self.pids: list[int] = []
        self.running: object | None = None

    async def start(self) -> None:
        servers = await start_redis_servers(self.plan)
        self.running = servers
        self.pids += servers.pids

    async def stop(self) -> None:
        if self.running is not None:
            await self.running.stop()  # type: ignore[attr-defined]
            self.running = None


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[Servers]:
    ip = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(2, 250)}"
    plan = prepare_redis(tmp_path / "redis", ip, shards=2)
    owned = Servers(plan)
    await owned.start()
    try:
        yield owned
    finally:
        await owned.stop()
        assert not [p for p in owned.pids if psutil.pid_exists(p)], "redis-server left running"


def raw(plan: RedisPlan, user: str | None, password: str, index: int = 0) -> aioredis.Redis:
    address = [plan.endpoints.primary, *plan.endpoints.shards][index]
    # No retries: a refused login is the answer, not a reason to try again with backoff.
    return aioredis.Redis(
        host=address.host, port=address.port, username=user, password=password, retry=Retry(NoBackoff(), 0)
    )


async def test_a_worker_credential_cannot_take_over_the_store(servers: Servers) -> None:
    plan = servers.plan
    async with StateStore.connect(plan.endpoints) as admin:
        mine = (await grant_node(admin, plan.base_dir, "w-1")).read_text().strip()
        other = (await grant_node(admin, plan.base_dir, "w-2")).read_text().strip()
        assert mine != other != plan.endpoints.read_password()
        await admin.upsert_node(NodeRecord("w-2", "worker", "worker", "127.0.0.9", "up-to-date", 3))

        # The worker's own work goes through: register, heartbeat, an event, a change notice.
        async with StateStore.connect(plan.endpoints, mine, username=node_user("w-1")) as worker:
            await worker.register_node(NodeRecord("w-1", "worker", "worker", "127.0.0.8", "running", 2))
            proc = ProcessRecord("spark-worker", 1234, ProcessStatus.RUNNING)
            await worker.heartbeat("w-1", [proc])
            await worker.add_event("service-started", "spark-worker: started", "w-1")
        assert (await admin.node("w-1")) is not None
        assert "w-1" in await admin.heartbeat_times()
        assert (await admin.events(1))[0].node_id == "w-1"

        # Everything else is refused, on the primary and on every shard.
        for index in range(1 + len(plan.endpoints.shards)):
            client = raw(plan, node_user("w-1"), mine, index)
            try:
                for command in (
                    ("CONFIG", "SET", "dir", "/tmp"),
                    ("CONFIG", "GET", "*"),
                    ("FLUSHALL",),
                    ("FLUSHDB",),
                    ("KEYS", "*"),
                    ("ACL", "LIST"),
                    ("EVAL", "return 1", "0"),
                    ("SHUTDOWN",),
                    ("HSET", node_key("w-2"), "status", "terminated"),
                    ("DEL", node_key("w-2")),
                    ("HGETALL", node_key("w-2")),
                    ("LTRIM", "cloudtik:events", "0", "0"),
                    ("LTRIM", "cloudtik:history:w-2", "0", "0"),
                    ("RPUSH", "cloudtik:history:w-2", "forged"),
                    ("HSET", "cloudtik:desired", "worker", "100000"),
                    ("INCR", "cloudtik:seq"),
                    ("SET", "cloudtik:anything", "x"),
                ):
                    with pytest.raises(NoPermissionError):
                        await client.execute_command(*command)
            finally:
                await client.aclose()
        assert (await admin.node("w-2")).status == "up-to-date"  # type: ignore[union-attr]

        # Its password is no other user's; the admin keeps full rights.
        with pytest.raises(AuthenticationError):
            await raw(plan, node_user("w-2"), mine).ping()
        with pytest.raises(AuthenticationError):
            await raw(plan, None, mine).ping()
        admin_raw = raw(plan, None, plan.endpoints.read_password())
        assert await admin_raw.execute_command("CONFIG", "GET", "maxmemory")
        await admin_raw.aclose()

        # Users survive a restart (they are in the servers' ACL file) ...
        await servers.stop()
        await servers.start()
        client = raw(plan, node_user("w-1"), mine)
        assert await client.ping()
        await client.aclose()

    # ... and a revoked worker is out at once.
    async with StateStore.connect(plan.endpoints) as admin:
        await revoke_node(admin, plan.base_dir, "w-1")
        with pytest.raises((AuthenticationError, ResponseError)):
            await raw(plan, node_user("w-1"), mine).ping()
        assert (plan.base_dir / "users.acl").stat().st_mode & 0o777 == 0o600
        assert mine not in (plan.base_dir / "users.acl").read_text()  # hashes only
