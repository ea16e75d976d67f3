"""`up` of head + 2 workers with one runtime until the runtime's own API reports 2 workers, versus the floor.

The floor, measured in the same run: the same daemons started directly and as fast as possible (the head's
redis-servers, the runtime's head services, then its worker services, from the very same service specs),
no SSH, no agents, no controller. Target: ratio <= 1.3 per runtime.

- dask: the scheduler lists 2 workers (``Client.scheduler_info``);
- ray: the GCS lists 3 alive nodes (head + 2 workers; the dashboard's state API);
- mlflow: there are no MLflow workers: the tracking server answers ``/health`` with the 2 workers up.

    python benchmarks/bench_runtime_up.py [dask] [ray] [mlflow]      # default: all three
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import repo  # noqa: F401 -- the repository root on sys.path, for tests' helpers

RUNTIMES = ("dask", "mlflow", "ray")
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "RAY_USAGE_STATS_ENABLED": "0"}


def config(runtime: str, name: str) -> dict[str, Any]:
    return {
        "from": "virtual-small",
        "cluster_name": name,
        "available_node_types": {"worker": {"min_workers": 2, "max_workers": 2, "resources": {"CPU": 1}}},
        "runtime": {"types": [runtime]},
    }


def dask_workers(address: str) -> int:
    from distributed import Client

    try:
        with Client(address, timeout=5) as client:
            return len(client.scheduler_info()["workers"])
    except OSError:
        return 0


def ray_nodes(dashboard: str) -> int:
    try:
        from ray.util.state import list_nodes

        return sum(1 for n in list_nodes(address=dashboard, timeout=5) if n.state == "ALIVE")
    except Exception:  # not up yet
        return 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def ready_check(runtime: str, head: str) -> Callable[[], bool]:
    if runtime == "dask":
        return lambda: dask_workers(f"tcp://{head}:8786") == 2
    if runtime == "ray":
        return lambda: ray_nodes(f"http://{head}:8265") == 3
    return lambda: http_ok(f"http://{head}:5000/health")


def time_up(runtime: str, name: str) -> float:
    from cloudtik_jupyter.api import Cluster
    from cloudtik_jupyter.waiting import wait_for_sync

    cluster = Cluster(config(runtime, name))
    started = time.perf_counter()
    if runtime == "mlflow":
        cluster.up()  # "ready" = the server answers with both workers up
    else:
        cluster.up(with_workers=False)
    head = cluster.info().head_ip
    assert head is not None
    wait_for_sync(ready_check(runtime, head), timeout=600, what=f"{runtime} ready", interval=0.05)
    elapsed = time.perf_counter() - started
    cluster.down()
    return elapsed


def floor(runtime: str, work: Path) -> float:
    from cloudtik_jupyter.config import load_config
    from cloudtik_jupyter.records import node_env
    from cloudtik_jupyter.records.node import NodeInfo
    from cloudtik_jupyter.runtimes import enabled_runtimes
    from cloudtik_jupyter.runtimes.secret import ensure_secret
    from cloudtik_jupyter.state.redis_server import prepare_redis, start_redis_servers
    from cloudtik_jupyter.waiting import wait_for_sync

    block = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
    head, workers = f"{block}.1", [f"{block}.2", f"{block}.3"]
    ((plugin, section),) = enabled_runtimes(load_config(config(runtime, "floor")))
    procs: list[subprocess.Popen[bytes]] = []
    scratches: list[str] = []

    def spawn(ip: str, kind: str) -> None:
        resources = {"CPU": 1.0} if kind == "worker" else {}
        secret = ensure_secret(work / "runtime_secret")
        node = NodeInfo(
            "floor", ip, kind, kind, ip, head, work / ip / "runtime", resources, secret_file=secret
        )
        node.runtime_dir.mkdir(parents=True, exist_ok=True)
        # Each node's own short scratch dir, as a virtual node has (Ray's sessions must not be shared).
        scratch = tempfile.mkdtemp(prefix="ctj-floor-")
        scratches.append(scratch)
        os.environ[node_env.SCRATCH] = scratch
        try:
            specs = plugin.services(section, node)
        finally:
            del os.environ[node_env.SCRATCH]
        for spec in specs:
            procs.append(
                subprocess.Popen(
                    spec.argv,
                    env={**os.environ, **spec.env, "CLOUDTIK_NODE_IP": ip, node_env.SCRATCH: scratch},
                    cwd=spec.cwd or work / ip,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    plan = prepare_redis(work / "redis", head, shards=2)
    started = time.perf_counter()
    servers = asyncio.run(start_redis_servers(plan))
    try:
        spawn(head, "head")
        for ip in workers:  # they retry until the head's services answer
            spawn(ip, "worker")
        wait_for_sync(ready_check(runtime, head), timeout=600, what=f"{runtime} ready (floor)", interval=0.05)
        return time.perf_counter() - started
    finally:
        for p in procs:
            with_group(p, 15)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with_group(p, 9)
                p.wait()
        asyncio.run(servers.stop())
        for scratch in scratches:
            shutil.rmtree(scratch, ignore_errors=True)


def with_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def main() -> None:
    chosen = [r for r in sys.argv[1:] if r in RUNTIMES] or list(RUNTIMES)
    home = Path(tempfile.mkdtemp(prefix="ctj-bench-rt-"))
    os.environ["CLOUDTIK_HOME"] = str(home)
    os.environ.update(QUIET)
    from tests.virtual_nodes import teardown_virtual

    rows = []
    try:
        for runtime in chosen:
            ups = [time_up(runtime, f"{runtime}{i}") for i in range(2)]
            floors = [floor(runtime, home / f"floor-{runtime}{i}") for i in range(2)]
            rows.append((runtime, min(ups), min(floors)))
    finally:
        teardown_virtual(home)
    print("up (head + 2 workers) until the runtime reports 2 workers, vs the same daemons started directly")
    print(f"  {'runtime':<8}{'up (best of 2)':>16}{'floor (best of 2)':>20}{'ratio':>8}")
    for runtime, up, fl in rows:
        print(f"  {runtime:<8}{up:>14.2f} s{fl:>18.2f} s{up / fl:>8.2f}   (target <= 1.3)")


if __name__ == "__main__":
    main()
