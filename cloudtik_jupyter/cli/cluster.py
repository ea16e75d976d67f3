"""Cluster commands: up, down, status, info, exec, attach, upload, download, head-ip, worker-ips, list.

CLUSTER is a config file or the name of a cluster known on this machine.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console

    from ..api.cluster import Cluster

CLUSTER = click.argument("cluster", metavar="CLUSTER")


def _console() -> Console:
    from rich.console import Console

    # Not a terminal (a pipe, CI, a notebook's !cloudtik): wide enough that tables don't wrap.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def _cluster(source: str) -> Cluster:
    from ..api.cluster import Cluster

    return Cluster(source)


@click.command()
@click.argument("config", metavar="CONFIG")
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation (for scripts).")
@click.option("--no-workers", is_flag=True, help="Return once the head is ready; don't wait for workers.")
def up(config: str, yes: bool, no_workers: bool) -> None:
    """Create or update a cluster from CONFIG (a YAML file). Re-running converges."""
    from .render import ProgressPrinter

    cluster = _cluster(config)
    console = _console()
    printer = ProgressPrinter(console)
    console.print(f"Bringing up cluster [bold]{cluster.name}[/] on [bold]{cluster.config.provider.type}[/]")
    cluster.up(progress=printer, with_workers=not no_workers)
    from .render import status_table

    console.print(status_table(cluster.status()))
    click.echo(f"Cluster is up. Run commands: cloudtik exec {cluster.name} 'hostname'")
    click.echo(f"Stop it: cloudtik down {cluster.name}")


@click.command()
@CLUSTER
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation.")
def down(cluster: str, yes: bool) -> None:
    """Terminate every node of CLUSTER."""
    c = _cluster(cluster)
    if not yes and sys.stdin.isatty():
        click.confirm(f"Terminate all nodes of cluster {c.name!r}?", abort=True)
    from .render import ProgressPrinter

    c.down(progress=ProgressPrinter(_console()))


@click.command()
@CLUSTER
def status(cluster: str) -> None:
    """Nodes of CLUSTER and their state; exits 1 when something needs repair (e.g. a half-dead head)."""
    from .render import status_table

    current = _cluster(cluster).status()
    console = _console()
    console.print(status_table(current))
    for problem in current.problems:
        console.print(f"[red]error: {problem}[/]", soft_wrap=True)
    if current.problems:
        sys.exit(1)


@click.command()
@CLUSTER
def info(cluster: str) -> None:
    """Addresses, service links and how to reach CLUSTER."""
    from .render import info_lines

    for line in info_lines(_cluster(cluster).info()):
        click.echo(line)


@click.command(name="exec")
@CLUSTER
@click.argument("command")
@click.option("--node", help="Node id, seq id, address or name (default: the head).")
@click.option("--all-nodes", is_flag=True, help="Run on every node in parallel.")
def exec_(cluster: str, command: str, node: str | None, all_nodes: bool) -> None:
    """Run COMMAND on a node of CLUSTER; exits with the command's status (the worst, with --all-nodes)."""
    c = _cluster(cluster)
    prefix = all_nodes

    def on_output(node_id: str, stream: str, line: str) -> None:
        out = sys.stderr if stream == "stderr" else sys.stdout
        out.write(f"[{node_id}] {line}\n" if prefix else f"{line}\n")
        out.flush()

    results = c.exec(command, node=node, all_nodes=all_nodes, on_output=on_output)
    sys.exit(max((r.exit_status for r in results), default=0))


@click.command()
@CLUSTER
@click.option("--node", help="Node id, seq id, address or name (default: the head).")
def attach(cluster: str, node: str | None) -> None:
    """Open an interactive shell on a node of CLUSTER."""
    sys.exit(_cluster(cluster).attach(node=node))


@click.command()
@CLUSTER
@click.argument("local", type=click.Path(exists=True))
@click.argument("remote")
@click.option("--node", help="Node id, seq id, address or name (default: the head).")
@click.option("--all-nodes", is_flag=True)
def upload(cluster: str, local: str, remote: str, node: str | None, all_nodes: bool) -> None:
    """Copy LOCAL (file or directory) to REMOTE on the head, a node or all nodes."""
    _cluster(cluster).upload(local, remote, node=node, all_nodes=all_nodes)


@click.command()
@CLUSTER
@click.argument("remote")
@click.argument("local", type=click.Path())
@click.option("--node", help="Node id, seq id, address or name (default: the head).")
def download(cluster: str, remote: str, local: str, node: str | None) -> None:
    """Copy REMOTE (file or directory) from a node to LOCAL."""
    _cluster(cluster).download(remote, local, node=node)


@click.command(name="head-ip")
@CLUSTER
def head_ip(cluster: str) -> None:
    """The head's public address."""
    click.echo(_cluster(cluster).head_ip())


@click.command(name="worker-ips")
@CLUSTER
def worker_ips(cluster: str) -> None:
    """The workers' private addresses, one per line."""
    for ip in _cluster(cluster).worker_ips():
        click.echo(ip)


@click.command(name="list")
def list_() -> None:
    """Clusters known on this machine."""
    from ..api.cluster import Cluster

    clusters = Cluster.list()
    if not clusters:
        click.echo("no clusters")
    for c in clusters:
        click.echo(f"{c.name}\t{c.provider}\t{c.workspace}")


@click.command()
@CLUSTER
@click.option("--workers", "-w", type=int, required=True, help="How many workers (within min/max).")
@click.option("--node-type", help="Worker type (default: the only one).")
@click.option("--no-wait", is_flag=True, help="Return once the head has the request.")
def scale(cluster: str, workers: int, node_type: str | None, no_wait: bool) -> None:
    """Scale CLUSTER's workers up or down; the head's controller does it."""
    from .render import ProgressPrinter

    _cluster(cluster).scale(
        workers, node_type=node_type, wait=not no_wait, progress=ProgressPrinter(_console())
    )


@click.command(name="wait-for-ready")
@CLUSTER
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds.")
def wait_for_ready(cluster: str, timeout: float) -> None:
    """Wait until every desired worker of CLUSTER is up-to-date."""
    from .render import status_table

    _console().print(status_table(_cluster(cluster).wait_for_ready(timeout=timeout)))


@click.command(name="kill-node")
@CLUSTER
@click.option("--node", help="Node id, seq id, address or name (default: a random worker).")
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation.")
def kill_node(cluster: str, node: str | None, yes: bool) -> None:
    """Terminate one node as a failing instance would (to try recovery)."""
    c = _cluster(cluster)
    if not yes and sys.stdin.isatty():
        click.confirm(f"Terminate {node or 'a random worker'} of {c.name!r}?", abort=True)
    click.echo(f"terminated {c.kill_node(node)}")


@click.command()
@CLUSTER
@click.option("--history", type=int, default=20, show_default=True, help="Past events to show first.")
def monitor(cluster: str, history: int) -> None:
    """Follow CLUSTER's controller and node events (Ctrl-C to stop)."""
    import asyncio
    import time

    c = _cluster(cluster)

    async def follow() -> None:
        async for event in c.events_async(history=history):
            stamp = time.strftime("%H:%M:%S", time.localtime(event.at))
            click.echo(f"{stamp} {event.kind:<20} {event.message}")

    asyncio.run(follow())


@click.command(context_settings={"ignore_unknown_options": True})
@CLUSTER
@click.argument("job", type=click.Path(exists=True, dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--runtime", help="Runtime to submit to (default: the first enabled one).")
def submit(cluster: str, job: str, args: tuple[str, ...], runtime: str | None) -> None:
    """Upload JOB to the head and submit it to CLUSTER's runtime (spark-submit for Spark)."""

    def on_output(node_id: str, stream: str, line: str) -> None:
        (sys.stderr if stream == "stderr" else sys.stdout).write(f"{line}\n")

    sys.exit(_cluster(cluster).submit(job, list(args), runtime=runtime, on_output=on_output))


COMMANDS = [
    up,
    down,
    status,
    info,
    exec_,
    attach,
    upload,
    download,
    head_ip,
    worker_ips,
    list_,
    scale,
    wait_for_ready,
    kill_node,
    monitor,
]
