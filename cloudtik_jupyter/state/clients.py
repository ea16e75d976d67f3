"""Redis clients of the state store: few fast retries; TCP (optionally from a fixed source address) or a
Unix socket; the admin or a worker's restricted user (acl.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from .endpoints import RedisAddress


class _SourcedConnection(Connection):
    """A TCP connection from a given local address (a node reaching the head as itself)."""

    def __init__(self, *, source_address: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._source_address = source_address

    def _connection_arguments(self) -> Mapping[str, Any]:
        return {**super()._connection_arguments(), "local_addr": (self._source_address, 0)}


def redis_client(
    address: RedisAddress | Path,
    password: str,
    timeout: float,
    source_address: str | None = None,
    username: str | None = None,
) -> aioredis.Redis:
    # Few, fast retries: callers (the agent) own the backoff policy when the head is down.
    options: dict[str, Any] = {
        "username": username,
        "password": password,
        "decode_responses": True,
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1),
    }
    if isinstance(address, Path):
        return aioredis.Redis(unix_socket_path=str(address), **options)
    options.update(host=address.host, port=address.port)
    if source_address is None:
        return aioredis.Redis(**options)
    pool = aioredis.ConnectionPool(
        connection_class=_SourcedConnection, source_address=source_address, **options
    )
    return aioredis.Redis.from_pool(pool)
