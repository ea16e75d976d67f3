"""Heartbeat ingest of the state store against real redis-server processes on this machine.

Prints batched ingest (simulated nodes' heartbeats, as the head would absorb them) in node
heartbeats per second, and the latency of one node's heartbeat (what an agent waits for).

    .venv/bin/python benchmarks/bench_heartbeat.py [--nodes 2000] [--seconds 3] [--shards 2]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from cloudtik_jupyter.state.records import Heartbeat, NodeMetrics, ProcessRecord, ProcessStatus
from cloudtik_jupyter.state.redis_server import prepare_redis, start_redis_servers
from cloudtik_jupyter.state.store import StateStore


def simulated_heartbeat(node_id: str, seq: int) -> Heartbeat:
    processes = (
        ProcessRecord("agent", 1000 + seq, ProcessStatus.RUNNING, 0, None, 1.5, 60_000_000),
        ProcessRecord("spark-worker", 2000 + seq, ProcessStatus.RUNNING, 0, None, 12.5, 900_000_000),
    )
    metrics = NodeMetrics(23.4, 6_000_000_000, 24_000_000_000, (0.5, 0.4, 0.3))
    return Heartbeat(node_id, processes, metrics)


async def bench(nodes: int, seconds: float, shards: int, host: str, port: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cloudtik-bench-") as tmp:
        plan = prepare_redis(Path(tmp) / "redis", host, shards=shards, primary_port=port)
        servers = await start_redis_servers(plan)
        try:
            async with StateStore.connect(plan.endpoints) as store:
                await store.ping()
                batch = [simulated_heartbeat(f"node-{i:05d}", i) for i in range(nodes)]

                # Batched ingest: every simulated node heartbeats once per round.
                await store.heartbeats(batch)  # warm up connections
                rounds, start = 0, time.perf_counter()
                while time.perf_counter() - start < seconds:
                    await store.heartbeats(batch)
                    rounds += 1
                elapsed = time.perf_counter() - start
                rate = rounds * nodes / elapsed
                print(
                    f"batched ingest: {rate:,.0f} node heartbeats/s "
                    f"({nodes} nodes x {rounds} rounds in {elapsed:.2f}s, {store.shard_count} shards)"
                )

                # One agent's heartbeat: a pipeline to its shard + a publish on the primary.
                one = batch[random.randrange(nodes)]
                samples = []
                for _ in range(500):
                    t0 = time.perf_counter()
                    await store.heartbeat(one.node_id, one.processes, one.metrics)
                    samples.append(time.perf_counter() - t0)
                samples.sort()
                p50 = statistics.median(samples) * 1e3
                p99 = samples[int(len(samples) * 0.99)] * 1e3
                print(f"single-node heartbeat latency: p50 {p50:.3f} ms, p99 {p99:.3f} ms (500 samples)")

                t0 = time.perf_counter()
                rows = await store.nodes()
                print(f"nodes() over {len(rows)} nodes: {(time.perf_counter() - t0) * 1e3:.1f} ms")
                t0 = time.perf_counter()
                lost = await store.lost_nodes(timeout=30)
                took = (time.perf_counter() - t0) * 1e3
                print(f"lost_nodes(30s) over {nodes} nodes: {took:.1f} ms ({len(lost)} lost)")
        finally:
            await servers.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=2000, help="simulated nodes per batch")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--host", default="127.0.61.1", help="a loopback address to bind the servers to")
    parser.add_argument("--port", type=int, default=16789)
    args = parser.parse_args()
    asyncio.run(bench(args.nodes, args.seconds, args.shards, args.host, args.port))


if __name__ == "__main__":
    main()
