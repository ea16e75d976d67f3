"""`up` of head + 2 workers with Spark until the master lists 2 alive workers, versus the floor.

The floor, measured in the same run: the same processes started directly and as fast as possible (the head's
redis-servers, a Spark master, then 2 workers via spark-class with the very same service specs), no SSH, no
agents, no controller. The virtual provider's hypervisor (the stand-in for a cloud's API) runs before each
timed `up`; its cold start is printed apart. Target: ratio <= 1.3. Both runs use the warm JVM class-data archive (setup builds it
once per machine; the first `up` below warms it and is reported separately).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import repo  # noqa: F401 -- the repository root on sys.path, for tests' helpers

ROUNDS = 3


def alive(ui: str) -> int:
    try:
        with urllib.request.urlopen(f"{ui}/json/", timeout=2) as r:
            return sum(1 for w in json.load(r)["workers"] if w["state"] == "ALIVE")
    except (OSError, ValueError):  # not answering yet, or an HTML page while its JSON view starts
        return 0


def config(name: str) -> dict[str, Any]:
    return {
        "from": "virtual-spark",
        "cluster_name": name,
        "available_node_types": {"worker": {"min_workers": 2, "max_workers": 2}},
        "runtime": {"spark": {"history_server": False}},
    }


def time_up(name: str) -> float:
    from cloudtik_jupyter import paths
    from cloudtik_jupyter.api import Cluster
    from cloudtik_jupyter.providers.virtual.client import HypervisorClient
    from cloudtik_jupyter.waiting import wait_for_sync

    cluster = Cluster(config(name))
    # The virtual "cloud" is up before the clock starts, as a cloud's API is (the floor has none either);
    # its own cold start is printed apart.
    HypervisorClient(paths.home()).start()
    started = time.perf_counter()
    cluster.up(with_workers=False)
    ui = next(link.url for link in cluster.info().links if link.name == "Spark master UI")
    wait_for_sync(lambda: alive(ui) == 2, timeout=300, what="2 alive Spark workers", interval=0.05)
    elapsed = time.perf_counter() - started
    cluster.down()
    return elapsed


def floor(work: Path) -> float:
    from cloudtik_jupyter.config import load_config
    from cloudtik_jupyter.records.node import NodeInfo
    from cloudtik_jupyter.runtimes import enabled_runtimes
    from cloudtik_jupyter.runtimes.secret import ensure_secret
    from cloudtik_jupyter.state.redis_server import prepare_redis, start_redis_servers
    from cloudtik_jupyter.waiting import wait_for_sync

    block = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
    head, workers = f"{block}.1", [f"{block}.2", f"{block}.3"]
    ((runtime, spark),) = enabled_runtimes(load_config(config("floor")))
    procs: list[subprocess.Popen[bytes]] = []

    secret = ensure_secret(work / "runtime_secret")

    def spawn(ip: str, kind: str) -> None:
        node = NodeInfo("floor", ip, kind, kind, ip, head, work / ip, secret_file=secret)
        for spec in runtime.services(spark, node):
            (work / ip).mkdir(parents=True, exist_ok=True)
            procs.append(
                subprocess.Popen(
                    spec.argv,
                    env={**os.environ, **spec.env},
                    cwd=spec.cwd or work / ip,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    work.mkdir(parents=True, exist_ok=True)
    plan = prepare_redis(work / "redis", head, shards=2)
    started = time.perf_counter()
    servers = asyncio.run(start_redis_servers(plan))
    try:
        spawn(head, "head")
        ui = f"http://{head}:{spark.master_ui_port}"  # type: ignore[attr-defined]
        wait_for_sync(lambda: master_up(ui), timeout=120, what="the master UI", interval=0.05)
        for ip in workers:
            spawn(ip, "worker")
        wait_for_sync(lambda: alive(ui) == 2, timeout=300, what="2 alive Spark workers", interval=0.05)
        return time.perf_counter() - started
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        asyncio.run(servers.stop())


def cold_hypervisor() -> float:
    """How long starting the virtual provider's hypervisor takes (the `down` of the last cluster ends it)."""
    from cloudtik_jupyter import paths
    from cloudtik_jupyter.providers.virtual.client import HypervisorClient

    client = HypervisorClient(paths.home())
    client.shutdown()
    started = time.perf_counter()
    client.start()
    return time.perf_counter() - started


def master_up(ui: str) -> bool:
    try:
        with urllib.request.urlopen(f"{ui}/json/", timeout=2):
            return True
    except OSError:
        return False


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="ctj-bench-spark-"))
    os.environ["CLOUDTIK_HOME"] = str(home)
    from tests.virtual_nodes import teardown_virtual

    try:
        warm = time_up("warm")  # builds the JVM archive if this machine has none yet
        hypervisor = cold_hypervisor()
        ups: list[float] = []
        floors: list[float] = []
        for i in range(ROUNDS):  # interleaved: a load that comes and goes weighs on both alike
            ups.append(time_up(f"spark{i}"))
            floors.append(floor(home / f"floor{i}"))
    finally:
        teardown_virtual(home)
    best_up, best_floor = min(ups), min(floors)
    pairs = sorted(u / f for u, f in zip(ups, floors, strict=True))
    print("up (head + 2 workers, Spark) until the master lists 2 alive workers")
    print(f"  load average (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus")
    print(f"  first up on this machine (may build the JVM archive): {warm:6.2f} s")
    print(f"  the virtual hypervisor's cold start (before each up):  {hypervisor:6.2f} s")
    print(f"  cloudtik up, best of {ROUNDS}:                               {best_up:6.2f} s")
    print(f"  floor (same processes started directly), best of {ROUNDS}:   {best_floor:6.2f} s")
    print(f"  ratio of the bests {best_up / best_floor:.2f} (target <= 1.3)")
    print(f"  ratio per round (up / the floor right after it): {', '.join(f'{r:.2f}' for r in pairs)}")


if __name__ == "__main__":
    main()
