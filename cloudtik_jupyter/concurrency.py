"""Run many awaitables with bounded concurrency: the one helper for launches, setups, commands on many
nodes and file transfers, whatever the count."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def gather_bounded(
    run: Callable[[T], Awaitable[R]], items: Iterable[T], limit: int, *, keep_going: bool = True
) -> list[R]:
    """`run(item)` for every item, at most `limit` at a time; results in item order.

    `items` is consumed lazily by `limit` workers, so a count of 10,000 makes 10,000 calls but never more
    than `limit` coroutines at once. Every run started finishes before the first error (in item order)
    is raised: nothing is left running half done behind the caller's back. With `keep_going` (the
    default) the other items still run after an error (a command on every node); without, no new item
    starts after the first error (launches: a refused quota need not be asked 10,000 times). Cancelling
    the caller cancels the runs in flight and starts no more.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    queue = enumerate(items)
    results: dict[int, R] = {}
    errors: dict[int, Exception] = {}

    async def worker() -> None:
        for index, item in queue:  # one shared iterator: each worker takes the next item
            if errors and not keep_going:
                return
            try:
                results[index] = await run(item)
            except Exception as exc:
                errors[index] = exc

    await asyncio.gather(*(worker() for _ in range(limit)))
    if errors:
        raise errors[min(errors)]
    return [results[i] for i in range(len(results))]
