"""Waiting for Compute Engine operations with our own operation clients.

The SDK's `insert()` helpers poll through clients built without our endpoint, so the providers call the
`*_unary` forms and wait here, on the clients made in `clients.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import ProviderError
from ..common.polling import poll
from .clients import GcpClients


def _basename(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[-1]


def _done(op: Any) -> bool:
    from google.cloud import compute_v1

    return bool(op.status == compute_v1.Operation.Status.DONE)


def _refresh(clients: GcpClients, op: Any) -> Any:
    if op.zone:
        return clients.zone_operations.wait(
            project=clients.project, zone=_basename(op.zone), operation=op.name
        )
    if op.region:
        return clients.region_operations.wait(
            project=clients.project, region=_basename(op.region), operation=op.name
        )
    return clients.global_operations.wait(project=clients.project, operation=op.name)


def wait_all(clients: GcpClients, ops: Sequence[Any], *, timeout: float, what: str) -> None:
    """Wait until every operation is DONE; an operation that failed raises `ProviderError`."""
    pending = list(ops)

    def settled() -> bool:
        pending[:] = [op if _done(op) else _refresh(clients, op) for op in pending]
        return all(_done(op) for op in pending)

    poll(settled, timeout=timeout, what=what)
    errors = [e.message for op in pending if op.error and op.error.errors for e in op.error.errors]
    if errors:
        raise ProviderError(f"gcp: {what}: {'; '.join(errors)}")


def wait(clients: GcpClients, op: Any, *, timeout: float, what: str) -> None:
    wait_all(clients, [op], timeout=timeout, what=what)
