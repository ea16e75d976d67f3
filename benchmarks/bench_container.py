"""`up` of the same cluster (head + 2 workers on `virtual`) in host mode and in container mode, in one run.

Container mode runs on a private Docker daemon started here (no registry: a skeleton image with the
machine's /usr, /etc and this Python environment bind-mounted read-only). Also times `exec true`,
`down`, and how long a killed worker container takes to be recovered by the head's controller.
Runs in a private CLOUDTIK_HOME; everything it starts is stopped at the end.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import repo  # noqa: F401 -- the repository root on sys.path, for tests' helpers

T = TypeVar("T")
FAST = {"controller_interval": 0.5, "heartbeat_interval": 0.5, "heartbeat_timeout": 3.0}


def config(name: str, image: str, docker: bool) -> dict[str, Any]:
    return {
        "cluster_name": name,
        "provider": {"type": "virtual"},
        "head_node_type": "head",
        "available_node_types": {"head": {}, "worker": {"min_workers": 2, "max_workers": 2}},
        "head": FAST,
        "idle_timeout_minutes": 0,
        "docker": {"enabled": docker, "image": image, "pull_before_run": False, "host_environment": True},
    }


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def row(label: str, host: float, container: float, unit: str) -> None:
    print(f"{label:<40} {host:9.3f} {unit}   {container:9.3f} {unit}   {container / host:5.2f}x")


def measure(name: str, image: str, docker: bool) -> dict[str, float]:
    from cloudtik_jupyter.api import Cluster

    cluster = Cluster(config(name, image, docker))
    t_up, _ = timed(cluster.up)
    worker = cluster.status().workers[0].node_id
    cluster.exec("true", node=worker)
    t_exec = statistics.mean(timed(lambda: cluster.exec("true"))[0] for _ in range(30))
    t_exec_worker = statistics.mean(timed(lambda: cluster.exec("true", node=worker))[0] for _ in range(30))
    figures = {"up": t_up, "exec": t_exec * 1000, "exec_worker": t_exec_worker * 1000}
    if docker:
        figures["recover"] = recovery_time(cluster, name, worker)
    figures["down"], _ = timed(cluster.down)
    return figures


def recovery_time(cluster: Any, name: str, worker: str) -> float:
    """Kill a worker's container; seconds until its node is up-to-date with a fresh heartbeat again."""
    import subprocess

    from cloudtik_jupyter.container.spec import container_name
    from cloudtik_jupyter.waiting import wait_for_sync

    start = time.perf_counter()
    subprocess.run(["docker", "kill", container_name(name, worker)], check=True, capture_output=True)

    def recovered() -> bool:
        if time.perf_counter() - start < FAST["heartbeat_timeout"]:
            return False  # the node still looks healthy until its heartbeat is overdue
        (w,) = [n for n in cluster.status().workers if n.node_id == worker]
        return bool(w.status == "up-to-date" and w.heartbeat_age is not None and w.heartbeat_age < 1)

    wait_for_sync(recovered, timeout=120, what="the killed container's node to recover")
    return time.perf_counter() - start


def main() -> int:
    home = tempfile.mkdtemp(prefix="cloudtik-bench-")
    daemon_dir = Path(tempfile.mkdtemp(prefix="ctd-"))
    os.environ["CLOUDTIK_HOME"] = home
    from cloudtik_jupyter.container.skeleton import build_skeleton_image
    from tests.container.dockerd import DockerUnavailable, start_private_dockerd
    from tests.virtual_nodes import teardown_virtual

    try:
        daemon = start_private_dockerd(daemon_dir)
    except DockerUnavailable as exc:
        print(f"bench_container: no Docker daemon can be started here: {exc}", file=sys.stderr)
        return 1
    os.environ["DOCKER_HOST"] = daemon.host  # before the hypervisor starts: nodes inherit it
    try:
        t_image, image = timed(lambda: build_skeleton_image("cloudtik-skeleton:bench", env=daemon.env()))
        host = measure("bench-host", "cloudtik-skeleton:bench", docker=False)
        boxed = measure("bench-box", "cloudtik-skeleton:bench", docker=True)
    finally:
        teardown_virtual(Path(home))
        leaked = daemon.stop()
        daemon.remove()
    print(
        f"cloudtik_jupyter bench_container on {os.cpu_count()} cores (virtual, dockerd {daemon.storage_driver})"
    )
    print(f"{'':<40} {'host mode':>12}   {'container mode':>14}   ratio")
    row("up: head + 2 workers all up-to-date", host["up"], boxed["up"], "s")
    row("exec true on head (API, mean)", host["exec"], boxed["exec"], "ms")
    row("exec true on a worker (API, mean)", host["exec_worker"], boxed["exec_worker"], "ms")
    row("down: head + 2 workers, nothing left", host["down"], boxed["down"], "s")
    print(f"{'skeleton image build (docker import)':<40} {t_image:9.3f} s   ({image})")
    print(f"{'killed worker container -> recovered':<40} {boxed['recover']:9.3f} s   (heartbeat timeout 3 s)")
    if leaked:
        print(f"daemon processes had to be killed: {leaked}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
