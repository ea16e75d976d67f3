"""One controller tick over 10,000 simulated workers: an in-memory provider, a real redis-server store.

Prints the steady-state tick time (nothing to do: every worker up-to-date and heartbeating, every node
heartbeating between ticks) of the three kinds of tick: periodic (nothing woke it: the settled cluster's
last listing is reused and settled workers are only counted: what most ticks are), woken by an event
(the provider is listed again, still incremental), and the full reconcile the controller runs every
FULL_RECONCILE seconds (listed, every worker viewed); and the first tick (the controller adopting 10,000
nodes it has never seen). "Own work" leaves out the in-memory provider's listing. Target: <= 50 ms per
steady tick.
The machine's load average is printed too: on a shared machine the figures move with it.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from cloudtik_jupyter.cluster.context import ClusterContext
from cloudtik_jupyter.cluster.updater import plan_for
from cloudtik_jupyter.config import dump_config, load_config
from cloudtik_jupyter.head.controller import Controller
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.base import ListedNode, NodeAddress, NodeSpec
from cloudtik_jupyter.state.records import Heartbeat, NodeMetrics, ProcessRecord, ProcessStatus
from cloudtik_jupyter.state.redis_server import prepare_redis, start_redis_servers
from cloudtik_jupyter.state.store import StateStore

NODES = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000


class CollectorClock:
    """Wall time in the cyclic garbage collector: the controller defers it past its ticks, so it is
    printed apart to show it is paid, not gone."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started


class MemoryProvider:
    """A NodeProvider whose nodes are dict entries (for measuring the controller, not a cloud)."""

    def __init__(self, cluster_name: str) -> None:
        self.cluster_name = cluster_name
        self.tags: dict[str, dict[str, str]] = {}
        self.addresses: dict[str, NodeAddress] = {}
        self.listing_seconds = 0.0  # wall time spent in list_nodes: the cloud's share of a tick

    def non_terminated_nodes(self, tags: Mapping[str, str]) -> list[str]:
        items = tags.items()
        return [n for n, t in self.tags.items() if all(t.get(k) == v for k, v in items)]

    def list_nodes(self, tags: Mapping[str, str]) -> list[ListedNode]:
        started = time.perf_counter()
        listed = [
            ListedNode(n, dict(self.tags[n]), self.addresses[n]) for n in self.non_terminated_nodes(tags)
        ]
        self.listing_seconds += time.perf_counter() - started
        return listed

    def create_nodes(self, spec: NodeSpec, tags: Mapping[str, str], count: int) -> list[str]:
        ids = []
        for _ in range(count):
            node_id = f"mem-{len(self.tags):06d}"
            self.tags[node_id] = dict(tags)
            n = len(self.tags)
            self.addresses[node_id] = NodeAddress(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
            ids.append(node_id)
        return ids

    def terminate_nodes(self, ids: Sequence[str]) -> None:
        for i in ids:
            self.tags.pop(i, None)

    def node_tags(self, node_id: str) -> dict[str, str]:
        return self.tags[node_id]

    def set_node_tags(self, node_id: str, tags: Mapping[str, str]) -> None:
        self.tags[node_id].update(tags)

    def address(self, node_id: str) -> NodeAddress:
        return self.addresses[node_id]  # never connected to: the benchmark only plans


async def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="ctj-bench-controller-"))
    plan = prepare_redis(
        work / "redis", f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.9", shards=2
    )
    servers = await start_redis_servers(plan)
    try:
        config = load_config(
            {
                "cluster_name": "bench",
                "provider": {"type": "virtual"},
                "head_node_type": "head",
                "available_node_types": {"head": {}, "worker": {"min_workers": NODES, "max_workers": NODES}},
                "idle_timeout_minutes": 0,
            }
        )
        provider = MemoryProvider("bench")
        ctx = ClusterContext(config, provider=provider, state_dir=work)
        ctx.config_file.write_text(dump_config(config))
        worker_hash = plan_for(config, T.KIND_WORKER).launch_hash
        up = T.NodeStatus.UP_TO_DATE.value
        head_tags = {T.CLUSTER: "bench", T.NODE_KIND: "head", T.NODE_SEQ: "1", T.NODE_STATUS: up}
        provider.create_nodes(NodeSpec("head"), head_tags, 1)
        for seq in range(2, NODES + 2):
            provider.create_nodes(
                NodeSpec("worker"),
                {
                    T.CLUSTER: "bench",
                    T.NODE_KIND: T.KIND_WORKER,
                    T.NODE_TYPE: "worker",
                    T.NODE_STATUS: T.NodeStatus.UP_TO_DATE.value,
                    T.LAUNCH_HASH: worker_hash,
                    T.NODE_SEQ: str(seq),
                },
                1,
            )
        async with StateStore.connect(plan.endpoints) as store:
            beats = [
                Heartbeat(
                    node_id,
                    (ProcessRecord("spark-worker", 1000, ProcessStatus.RUNNING, cpu_percent=20.0),),
                    NodeMetrics(20.0, 2**30, 2**32),
                )
                for node_id in provider.tags
            ]
            controller = Controller(config, ctx, store, work)
            t0 = time.perf_counter()
            first = await controller.tick()
            first_tick = time.perf_counter() - t0
            assert first.empty, first
            kinds = ("woken", "periodic", "full")  # a periodic tick after a settled one: the common case
            samples: dict[str, list[float]] = {k: [] for k in kinds}
            cpu: dict[str, list[float]] = {k: [] for k in kinds}  # this process only: less load-dependent
            own: dict[str, list[float]] = {k: [] for k in kinds}  # the tick without the provider's listing
            collector = CollectorClock()
            in_ticks = 0.0
            for i in range(30):
                await store.heartbeats(beats)  # every node heartbeats between ticks
                kind = kinds[i % 3]
                if kind == "full":
                    controller.memory.full_at = None  # this tick views every worker
                provider.listing_seconds = 0.0
                t0, c0 = time.perf_counter(), time.process_time()
                # periodic: nothing woke the tick (it may reuse a settled listing); woken: an event did
                before = collector.seconds
                decision = await controller.tick(relist=kind != "periodic")
                samples[kind].append(time.perf_counter() - t0)
                in_ticks += collector.seconds - before
                own[kind].append(samples[kind][-1] - provider.listing_seconds)
                cpu[kind].append(time.process_time() - c0)
                assert decision.empty
    finally:
        await servers.stop()
        shutil.rmtree(work, ignore_errors=True)
        gc_per_tick = (collector.seconds / 30 * 1000, in_ticks / 30 * 1000)
    med = {k: statistics.median(v) * 1000 for k, v in samples.items()}
    med_own = {k: statistics.median(v) * 1000 for k, v in own.items()}
    med_cpu = {k: statistics.median(v) * 1000 for k, v in cpu.items()}
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"controller tick over {NODES:,} workers (in-memory provider, real redis-server, 2 shards)")
    print(f"  load average (1, 5, 15 min): {load} on {os.cpu_count()} cpus")
    print(f"  first tick (adopts every node into the store): {first_tick * 1000:8.1f} ms")
    labels = {
        "periodic": "steady tick, periodic (settled: listing reused)",
        "woken": "steady tick, woken by an event (lists)        ",
        "full": "steady tick, full reconcile (lists, views all)",
    }
    for kind in kinds:
        print(
            f"  {labels[kind]}, median of 10: {med[kind]:7.1f} ms   {med[kind] / 50:.2f}x of target 50 ms"
            f"   (own work {med_own[kind]:.1f} ms, CPU {med_cpu[kind]:.1f} ms)"
        )
    print(
        f"  cyclic garbage collection: {gc_per_tick[0]:.1f} ms per tick on average ({gc_per_tick[1]:.1f} ms inside the ticks:"
        " the controller pauses it during a tick, so it runs while the loop waits)"
    )


if __name__ == "__main__":
    asyncio.run(main())
