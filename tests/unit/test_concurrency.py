"""`gather_bounded`: order, the bound, laziness, errors after every run, cancellation."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudtik_jupyter.concurrency import gather_bounded


@settings(max_examples=60, deadline=None)
@given(
    outcomes=st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=40),
    limit=st.integers(1, 8),
)
def test_every_item_runs_once_within_the_bound(outcomes: list[tuple[int, bool]], limit: int) -> None:
    """Random delays (in loop turns) and failures: each item runs once, never more than `limit` at a
    time, results come back in item order, or the first failure in item order is raised after all ran."""
    running = peak = 0
    ran: list[int] = []

    async def run(index: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            for _ in range(outcomes[index][0]):
                await asyncio.sleep(0)
            ran.append(index)
            if outcomes[index][1]:
                raise ValueError(index)
            return index * 10
        finally:
            running -= 1

    async def main() -> list[int] | int:
        try:
            return await gather_bounded(run, range(len(outcomes)), limit)
        except ValueError as exc:
            return int(exc.args[0])

    result = asyncio.run(main())
    assert sorted(ran) == list(range(len(outcomes)))
    assert peak <= limit
    failed = [i for i, (_, fails) in enumerate(outcomes) if fails]
    assert result == (failed[0] if failed else [i * 10 for i in range(len(outcomes))])


async def test_items_are_consumed_lazily() -> None:
    """A count of a billion is fine: only what has run was ever drawn from the iterator, and without
    `keep_going` nothing new starts after the first error."""
    drawn = 0

    async def run(i: int) -> None:
        nonlocal drawn
        drawn += 1
        await asyncio.sleep(0)
        if i >= 50:
            raise RuntimeError("enough")

    with pytest.raises(RuntimeError):
        await gather_bounded(run, itertools.islice(itertools.count(), 10**9), 4, keep_going=False)
    assert 50 < drawn <= 54


async def test_cancelling_the_caller_stops_the_runs() -> None:
    started: list[int] = []
    cancelled: list[int] = []

    async def run(i: int) -> None:
        started.append(i)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(i)
            raise

    task = asyncio.create_task(gather_bounded(run, range(100), 3))
    while len(started) < 3:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(started) == sorted(cancelled) == [0, 1, 2]


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        asyncio.run(gather_bounded(lambda i: asyncio.sleep(0), [1], 0))
