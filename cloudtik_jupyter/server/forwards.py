"""SSH forwards from this machine to services on a cluster's head: how the proxy reaches their web UIs.

A service on the head listens on the head's private address, which a browser (or this server, on a cloud)
cannot reach; an SSH forward through the cluster's own pinned connection can. One forward per (cluster,
port), opened on first use and kept; dropped when it stops working (the head was replaced or went away).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import aio
from ..errors import CloudtikError

if TYPE_CHECKING:
    import asyncssh

    from ..api.cluster import Cluster


@dataclass(frozen=True)
class HeadForward:
    cluster: str
    head_id: str
    remote_port: int
    listener: asyncssh.SSHListener

    @property
    def local_port(self) -> int:
        return int(self.listener.get_port())


async def forward_to_head(cluster: Cluster, remote_port: int) -> HeadForward:
    """Listen on 127.0.0.1 (any free port) and forward to `remote_port` on the head's private address.

    Runs on the API's private loop, where the cluster's SSH connections live. A candidate for a public
    `Cluster.forward_async(port)`.
    """
    ctx = cluster._ctx
    head = await ctx.head()
    if head is None:
        raise CloudtikError(f"cluster {cluster.name!r} has no head node (is it up?)")
    listener = await ctx.runner.forward_local_port(
        ctx.target(head, None), head.address.internal_ip, remote_port
    )
    return HeadForward(cluster.name, head.node_id, remote_port, listener)


def _close_listener(forward: HeadForward) -> None:
    # The listener belongs to the API's loop: close it there.
    aio.background_loop().call_soon_threadsafe(forward.listener.close)


class HeadForwards:
    """The server's open forwards, shared by every proxied request."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, int], HeadForward] = {}
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    async def local_port(self, cluster: Cluster, remote_port: int) -> int:
        """The local port that reaches `remote_port` on `cluster`'s head (opening the forward once)."""
        key = (cluster.name, remote_port)
        async with self._locks.setdefault(key, asyncio.Lock()):
            forward = self._open.get(key)
            if forward is None:
                forward = await asyncio.wrap_future(aio.submit(forward_to_head(cluster, remote_port)))
                self._open[key] = forward
            return forward.local_port

    def drop(self, cluster: str, remote_port: int | None = None) -> None:
        """Close the forwards to `cluster` (one port, or all of them); the next request reopens."""
        for key in [k for k in self._open if k[0] == cluster and remote_port in (None, k[1])]:
            _close_listener(self._open.pop(key))

    def close(self) -> None:
        for forward in self._open.values():
            _close_listener(forward)
        self._open.clear()
