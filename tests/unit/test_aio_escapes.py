"""A SystemExit or KeyboardInterrupt raised inside a call ends that call, never the private loop every
synchronous call shares (rich raises SystemExit when stdout is a closed pipe: `cloudtik up | head -2`
hung for good, its loop thread gone)."""

from __future__ import annotations

import asyncio

import pytest

from cloudtik_jupyter import aio

pytestmark = pytest.mark.timeout(60)  # before the fix a call hung for good


async def exits(code: int) -> None:
    await asyncio.sleep(0)
    raise SystemExit(code)


async def answer() -> int:
    await asyncio.sleep(0)
    return 42


@pytest.mark.parametrize("escape", [SystemExit(3), KeyboardInterrupt()])
def test_an_escape_reaches_the_caller_and_the_loop_lives_on(escape: BaseException) -> None:
    async def raising() -> None:
        await asyncio.sleep(0)
        raise escape

    with pytest.raises(type(escape)) as raised:
        aio.run(raising())
    assert raised.value is escape  # the very exception, for the CLI to exit with its code
    assert aio.background_loop().is_running()
    assert aio.run(answer()) == 42  # the next call is served


def test_a_submitted_call_that_exits_fails_its_future_not_the_loop() -> None:
    future = aio.submit(exits(5))
    with pytest.raises(Exception) as raised:
        future.result(timeout=10)
    assert isinstance(raised.value.__cause__, SystemExit) or "SystemExit(5)" in str(raised.value)
    assert aio.run(answer()) == 42
