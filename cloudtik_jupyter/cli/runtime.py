"""Runtime commands: submit (arguments and help: the grammar)."""

from __future__ import annotations

import sys

from .build import handles
from .cluster import cluster_of


@handles("submit")
def submit(cluster: str, job: str, job_args: tuple[str, ...], runtime: str | None, quiet: bool) -> None:
    def on_output(node_id: str, stream: str, line: str) -> None:
        if not quiet:
            (sys.stderr if stream == "stderr" else sys.stdout).write(f"{line}\n")

    sys.exit(cluster_of(cluster).submit(job, list(job_args), runtime=runtime, on_output=on_output))
