"""Time `up`/`down` of 1 head + 2 workers on `virtual`, `exec true` latency, and `true` on 20 workers.

Prints figures and their ratio to the targets (issue 3) and to CloudTik 1.6 / Ray 2.60 figures measured on a
machine like this one (../shared/reference/cloudtik-facts.md). Runs in a private CLOUDTIK_HOME.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import repo  # noqa: F401 -- the repository root on sys.path, for tests' helpers

ROOT = Path(__file__).resolve().parent.parent


def config(name: str, workers: int) -> dict[str, object]:
    return {
        "cluster_name": name,
        "provider": {"type": "virtual"},
        "head_node_type": "head",
        "available_node_types": {
            "head": {},
            "worker": {"min_workers": workers, "max_workers": max(workers, 1)},
        },
    }


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def row(label: str, value: float, unit: str, target: float | None = None, peer: str = "") -> None:
    ratio = f"  {value / target:5.2f}x of target {target:g}{unit}" if target else ""
    print(f"{label:<42} {value:9.3f} {unit}{ratio}{('  ' + peer) if peer else ''}")


def main() -> None:
    home = tempfile.mkdtemp(prefix="cloudtik-bench-")
    os.environ["CLOUDTIK_HOME"] = home
    from cloudtik_jupyter.api import Cluster
    from tests.virtual_nodes import teardown_virtual

    try:
        small = Cluster(config("bench", 2))
        t_up, _ = timed(small.up)
        t_exec_head = []
        t_exec_worker = []
        worker = small.status().workers[0].node_id
        small.exec("true")
        small.exec("true", node=worker)
        for _ in range(50):
            t_exec_head.append(timed(small.exec, "true")[0])
            t_exec_worker.append(timed(small.exec, "true", node=worker)[0])
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        cli = [sys.executable, "-m", "cloudtik_jupyter.cli"]
        t_cli_status = min(
            timed(subprocess.run, [*cli, "status", "bench"], env=env, capture_output=True, check=True)[0]
            for _ in range(3)
        )
        t_cli_exec = min(
            timed(subprocess.run, [*cli, "exec", "bench", "true"], env=env, capture_output=True, check=True)[
                0
            ]
            for _ in range(3)
        )
        t_down, _ = timed(small.down)

        big = Cluster(config("bench20", 20))
        t_up20, _ = timed(big.up)
        big.exec("true", all_nodes=True)
        t_all20 = statistics.median(timed(big.exec, "true", all_nodes=True)[0] for _ in range(5))
        t_down20, _ = timed(big.down)
    finally:
        teardown_virtual(Path(home))  # every node gone, the hypervisor stopped, nothing left running

    print(f"cloudtik_jupyter bench_up on {os.cpu_count()} cores (virtual provider, nothing to install)")
    row("up: head + 2 workers all up-to-date", t_up, "s", 3.0, "CloudTik 10.5 s, Ray 15.1 s")
    row("down: head + 2 workers, nothing left", t_down, "s", 1.5, "CloudTik 19 s, Ray 12 s")
    row("exec true on head (API, mean)", statistics.mean(t_exec_head) * 1000, "ms", 15)
    row("exec true on worker via jump (API, mean)", statistics.mean(t_exec_worker) * 1000, "ms", 25)
    row("CLI `cloudtik status` (best of 3)", t_cli_status, "s", 0.15, "CloudTik 0.43 s")
    row("CLI `cloudtik exec true` on head (best of 3)", t_cli_exec, "s", 0.15, "CloudTik 0.43 s, Ray 0.54 s")
    row("up: head + 20 workers", t_up20, "s")
    row("exec true on 21 nodes in parallel (median)", t_all20 * 1000, "ms")
    row("down: head + 20 workers", t_down20, "s")


if __name__ == "__main__":
    main()
