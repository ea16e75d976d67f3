"""`%cloudtik` commands on nodes: exec, attach, upload, download (arguments and help: the grammar)."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from .cell_errors import CellError
from .dispatch import handles
from .magics import OutputLine, Post

if TYPE_CHECKING:
    from .magics import CloudtikMagics
    from .results import ExecResults


def print_output(prefix: bool):  # type: ignore[no-untyped-def]
    def show(line: OutputLine) -> None:
        out = sys.stderr if line.stream == "stderr" else sys.stdout
        out.write((f"[{line.node_id}] {line.text}" if prefix else line.text) + "\n")  # lines come bare
        out.flush()

    return show


@handles("exec")
def exec_(
    m: CloudtikMagics,
    body: str | None,
    *,
    cluster: str,
    command: str,
    node: str | None,
    all_nodes: bool,
    check: bool,
    quiet: bool,
) -> ExecResults:
    from .results import ExecResults

    script = body if body is not None else command
    c = m.cluster(cluster)

    def make(post: Post) -> Coroutine[Any, Any, list[Any]]:
        def on_output(node_id: str, stream: str, text: str) -> None:
            post(OutputLine(node_id, stream, text))

        return c.exec_async(script, node=node, all_nodes=all_nodes, on_output=on_output)

    results = ExecResults(
        m.run(make, what=f"exec on {c.name}", output=None if quiet else print_output(all_nodes))
    )
    if check and not results.ok:
        raise CellError(results.summary)
    return results


@handles("attach")
def attach(m: CloudtikMagics, body: str | None, *, cluster: str, node: str | None, quiet: bool) -> str | None:
    """A cell has no terminal: say what to run in one (File > New > Terminal in JupyterLab)."""
    c = m.cluster(cluster)
    program = ["cloudtik"] if shutil.which("cloudtik") else [sys.executable, "-m", "cloudtik_jupyter.cli"]
    words = [*program, "attach", c.name, *(["--node", node] if node else [])]
    home = os.environ.get("CLOUDTIK_HOME")
    command = (f"CLOUDTIK_HOME={shlex.quote(home)} " if home else "") + shlex.join(words)
    if quiet:
        return command
    print(f"attach needs a terminal: in a JupyterLab terminal (File > New > Terminal) run\n  {command}")
    return None


@handles("upload")
def upload(
    m: CloudtikMagics,
    body: str | None,
    *,
    cluster: str,
    local: str,
    remote: str,
    node: str | None,
    all_nodes: bool,
    quiet: bool,
) -> None:
    c = m.cluster(cluster)
    m.run(lambda _: c.upload_async(local, remote, node=node, all_nodes=all_nodes), what=f"upload to {c.name}")
    if not quiet:
        where = "every node" if all_nodes else (node or "the head")
        print(f"uploaded {local} to {remote} on {where} of {c.name}")


@handles("download")
def download(
    m: CloudtikMagics,
    body: str | None,
    *,
    cluster: str,
    remote: str,
    local: str,
    node: str | None,
    quiet: bool,
) -> None:
    c = m.cluster(cluster)
    m.run(lambda _: c.download_async(remote, local, node=node), what=f"download from {c.name}")
    if not quiet:
        print(f"downloaded {remote} from {node or 'the head'} of {c.name} to {local}")
