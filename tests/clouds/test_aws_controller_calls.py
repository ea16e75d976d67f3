"""The head's controller against AWS (moto) and a real redis-server: what one tick costs in EC2 calls.

Every node is launched up-to-date and heartbeating, so a tick has nothing to do but look: its cloud
reads are one listing whatever the cluster's size, never a describe of one instance (counted with a
botocore event hook on the EC2 client the provider uses). Nothing connects to what moto hands out.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
from conftest import MotoAws

from cloudtik_jupyter.cluster.context import ClusterContext
from cloudtik_jupyter.cluster.updater import plan_for
from cloudtik_jupyter.config import dump_config, load_config
from cloudtik_jupyter.head.controller import Controller
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.aws.node_provider import AwsNodeProvider
from cloudtik_jupyter.providers.base import NodeSpec
from cloudtik_jupyter.state.records import Heartbeat, NodeMetrics, ProcessRecord, ProcessStatus
from cloudtik_jupyter.state.redis_server import prepare_redis, start_redis_servers
from cloudtik_jupyter.state.store import StateStore

WORKERS = 6


class Ec2Calls:
    def __init__(self, ec2: Any) -> None:
        self.calls: Counter[str] = Counter()
        ec2.meta.events.register("before-call.ec2", self._seen)

    def _seen(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "DescribeInstances":
            self.calls["describe one" if params.get("InstanceIds") else "listing"] += 1
        else:
            self.calls[model.name] += 1

    def take(self) -> Counter[str]:
        taken, self.calls = self.calls, Counter()
        return taken


class PerNodeReads:
    """The provider, noting each per-node read (`node_tags`, `address`): cached or not, none is wanted."""

    def __init__(self, inner: AwsNodeProvider) -> None:
        self.inner = inner
        self.seen: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name in ("node_tags", "address"):
            self.seen.append(name)
        return getattr(self.inner, name)


async def test_a_controller_tick_is_one_listing_and_no_per_node_call(aws: MotoAws, tmp_path: Path) -> None:
    c = aws.clients()
    aws.workspace("ws", clients=c).create()
    image = str(c.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])
    config = load_config(
        {
            "cluster_name": "etl",
            "workspace_name": "ws",
            "provider": {"type": "aws", "region": aws.region, "endpoint_url": aws.endpoint},
            "head_node_type": "head",
            "available_node_types": {
                "head": {"node_config": {"ImageId": image}},
                "worker": {"node_config": {"ImageId": image}, "min_workers": WORKERS, "max_workers": WORKERS},
            },
            "idle_timeout_minutes": 0,
        }
    )
    provider = AwsNodeProvider(config.provider, "etl", workspace_name="ws", clients=c)  # type: ignore[arg-type]
    state = tmp_path / "state"
    spy = PerNodeReads(provider)
    ctx = ClusterContext(config, provider=spy, state_dir=state)  # type: ignore[arg-type]
    state.mkdir()
    ctx.config_file.write_text(dump_config(config))
    spec = NodeSpec("worker", {"ImageId": image}, "spark", "ssh-ed25519 AAAA controller-calls")
    provider.create_nodes(spec, {T.NODE_KIND: T.KIND_HEAD, T.NODE_SEQ: "1"}, 1)
    worker_tags = {
        T.NODE_KIND: T.KIND_WORKER,
        T.NODE_TYPE: "worker",
        T.NODE_STATUS: T.NodeStatus.UP_TO_DATE.value,
        T.LAUNCH_HASH: plan_for(config, T.KIND_WORKER).launch_hash,
    }
    for seq in range(2, WORKERS + 2):
        provider.create_nodes(spec, {**worker_tags, T.NODE_SEQ: str(seq)}, 1)
    nodes = provider.non_terminated_nodes({})
    assert len(nodes) == WORKERS + 1

    host = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(2, 250)}"
    servers = await start_redis_servers(prepare_redis(tmp_path / "redis", host, shards=1))
    started = [psutil.Process(p) for p in servers.pids]
    calls = Ec2Calls(c.ec2)
    try:
        async with StateStore.connect(servers.plan.endpoints) as store:
            beats = [
                Heartbeat(
                    node_id,
                    (ProcessRecord("spark-worker", 1000, ProcessStatus.RUNNING),),
                    NodeMetrics(20.0, 2**30, 2**32),
                )
                for node_id in nodes
            ]
            controller = Controller(config, ctx, store, state)
            await store.heartbeats(beats)
            first = await controller.tick()  # adopts every node into the store
            assert first.empty, first
            first_calls = calls.take()
            steady: list[Counter[str]] = []
            for _ in range(3):
                await store.heartbeats(beats)
                assert (await controller.tick()).empty
                steady.append(calls.take())
    finally:
        await servers.stop()
        assert not [p.pid for p in started if p.is_running()], "redis-server left running"

    for tick in [first_calls, *steady]:
        assert tick["describe one"] == 0 and tick["listing"] == 1, tick  # one listing, never a read per node
    assert all(sum(tick.values()) == 1 for tick in steady), steady
    assert spy.seen == []
    # Adopting writes the cluster's identity (desired counts, seq high-water mark) into worker tags:
    # one write per worker, once (head/identity.py); reads stay one listing.
    assert set(first_calls) == {"listing", "CreateTags"}, first_calls
