"""Time to heal after each fault, on a real virtual cluster (head + 2 workers) in a private CLOUDTIK_HOME.

    python benchmarks/bench_faults.py [RUNS]

Heartbeats every 0.5 s, heartbeat timeout 3 s, the default recovery timeout (10 s). Issue 13's targets:
- a killed agent, controller or Redis primary: healed <= 2 s after detection (the keeper / the agent
  notice at once: detection is the kill itself);
- a hung worker (SIGSTOP of its whole tree): replacement up-to-date <= heartbeat_timeout + 15 s;
- a head crash: `up` + every worker adopted (reporting to the new head) <= 3 s, with the workers kept.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import repo  # noqa: F401 -- the repository root on sys.path, for tests' helpers

HEARTBEAT_TIMEOUT = 3.0
POLL = 0.05


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    home = Path(tempfile.mkdtemp(prefix="ctj-bench-faults-"))
    os.environ["CLOUDTIK_HOME"] = str(home)
    os.environ["CLOUDTIK_VIRTUAL_IDLE_EXIT"] = "600"
    from cloudtik_jupyter.api import Cluster
    from cloudtik_jupyter.cluster.context import NodeRef
    from cloudtik_jupyter.providers.virtual import state
    from tests.virtual_nodes import teardown_virtual

    config = {
        "cluster_name": "bench-faults",
        "provider": {"type": "virtual"},
        "head_node_type": "head",
        "available_node_types": {"head": {}, "worker": {"min_workers": 2, "max_workers": 2}},
        "head": {
            "controller_interval": 1.0,
            "heartbeat_interval": 0.5,
            "heartbeat_timeout": HEARTBEAT_TIMEOUT,
        },
    }
    cluster = Cluster(config)

    def tree(node_id: str) -> list[psutil.Process]:
        record = state.read_record(home, node_id)
        assert record is not None
        root = psutil.Process(record.pid)
        return [root, *root.children(recursive=True)]

    def look() -> tuple[list[NodeRef], dict[str, float], dict[str, tuple[int | None, str]], list[str]] | None:
        """Provider nodes, last heartbeats, the head's services and recent event kinds (None: no store)."""

        async def read() -> tuple[
            list[NodeRef], dict[str, float], dict[str, tuple[int | None, str]], list[str]
        ]:
            nodes = await cluster._ctx.nodes()
            head = next(n for n in nodes if n.kind == "head")
            store = await cluster._ctx.store(head)
            beats = await store.heartbeat_times()
            services = {p.name: (p.pid, p.status.value) for p in await store.processes(head.node_id)}
            events = [f"{e.time} {e.kind}" for e in await store.events(30)]
            return nodes, beats, services, events

        try:
            return cluster._sync(read())
        except Exception:  # the store restarting: not healed yet
            return None

    def services() -> dict[str, tuple[int | None, str]]:
        seen = look()
        return seen[2] if seen else {}

    def healthy(workers: set[str] | None = None, since: float = 0.0) -> bool:
        """2 up-to-date workers (these, if given), every head service running, and every node heartbeated
        after `since` (wall clock)."""
        seen = look()
        if seen is None:
            return False
        nodes, beats, head_services, _ = seen
        ids = {n.node_id for n in nodes if n.kind == "worker"}
        return (
            len(ids) == 2
            and (workers is None or ids == workers)
            and all(n.status == "up-to-date" and beats.get(n.node_id, 0) > since for n in nodes)
            and all(status == "running" for _, status in head_services.values())
        )

    def restarted_after(t: float) -> bool:
        seen = look()
        return seen is not None and any(
            float(e.split()[0]) > t and e.endswith("controller-started") for e in seen[3]
        )

    def until(cond: Callable[[], bool], timeout: float = 120.0) -> None:
        start = time.perf_counter()
        while not cond():
            if time.perf_counter() - start > timeout:
                raise TimeoutError("the cluster did not heal")
            time.sleep(POLL)

    results: dict[str, list[float]] = {}
    try:
        cluster.up()
        for _ in range(runs):
            until(lambda: healthy(since=time.time() - 1.0))
            head = cluster.status().head
            assert head is not None
            workers = {w.node_id for w in cluster.status().workers}

            # a worker's agent, then the head's agent (its Redis and controller restart with it)
            for label, node in (("worker agent killed", sorted(workers)[0]), ("head agent killed", None)):
                (r,) = cluster.exec("cat ~/.cloudtik/node/agent/agent.pid", node=node, check=True)
                started, wall = time.perf_counter(), time.time()
                os.kill(int(r.stdout), signal.SIGKILL)
                until(lambda: healthy(workers, since=wall))  # noqa: B023
                results.setdefault(label, []).append(time.perf_counter() - started)

            for label, service in (
                ("controller killed", "controller"),
                ("redis primary killed", "redis-primary"),
            ):
                pid, _ = services()[service]
                assert pid is not None
                started, wall = time.perf_counter(), time.time()
                os.kill(pid, signal.SIGKILL)
                until(lambda: services().get(service, (pid, ""))[0] != pid)  # noqa: B023
                if service == "controller":  # the new one is at work: its start is in the event log
                    until(lambda: restarted_after(wall))  # noqa: B023
                until(lambda: healthy(workers, since=wall))  # noqa: B023
                results.setdefault(label, []).append(time.perf_counter() - started)

            victim = sorted(workers)[0]
            procs = tree(victim)
            started, wall = time.perf_counter(), time.time()
            for p in procs:
                p.send_signal(signal.SIGSTOP)
            try:

                def replaced(victim: str = victim, wall: float = wall) -> bool:
                    return victim not in {w.node_id for w in cluster.status().workers} and healthy(since=wall)

                until(replaced)
                results.setdefault("hung worker replaced", []).append(time.perf_counter() - started)
            finally:
                for p in procs:
                    with contextlib.suppress(psutil.Error):
                        p.send_signal(signal.SIGCONT)
            until(lambda: healthy(since=time.time() - 1.0))
            workers = {w.node_id for w in cluster.status().workers}
            head = cluster.status().head
            assert head is not None
            for p in tree(head.node_id):
                p.send_signal(signal.SIGKILL)
            until(lambda: cluster.status().head is None)
            started, wall = time.perf_counter(), time.time()
            Cluster("bench-faults").up()
            results.setdefault("head crash: up returned", []).append(time.perf_counter() - started)
            adopted = workers
            until(lambda: healthy(adopted, since=wall))  # noqa: B023  the same workers, on the new head
            results.setdefault("head crash: workers adopted", []).append(time.perf_counter() - started)
    finally:
        try:
            Cluster("bench-faults").down()
        finally:
            teardown_virtual(home)

    targets = {
        "worker agent killed": 2.0,
        "head agent killed": 2.0,
        "controller killed": 2.0,
        "redis primary killed": 2.0,
        "hung worker replaced": HEARTBEAT_TIMEOUT + 15.0,
        "head crash: workers adopted": 3.0,
    }
    print(
        f"time to heal (heartbeat 0.5 s, timeout {HEARTBEAT_TIMEOUT:g} s, recovery timeout 10 s), {runs} runs"
    )
    for label, samples in results.items():
        median = statistics.median(samples)
        target = targets.get(label)
        ratio = f"   {median / target:.2f}x of target {target:g} s" if target else ""
        runs_text = ", ".join(f"{s:.2f}" for s in samples)
        print(f"  {label:<28} median {median:6.2f} s  (runs: {runs_text}){ratio}")


if __name__ == "__main__":
    main()
