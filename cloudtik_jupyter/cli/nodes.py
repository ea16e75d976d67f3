"""Commands and files on nodes: exec, attach, upload, download (arguments and help: the grammar)."""

from __future__ import annotations

import sys

from .build import handles
from .cluster import cluster_of


def _printer(prefix: bool, quiet: bool):  # type: ignore[no-untyped-def]
    def on_output(node_id: str, stream: str, line: str) -> None:
        if quiet:
            return
        out = sys.stderr if stream == "stderr" else sys.stdout
        out.write(f"[{node_id}] {line}\n" if prefix else f"{line}\n")
        out.flush()

    return on_output


@handles("exec")
def exec_(cluster: str, command: str, node: str | None, all_nodes: bool, quiet: bool) -> None:
    results = cluster_of(cluster).exec(
        command, node=node, all_nodes=all_nodes, on_output=_printer(all_nodes, quiet)
    )
    sys.exit(max((r.exit_status for r in results), default=0))


@handles("attach")
def attach(cluster: str, node: str | None, quiet: bool) -> None:
    sys.exit(cluster_of(cluster).attach(node=node))


@handles("upload")
def upload(cluster: str, local: str, remote: str, node: str | None, all_nodes: bool, quiet: bool) -> None:
    cluster_of(cluster).upload(local, remote, node=node, all_nodes=all_nodes)


@handles("download")
def download(cluster: str, remote: str, local: str, node: str | None, quiet: bool) -> None:
    cluster_of(cluster).download(remote, local, node=node)
