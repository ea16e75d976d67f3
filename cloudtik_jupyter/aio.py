"""The synchronous facade: run coroutines on one private event loop in a daemon thread.

One loop for the whole process lets sync calls share SSH connections, and works inside Jupyter,
where the main thread's loop is already running.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="cloudtik-loop", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def submit(coro: Coroutine[Any, Any, T]) -> Future[T]:
    return asyncio.run_coroutine_threadsafe(coro, background_loop())


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the private loop and wait; Ctrl-C cancels it there and re-raises here."""
    fut = submit(coro)
    try:
        return fut.result()
    except KeyboardInterrupt:
        fut.cancel()
        raise


_END = object()


async def bridge(agen: AsyncIterator[T]) -> AsyncIterator[T]:
    """Iterate, from the caller's loop, an async generator that runs on the private loop."""
    caller = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()

    def send(item: object, error: BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # the caller's loop closed: nobody is listening
            caller.call_soon_threadsafe(queue.put_nowait, (item, error))

    async def pump() -> None:
        error: BaseException | None = None
        try:
            async for item in agen:
                send(item, None)
        except BaseException as exc:
            error = exc
            raise
        finally:
            send(_END, error)

    fut = submit(pump())
    try:
        while True:
            item, error = await queue.get()
            if item is _END:
                if error is not None and not isinstance(error, asyncio.CancelledError):
                    raise error
                return
            yield item  # type: ignore[misc]
    finally:
        fut.cancel()
