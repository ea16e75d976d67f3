"""A `distributed.Client` in this process (a notebook, a script) connected to a cluster's scheduler."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client


def dask_client(address: str, *, timeout: float = 30.0, **options: Any) -> Client:
    """Connect to the scheduler at `address` (``tcp://head:8786``); `options` go to `distributed.Client`."""
    try:
        from distributed import Client
    except ImportError:
        from ...errors import CloudtikError

        raise CloudtikError("distributed is not installed here: pip install 'cloudtik_jupyter[dask]'") from None
    return Client(address, timeout=timeout, **options)
