"""The client's view into the head's state store, through SSH port forwards to the head.

The store's addresses and password are fetched from the head once (on `up`) into the cluster's local
record (0600); each process then opens one forward per Redis server and keeps it with the context.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import paths
from ..errors import CloudtikError
from ..records.layout import NODE_STATE, REDIS_DIR, REDIS_ENDPOINTS_FILE, REDIS_PASSWORD_FILE
from .context import ClusterContext, NodeRef

if TYPE_CHECKING:
    from ..state.store import StateStore

REMOTE_REDIS = f"{NODE_STATE}/{REDIS_DIR}"


def redis_dir(ctx: ClusterContext) -> Path:
    return ctx.dir / REDIS_DIR


async def fetch_store_credentials(ctx: ClusterContext, head: NodeRef) -> None:
    """Copy the head's Redis endpoints and password into the local record (0600)."""
    local = paths.ensure_private_dir(redis_dir(ctx))
    target = ctx.target(head, None)
    for name in (REDIS_ENDPOINTS_FILE, REDIS_PASSWORD_FILE):
        await ctx.runner.download(target, f"{REMOTE_REDIS}/{name}", local / name)
        (local / name).chmod(0o600)


async def open_store(ctx: ClusterContext, head: NodeRef) -> tuple[StateStore, Callable[[], None]]:
    """A StateStore reached through SSH forwards to each Redis server on the head, and what closes the
    forwards. They listen on Unix sockets (0600) in a private directory, not on 127.0.0.1 ports other
    local users could reach."""
    from ..state.endpoints import RedisAddress, RedisEndpoints
    from ..state.store import StateStore

    local = redis_dir(ctx)
    if not (local / REDIS_ENDPOINTS_FILE).exists():
        raise CloudtikError(
            f"cluster {ctx.name!r} has no state store credentials here; run `cloudtik up` again"
        )
    endpoints = RedisEndpoints.load(local / REDIS_ENDPOINTS_FILE)
    password = endpoints.read_password(local / REDIS_PASSWORD_FILE)
    target = ctx.target(head, None)
    sockets = Path(tempfile.mkdtemp(prefix="ctj-rs-"))  # 0700; short, for AF_UNIX's 108 bytes
    atexit.register(shutil.rmtree, sockets, True)  # a CLI process exits without closing its clusters
    listeners: list[Any] = []

    def close() -> None:
        for listener in listeners:
            listener.close()
        shutil.rmtree(sockets, ignore_errors=True)

    async def forward(index: int, address: RedisAddress) -> Path:
        path = sockets / f"{index}.sock"
        listeners.append(await ctx.runner.forward_local_path(target, address.host, address.port, path))
        return path

    try:
        primary, *shards = await asyncio.gather(
            *(forward(i, a) for i, a in enumerate((endpoints.primary, *endpoints.shards)))
        )
    except BaseException:
        close()
        raise
    return StateStore.over_sockets(primary, shards, password, timeout=5.0), close
