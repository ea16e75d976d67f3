"""SSH forwards from this Jupyter server to web UIs on a cluster's nodes: how the proxy reaches them.

A service listens on its node's private address, which a browser (or this server, on a cloud) cannot
reach; an SSH forward through the cluster's own pinned connection to the head can (workers are dialled
from the head, as on a cloud). Each forward listens on a Unix socket (0600) in a private directory (0700)
made for this server, never on a 127.0.0.1 port that every local user could connect to. One forward per
(cluster, node, port), opened on first use and kept; dropped when it stops working.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import aio
from ..errors import CloudtikError
from ..providers import tags as T
from .links import HEAD

if TYPE_CHECKING:
    import asyncssh

    from ..api.cluster import Cluster


class NoSuchNode(CloudtikError):
    """The proxy was asked for a node the cluster does not have (now)."""


@dataclass(frozen=True)
class NodeForward:
    cluster: str
    node: str
    remote_port: int
    path: Path
    listener: asyncssh.SSHListener


async def _open(cluster: Cluster, node: str, remote_port: int, path: Path) -> NodeForward:
    """Listen on `path` and forward to `remote_port` on the node's private address (API's private loop)."""
    ctx = cluster._ctx
    nodes = await ctx.nodes()
    head = next((n for n in nodes if n.kind == T.KIND_HEAD), None)
    if head is None:
        raise NoSuchNode(f"cluster {cluster.name!r} has no head node (is it up?)")
    target = head if node == HEAD else next((n for n in nodes if str(n.seq) == node), None)
    if target is None or (node != HEAD and target.kind != T.KIND_WORKER):
        raise NoSuchNode(f"cluster {cluster.name!r} has no worker with sequence id {node}")
    # Through the head's connection: the head dials the node's private address itself.
    listener = await ctx.runner.forward_local_path(
        ctx.target(head, None), target.address.internal_ip, remote_port, path
    )
    return NodeForward(cluster.name, node, remote_port, path, listener)


def _close(forward: NodeForward) -> None:
    def close() -> None:
        forward.listener.close()
        with contextlib.suppress(OSError):
            forward.path.unlink()

    # The listener belongs to the API's loop: close it there.
    aio.background_loop().call_soon_threadsafe(close)


class NodeForwards:
    """The server's open forwards, shared by every proxied request."""

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._open: dict[tuple[str, str, int], NodeForward] = {}
        self._locks: dict[tuple[str, str, int], asyncio.Lock] = {}
        self._count = 0

    @property
    def directory(self) -> Path:
        """The private directory the sockets live in (short, for AF_UNIX's 108 bytes)."""
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="ctj-fw-"))  # mkdtemp makes it 0700
            atexit.register(shutil.rmtree, self._dir, True)
        return self._dir

    async def socket(self, cluster: Cluster, node: str, remote_port: int) -> Path:
        """The Unix socket that reaches `remote_port` on `node` of `cluster` (opening the forward once)."""
        key = (cluster.name, node, remote_port)
        async with self._locks.setdefault(key, asyncio.Lock()):
            forward = self._open.get(key)
            if forward is None:
                self._count += 1
                path = self.directory / f"{self._count}.sock"
                forward = await asyncio.wrap_future(aio.submit(_open(cluster, node, remote_port, path)))
                self._open[key] = forward
            return forward.path

    def drop(self, cluster: str, node: str | None = None, remote_port: int | None = None) -> None:
        """Close the forwards to `cluster` (all, or one node's port); the next request reopens."""
        for key in [
            k for k in self._open if k[0] == cluster and node in (None, k[1]) and remote_port in (None, k[2])
        ]:
            _close(self._open.pop(key))

    def close(self) -> None:
        for forward in self._open.values():
            _close(forward)
        self._open.clear()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
