"""Change notifications: every write to the store publishes a small `Change` on one channel.

Views and the controller subscribe instead of polling::

    async with store.subscribe() as changes:
        async for change in changes: ...          # or: await changes.next(timeout=5)

The subscription is confirmed by the server before the ``async with`` body runs, so a change made
after entering it is never missed. If the primary goes away, iteration raises redis'
``ConnectionError``; subscribe again (and re-read the tables) once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType

from redis.asyncio.client import PubSub

from ..errors import Timeout
from .records import Change

CHANNEL = "cloudtik:changes"
READ_SLICE = 1.0  # seconds a single read waits: a pending cancellation is looked at this often
CLOSE_TIMEOUT = 2.0  # seconds an unsubscribe may take before its connection is abandoned


def _cancel_requested() -> bool:
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)  # Python 3.11+
    return bool(cancelling and cancelling())


class ChangeStream:
    """Async iterator over the changes published after the subscription started."""

    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub

    def __aiter__(self) -> ChangeStream:
        return self

    async def __anext__(self) -> Change:
        while True:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is not None and message["type"] == "message":
                return Change.from_json(message["data"])

    async def next(self, timeout: float) -> Change:
        """The next change, or `Timeout` after `timeout` seconds."""
        # get_message's own timeout, not asyncio.wait_for: cancelling a read mid-reply drops the connection.
        change = await self.poll(timeout)
        if change is None:
            raise Timeout(f"timed out after {timeout:g}s waiting for a state store change")
        return change

    async def poll(self, timeout: float = 0.0) -> Change | None:
        """The next change if one arrives within `timeout`, else None (for loops with a period)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            slice_ = min(remaining, READ_SLICE)
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=slice_)
            if _cancel_requested():
                # A read with a timeout can swallow a cancellation that lands as it times out (seen on a
                # loaded machine: a cancelled watcher reading on for its whole period); honour it here.
                raise asyncio.CancelledError
            if message is not None and message["type"] == "message":
                return Change.from_json(message["data"])
            if time.monotonic() >= deadline:
                return None


class ChangeSubscription:
    """``async with`` context: subscribes (and waits for the server's confirmation), then unsubscribes."""

    def __init__(self, pubsub: PubSub, *, timeout: float = 5.0) -> None:
        self._pubsub = pubsub
        self._timeout = timeout

    async def __aenter__(self) -> ChangeStream:
        await self._pubsub.subscribe(CHANNEL)
        deadline = time.monotonic() + self._timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                await self._pubsub.aclose()
                raise Timeout(f"timed out after {self._timeout:g}s waiting for the subscription to {CHANNEL}")
            message = await self._pubsub.get_message(timeout=remaining)
            if message is not None and message["type"] == "subscribe":
                return ChangeStream(self._pubsub)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Bounded: a watcher that is ending (cancelled, often) must end even if the connection does not
        # close in time on a loaded machine (seen once in CI: a cancelled watch still waiting after 10 s);
        # such a connection is left to the garbage collector.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._pubsub.aclose(), CLOSE_TIMEOUT)
