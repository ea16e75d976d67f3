"""`status` of a 1,000-node cluster read from the head's state store (the views' read model).

A real redis-server (2 shards) stands in for the head's store, filled as a running cluster leaves it: the
node table the controller mirrors, a minute of heartbeats (each node's 60-sample history ring, metrics,
processes) and 20 events. The client knows the head (as `up` leaves it), so a status read is store reads
only: no provider call. Prints the time of `cluster_status` (what `Cluster.status()`, CLI `status` in the
session process and every watcher's look cost) and of rendering it as text. Target (issue 15): <= 0.2 s.

    .venv/bin/python benchmarks/bench_status.py [--nodes 1000] [--reads 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from cloudtik_jupyter.cluster.context import ClusterContext, NodeRef
from cloudtik_jupyter.cluster.readmodel import cluster_status
from cloudtik_jupyter.config import load_config
from cloudtik_jupyter.jupyter.rendering import status_text
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.base import ListedNode, NodeAddress
from cloudtik_jupyter.state.records import Heartbeat, NodeMetrics, NodeRecord, ProcessRecord, ProcessStatus
from cloudtik_jupyter.state.redis_server import prepare_redis, start_redis_servers
from cloudtik_jupyter.state.store import HISTORY_LENGTH, StateStore


class NoProvider:
    """A status read from the store must not list the cloud: any call here is a failure."""

    cluster_name = "bench"

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"status called the provider ({name})")


class StoreContext(ClusterContext):
    def __init__(self, config: object, store: StateStore, home: Path) -> None:
        super().__init__(config, provider=NoProvider(), state_dir=home)  # type: ignore[arg-type]
        self.local = store

    async def store(self, head: NodeRef) -> StateStore:
        return self.local


async def fill(store: StateStore, nodes: int) -> ListedNode:
    ids = [f"vn-{i}" for i in range(1, nodes + 1)]
    await store.upsert_nodes(
        [
            NodeRecord(
                node_id,
                "head" if i == 1 else "worker",
                T.KIND_HEAD if i == 1 else T.KIND_WORKER,
                f"127.88.{i // 250}.{i % 250 + 1}",
                "up-to-date",
                i,
            )
            for i, node_id in enumerate(ids, start=1)
        ]
    )
    services = (
        ProcessRecord("redis", 100, ProcessStatus.RUNNING),
        ProcessRecord("agent", 101, ProcessStatus.RUNNING),
    )
    now = time.time()
    for k in range(HISTORY_LENGTH):  # a minute of heartbeats: full history rings
        await store.heartbeats(
            [
                Heartbeat(
                    node_id, services, NodeMetrics(random.uniform(0, 100), 1 << 30, 4 << 30), now - 60 + k
                )
                for node_id in ids
            ]
        )
    for k in range(20):
        await store.add_event("bench", f"event {k}")
    tags = {T.CLUSTER: "bench", T.NODE_KIND: T.KIND_HEAD, T.NODE_TYPE: "head", T.NODE_SEQ: "1"}
    return ListedNode("vn-1", {**tags, T.NODE_STATUS: "up-to-date"}, NodeAddress("127.88.0.2"))


async def main(nodes: int, reads: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ctj-bench-status-") as work:
        host = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(2, 250)}"
        servers = await start_redis_servers(prepare_redis(Path(work) / "redis", host, shards=2))
        try:
            config = load_config(
                {
                    "cluster_name": "bench",
                    "provider": {"type": "virtual"},
                    "head_node_type": "head",
                    "available_node_types": {
                        "head": {},
                        "worker": {"min_workers": nodes - 1, "max_workers": nodes - 1},
                    },
                },
                check_files=False,
            )
            async with StateStore.connect(servers.plan.endpoints) as store:
                head = await fill(store, nodes)
                ctx = StoreContext(config, store, Path(work) / "client")
                ctx.remember_head(head)
                first = time.perf_counter()
                status = await cluster_status(ctx)
                first = time.perf_counter() - first
                assert len(status.nodes) == nodes and status.source == "store", (
                    len(status.nodes),
                    status.error,
                )
                assert all(len(n.cpu_history) == HISTORY_LENGTH for n in status.nodes)
                times, renders = [], []
                for _ in range(reads):
                    started = time.perf_counter()
                    status = await cluster_status(ctx)
                    times.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    status_text(status)
                    renders.append(time.perf_counter() - started)
        finally:
            await servers.stop()
    load = os.getloadavg()[0]
    print(f"status of {nodes} nodes from the head's store (load average {load:.1f})")
    print(f"    first read:            {first * 1000:7.1f} ms")
    print(
        f"    read (median of {reads}):   {statistics.median(times) * 1000:7.1f} ms  (min {min(times) * 1000:.1f})"
    )
    print(f"    rendered as text:      {statistics.median(renders) * 1000:7.1f} ms")
    print(f"    target (issue 15): <= 200 ms: {statistics.median(times) * 1000:.0f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.nodes, args.reads))
