"""The client's view into the head's state store, through SSH port forwards to the head.

The store's addresses and password are fetched from the head once (on `up`) into the cluster's local
record (0600); each process then opens one forward per Redis server and keeps it with the context.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import paths
from ..errors import CloudtikError
from .context import ClusterContext, NodeRef

if TYPE_CHECKING:
    from ..state.store import StateStore

REDIS_DIR = "redis"
REMOTE_REDIS = "~/.cloudtik/node/redis"


def redis_dir(ctx: ClusterContext) -> Path:
    return ctx.dir / REDIS_DIR


async def fetch_store_credentials(ctx: ClusterContext, head: NodeRef) -> None:
    """Copy the head's Redis endpoints and password into the local record (0600)."""
    local = paths.ensure_private_dir(redis_dir(ctx))
    target = ctx.target(head, None)
    for name in ("endpoints.json", "password"):
        await ctx.runner.download(target, f"{REMOTE_REDIS}/{name}", local / name)
        (local / name).chmod(0o600)


async def open_store(ctx: ClusterContext, head: NodeRef) -> StateStore:
    """A StateStore reached through forwards from 127.0.0.1 to each Redis server on the head."""
    from ..state.endpoints import RedisAddress, RedisEndpoints
    from ..state.store import StateStore

    local = redis_dir(ctx)
    if not (local / "endpoints.json").exists():
        raise CloudtikError(
            f"cluster {ctx.name!r} has no state store credentials here; run `cloudtik up` again"
        )
    endpoints = RedisEndpoints.load(local / "endpoints.json")
    target = ctx.target(head, None)
    listeners: list[Any] = []

    async def forward(address: RedisAddress) -> RedisAddress:
        listener = await ctx.runner.forward_local_port(target, address.host, address.port)
        listeners.append(listener)
        return RedisAddress("127.0.0.1", listener.get_port())

    primary, *shards = await asyncio.gather(*(forward(a) for a in (endpoints.primary, *endpoints.shards)))
    forwarded = RedisEndpoints(primary=primary, shards=tuple(shards), password_file=local / "password")
    store = StateStore.connect(forwarded, forwarded.read_password(), timeout=5.0)
    ctx.on_close(lambda: [listener.close() for listener in listeners])
    return store
