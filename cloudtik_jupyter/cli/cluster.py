"""Cluster commands: up, down, status, info, scale, wait-for-ready, kill-node, monitor, head-ip, worker-ips,
list. Arguments and help are in the command grammar; these are the bodies.

CLUSTER is a config file or the name of a cluster known on this machine.
"""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

import click

from .build import handles

if TYPE_CHECKING:
    from rich.console import Console

    from ..api.cluster import Cluster
    from ..cluster.progress import ProgressSink


def console() -> Console:
    from rich.console import Console

    # Not a terminal (a pipe, CI, a notebook's !cloudtik): wide enough that tables don't wrap.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def cluster_of(source: str) -> Cluster:
    from ..api.pool import cluster

    return cluster(source)  # in the CLI session: its warm one (connections open), else a new one


def progress(quiet: bool) -> ProgressSink:
    from ..cluster.progress import ignore_progress
    from .render import ProgressPrinter

    return ignore_progress if quiet else ProgressPrinter(console())


def confirm(yes: bool, question: str) -> None:
    if not yes and sys.stdin.isatty():
        click.confirm(question, abort=True)


@handles("up")
def up(config: str, no_wait: bool, yes: bool, quiet: bool) -> None:
    from .render import status_table

    cluster = cluster_of(config)
    out = console()
    if not quiet:
        out.print(f"Bringing up cluster [bold]{cluster.name}[/] on [bold]{cluster.config.provider.type}[/]")
    cluster.up(progress=progress(quiet), with_workers=not no_wait)
    out.print(status_table(cluster.status()))
    click.echo(f"Cluster is up. Run commands: cloudtik exec {cluster.name} 'hostname'")
    click.echo(f"Stop it: cloudtik down {cluster.name}")


@handles("down")
def down(cluster: str, yes: bool, quiet: bool) -> None:
    c = cluster_of(cluster)
    confirm(yes, f"Terminate all nodes of cluster {c.name!r}?")
    c.down(progress=progress(quiet))


@handles("status")
def status(cluster: str, quiet: bool) -> None:
    from .render import status_table

    current = cluster_of(cluster).status()
    console().print(status_table(current))
    if current.error:
        click.secho(f"Error: {current.error}", fg="red", err=True)
        sys.exit(1)


@handles("info")
def info(cluster: str, quiet: bool) -> None:
    from .render import info_lines

    for line in info_lines(cluster_of(cluster).info()):
        click.echo(line)


@handles("scale")
def scale(cluster: str, workers: int, node_type: str | None, no_wait: bool, quiet: bool) -> None:
    cluster_of(cluster).scale(workers, node_type=node_type, wait=not no_wait, progress=progress(quiet))


@handles("wait-for-ready")
def wait_for_ready(cluster: str, timeout: float, quiet: bool) -> None:
    from .render import status_table

    ready = cluster_of(cluster).wait_for_ready(timeout=timeout, progress=progress(quiet))
    console().print(status_table(ready))


@handles("kill-node")
def kill_node(cluster: str, node: str | None, yes: bool, quiet: bool) -> None:
    c = cluster_of(cluster)
    confirm(yes, f"Terminate {node or 'a random worker'} of {c.name!r}?")
    click.echo(f"terminated {c.kill_node(node)}")


@handles("monitor")
def monitor(cluster: str, history: int, timeout: float | None, quiet: bool) -> None:
    import asyncio
    import time

    c = cluster_of(cluster)

    async def follow() -> None:
        async for event in c.events_async(history=history):
            stamp = time.strftime("%H:%M:%S", time.localtime(event.at))
            click.echo(f"{stamp} {event.kind:<20} {event.message}")

    # Following ends with --timeout or Ctrl-C: both are how a user stops it, not failures.
    with contextlib.suppress(asyncio.TimeoutError, KeyboardInterrupt):
        asyncio.run(asyncio.wait_for(follow(), timeout))


@handles("head-ip")
def head_ip(cluster: str, quiet: bool) -> None:
    click.echo(cluster_of(cluster).head_ip())


@handles("worker-ips")
def worker_ips(cluster: str, quiet: bool) -> None:
    for ip in cluster_of(cluster).worker_ips():
        click.echo(ip)


@handles("list")
def list_(quiet: bool) -> None:
    from ..api.cluster import Cluster

    clusters = Cluster.list()
    if not clusters:
        click.echo("no clusters")
    for c in clusters:
        click.echo(f"{c.name}\t{c.provider}\t{c.workspace}")
