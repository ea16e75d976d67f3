"""A small server-sent-events reader for tests: the stream the side panel reads, read the same way."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Event:
    kind: str
    data: Any


async def events(response: httpx.Response) -> AsyncIterator[Event]:
    kind, data = "message", list[str]()
    async for line in response.aiter_lines():
        if line.startswith(":"):
            continue  # keepalive comment
        if not line:
            if data:
                yield Event(kind, json.loads("\n".join(data)))
            kind, data = "message", list[str]()
        elif line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])


class Stream:
    """Reads events in the background so a test can wait for the first one that matches."""

    def __init__(self, response: httpx.Response) -> None:
        self.seen: list[Event] = []
        self._new = asyncio.Condition()
        self._task = asyncio.ensure_future(self._read(response))

    async def _read(self, response: httpx.Response) -> None:
        async for event in events(response):
            async with self._new:
                self.seen.append(event)
                self._new.notify_all()

    def mark(self) -> int:
        """Where the stream is now: pass as `since` to wait only for what comes after."""
        return len(self.seen)

    async def wait(
        self, what: str, match: Callable[[Event], object], *, since: int = 0, timeout: float = 60.0
    ) -> Event:
        """The first event from `since` on (seen already or to come) that matches; fails after `timeout`."""

        def found() -> Event | None:
            return next((e for e in self.seen[since:] if match(e)), None)

        async def arrival() -> None:
            async with self._new:
                await self._new.wait_for(lambda: found() is not None or self._task.done())

        try:
            await asyncio.wait_for(arrival(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}") from None
        event = found()
        assert event is not None, f"the stream ended before {what}"
        return event

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def card_of(name: str, event: Event) -> dict[str, Any] | None:
    if event.kind == "cluster" and event.data["name"] == name:
        card: dict[str, Any] = event.data
        return card
    return None
