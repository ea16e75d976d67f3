"""A watcher's read of the change channel ends when its task is cancelled, even when the client library
swallows the cancellation as the read times out (seen on a loaded machine: a cancelled watcher read on for
its whole period, a minute)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from cloudtik_jupyter.state.changes import READ_SLICE, ChangeStream

pytestmark = pytest.mark.timeout(60)


class SwallowingPubSub:
    """get_message as redis-py's behaves when a cancellation lands on its read timeout: None, no error."""

    def __init__(self) -> None:
        self.reads: list[float] = []

    async def get_message(self, ignore_subscribe_messages: bool = False, timeout: float = 0.0) -> Any:
        self.reads.append(timeout)
        with contextlib.suppress(asyncio.CancelledError):  # swallowed: the cancel request stays pending
            await asyncio.sleep(timeout)
        return None


async def test_a_cancelled_poll_ends_within_one_read_slice() -> None:
    pubsub = SwallowingPubSub()
    stream = ChangeStream(pubsub)  # type: ignore[arg-type]
    task = asyncio.ensure_future(stream.poll(60.0))
    await asyncio.sleep(0.05)
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=READ_SLICE * 5)
    assert time.monotonic() - cancelled_at < READ_SLICE * 3
    assert all(t <= READ_SLICE for t in pubsub.reads)  # no single read waits longer than a slice


async def test_an_uncancelled_poll_waits_its_whole_timeout_in_slices() -> None:
    pubsub = SwallowingPubSub()
    started = time.monotonic()
    assert await ChangeStream(pubsub).poll(2.5) is None  # type: ignore[arg-type]
    assert time.monotonic() - started >= 2.5
    assert len(pubsub.reads) >= 3
