"""The synchronous facade: run coroutines on one private event loop in a daemon thread.

One loop for the whole process lets sync calls share SSH connections, and works inside Jupyter,
where the main thread's loop is already running.

Ctrl-C: in the main thread it arrives as KeyboardInterrupt; a command running in another thread (the CLI
session's) gets it through its `Interrupt`. Either way the coroutine is cancelled and given a moment to
stop (close its channels on the nodes) before `run` raises KeyboardInterrupt.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")
STOP_GRACE = 5.0  # how long an interrupted call may take to stop (cancelled commands close their channels)

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


class _Escaped(Exception):
    """SystemExit or KeyboardInterrupt raised inside a call (rich exits on a closed stdout, for one): a
    task re-raises those out of the loop, which would end the thread every call shares and leave this
    call's caller (and every later one) waiting forever. Carried to the caller as this, raised there."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(repr(original))
        self.original = original


async def _guarded(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return await coro
    except (SystemExit, KeyboardInterrupt) as exc:
        raise _Escaped(exc) from exc


def submit(coro: Coroutine[Any, Any, T]) -> Future[T]:
    """`coro` on the private loop; a SystemExit or KeyboardInterrupt it raises ends it (as `_Escaped`,
    with the original as `.original`), not the loop."""
    return asyncio.run_coroutine_threadsafe(_guarded(coro), background_loop())


class Interrupt:
    """Ctrl-C for one command that runs outside the main thread: `fire()` makes the `run` calls of the
    context it is current in cancel their coroutine and raise KeyboardInterrupt."""

    def __init__(self) -> None:
        self.future: Future[None] = Future()
        self._read_fd, self._write_fd = os.pipe()  # readable once fired: for select() next to other fds

    @property
    def fired(self) -> bool:
        return self.future.done()

    def fileno(self) -> int:
        return self._read_fd

    def fire(self) -> None:
        with contextlib.suppress(Exception):  # fired twice: the first one counts
            self.future.set_result(None)
            os.write(self._write_fd, b"!")

    def close(self) -> None:
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


current_interrupt: ContextVar[Interrupt | None] = ContextVar("cloudtik_interrupt", default=None)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the private loop and wait; Ctrl-C (or the context's `Interrupt`) cancels it there,
    waits up to STOP_GRACE for it to stop, and raises KeyboardInterrupt here."""
    loop = background_loop()
    result: Future[T] = Future()
    stopped = threading.Event()
    tasks: list[asyncio.Task[T]] = []

    def settle(task: asyncio.Task[T]) -> None:
        stopped.set()
        if task.cancelled():
            result.cancel()
        elif (error := task.exception()) is not None:
            result.set_exception(error.original if isinstance(error, _Escaped) else error)
        else:
            result.set_result(task.result())

    def start() -> None:  # runs in a copy of the caller's context: the task inherits its variables
        task = loop.create_task(_guarded(coro))
        task.add_done_callback(settle)
        tasks.append(task)

    def cancel() -> None:  # queued after `start`, so the task exists
        for task in tasks:
            task.cancel()

    interrupt = current_interrupt.get()
    loop.call_soon_threadsafe(start)
    try:
        if interrupt is not None:
            either: list[Future[Any]] = [result, interrupt.future]
            wait(either, return_when=FIRST_COMPLETED)
            if not result.done():
                raise KeyboardInterrupt
        return result.result()
    except KeyboardInterrupt:
        loop.call_soon_threadsafe(cancel)
        stopped.wait(STOP_GRACE)
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
