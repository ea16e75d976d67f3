"""`%cloudtik` cluster commands: up, down, status, info, scale, wait-for-ready, kill-node, monitor, head-ip,
worker-ips, list (arguments and help: the grammar)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from . import updater
from .cell_errors import CellError
from .dispatch import handles
from .magics import OutputLine, Post
from .progress import CellProgress

if TYPE_CHECKING:
    from ..api.cluster import Cluster
    from ..config.schema import ClusterConfig
    from ..records.cluster import ClusterStatus
    from .magics import CloudtikMagics
    from .results import ClusterList
    from .view import ClusterView


def _config_source(m: CloudtikMagics, token: str) -> ClusterConfig | Mapping[str, Any] | str:
    from ..config.schema import ClusterConfig

    value = m.variable(token)
    return value if isinstance(value, ClusterConfig | Mapping) else token


@handles("up")
def up(
    m: CloudtikMagics, body: str | None, *, config: str | None, no_wait: bool, yes: bool, quiet: bool
) -> Cluster:
    from ..api.cluster import Cluster

    source: ClusterConfig | Mapping[str, Any] | str
    if body is not None:
        from ..config import load_config_text

        source = load_config_text(body)
    else:
        assert config is not None  # dispatch.check_body
        source = _config_source(m, config)
    cluster = Cluster(source)
    m.remember(cluster)
    progress = CellProgress(f"up {cluster.name}", live=m.live, quiet=quiet)
    m.run(
        lambda sink: cluster.up_async(progress=sink, with_workers=not no_wait),
        what=f"up {cluster.name}",
        progress=progress,
    )
    if no_wait:
        _workers_in_background(m, cluster)
    return cluster


def _workers_in_background(m: CloudtikMagics, cluster: Cluster) -> None:
    """`up --no-wait`: the head is ready; bring the workers up behind a live view."""
    from IPython.display import display

    from .. import aio
    from .view import ClusterView

    view = ClusterView(cluster)
    future = aio.submit(cluster.up_async(progress=view.progress_sink()))
    m.in_background(future)
    view.follow(future, "workers")
    display(view)


@handles("down")
def down(m: CloudtikMagics, body: str | None, *, cluster: str, yes: bool, quiet: bool) -> int:
    c = m.cluster(cluster)
    progress = CellProgress(f"down {c.name}", live=m.live, quiet=quiet)
    count = m.run(lambda sink: c.down_async(progress=sink), what=f"down {c.name}", progress=progress)
    m.forget(c.name)
    if "cloudtik_jupyter.jupyter.view" in sys.modules:  # views exist only if that module was imported
        from .view import cluster_gone

        cluster_gone(c.name)
        updater.pump()
    return count


@handles("status")
def status(
    m: CloudtikMagics, body: str | None, *, cluster: str, once: bool, view: bool, quiet: bool
) -> ClusterView | ClusterStatus:
    c = m.cluster(cluster)
    snapshot = m.run(lambda _: c.status_async(), what=f"status {c.name}")
    if once or not (m.live or view):
        return snapshot
    from .view import ClusterView

    return ClusterView(c, status=snapshot)


@handles("info")
def info(m: CloudtikMagics, body: str | None, *, cluster: str, quiet: bool) -> object:
    c = m.cluster(cluster)
    return m.run(lambda _: c.info_async(), what=f"info {c.name}")


@handles("scale")
def scale(
    m: CloudtikMagics,
    body: str | None,
    *,
    cluster: str,
    workers: int,
    node_type: str | None,
    no_wait: bool,
    quiet: bool,
) -> ClusterStatus:
    c = m.cluster(cluster)
    progress = CellProgress(f"scale {c.name} to {workers} worker(s)", live=m.live, quiet=quiet)
    m.run(
        lambda sink: c.scale_async(workers, node_type=node_type, wait=not no_wait, progress=sink),
        what=f"scale {c.name}",
        progress=progress,
    )
    return m.run(lambda _: c.status_async(), what=f"status {c.name}")


@handles("wait-for-ready")
def wait_for_ready(
    m: CloudtikMagics, body: str | None, *, cluster: str, timeout: float, quiet: bool
) -> ClusterStatus:
    c = m.cluster(cluster)
    progress = CellProgress(f"wait for {c.name}'s workers", live=m.live, quiet=quiet)
    return m.run(
        lambda sink: c.wait_for_ready_async(timeout=timeout, progress=sink),
        what=f"wait-for-ready {c.name}",
        progress=progress,
    )


@handles("kill-node")
def kill_node(
    m: CloudtikMagics, body: str | None, *, cluster: str, node: str | None, yes: bool, quiet: bool
) -> str:
    c = m.cluster(cluster)
    return m.run(lambda _: c.kill_node_async(node), what=f"kill-node on {c.name}")


@handles("monitor")
def monitor(
    m: CloudtikMagics, body: str | None, *, cluster: str, history: int, timeout: float | None, quiet: bool
) -> None:
    """Print events as they come until the stop button (or --timeout): stopping is how it ends."""
    import asyncio

    c = m.cluster(cluster)

    async def follow(post: Post) -> None:
        async def loop() -> None:
            async for event in c.events_async(history=history):
                stamp = time.strftime("%H:%M:%S", time.localtime(event.at))
                post(OutputLine(event.node_id or "", "stdout", f"{stamp} {event.kind:<20} {event.message}"))

        with contextlib.suppress(asyncio.TimeoutError):  # --timeout: followed long enough
            await asyncio.wait_for(loop(), timeout)

    def show(line: OutputLine) -> None:
        print(line.text, flush=True)

    try:
        m.run(follow, what=f"monitor {c.name}", output=None if quiet else show)
    except CellError:
        if not quiet:
            print(f"stopped following {c.name}'s events", flush=True)


@handles("head-ip")
def head_ip(m: CloudtikMagics, body: str | None, *, cluster: str, quiet: bool) -> str:
    c = m.cluster(cluster)
    return m.run(lambda _: c.head_ip_async(), what=f"head-ip of {c.name}")


@handles("worker-ips")
def worker_ips(m: CloudtikMagics, body: str | None, *, cluster: str, quiet: bool) -> list[str]:
    c = m.cluster(cluster)
    return m.run(lambda _: c.worker_ips_async(), what=f"worker-ips of {c.name}")


@handles("list")
def list_(m: CloudtikMagics, body: str | None, *, quiet: bool) -> ClusterList:
    from ..api.cluster import Cluster
    from .results import ClusterList

    return ClusterList(Cluster.list())
