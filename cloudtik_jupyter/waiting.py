"""Wait for a condition with a deadline; never a bare sleep as synchronisation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import Timeout

T = TypeVar("T")


async def wait_for(
    condition: Callable[[], Any],  # returns a value or an awaitable of one; truthy ends the wait
    *,
    timeout: float,
    what: str,
    interval: float = 0.02,
    max_interval: float = 0.5,
) -> Any:
    """Poll `condition` until it returns a truthy value; back off up to `max_interval`.

    Raises `Timeout` naming `what` when the deadline passes.
    """
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        result = condition()
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 1.5, max_interval)


def wait_for_sync(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.02,
    max_interval: float = 0.5,
    factor: float = 1.5,
) -> T:
    """Synchronous twin of `wait_for` for code (and tests) outside an event loop."""
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        result = condition()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(min(delay, remaining))
        delay = min(delay * factor, max_interval)
