"""Run one API coroutine for a magic: the work on the package's private loop, the rendering here.

Progress events and command output arrive from the private loop's thread; they are queued and handled
on the calling (kernel) thread, which is the only one allowed to write into the cell. The stop button
(KeyboardInterrupt) cancels the coroutine and waits for it to unwind before the magic returns.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

from .. import aio
from . import updater
from .cell_errors import CellError

T = TypeVar("T")
M = TypeVar("M")

# How long an interrupted operation may take to unwind (close connections, finish a provider call).
CANCEL_GRACE = 15.0


class _Wake:
    """Queued to make the waiting thread look around (work finished, a view has news)."""


_WAKE = _Wake()


class Foreground(Generic[M]):
    """`post` messages from any thread; `run` handles them with `handle` on the calling thread."""

    def __init__(self, handle: Callable[[M], None], idle: Callable[[], None] | None = None) -> None:
        self._handle = handle
        self._idle = idle or (lambda: None)
        self._queue: queue.SimpleQueue[M | _Wake] = queue.SimpleQueue()

    def post(self, message: M) -> None:
        self._queue.put(message)

    def _wake(self) -> None:
        self._queue.put(_WAKE)

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if not isinstance(item, _Wake):
                self._handle(item)
        self._idle()

    def run(self, coro: Coroutine[Any, Any, T], *, what: str) -> T:
        """Run `coro` to completion; `what` names it in the message shown when interrupted."""
        updater.pump()  # what views learnt while the kernel was idle belongs before this cell's news
        work = _Work(coro, self._wake)
        with updater.wake_on_post(self._wake):
            try:
                while not work.done.is_set():
                    item = self._queue.get()  # wakes on a message, a view's news or the end
                    if not isinstance(item, _Wake):
                        self._handle(item)
                    if self._queue.empty():
                        self._idle()
                        updater.pump()
            except KeyboardInterrupt:
                work.cancel()
                work.done.wait(CANCEL_GRACE)
                self._drain()
                raise CellError(
                    f"interrupted: {what} stopped; run it again to pick up where it left off"
                ) from None
        self._drain()
        updater.pump()
        return work.result()


class _Work(Generic[T]):
    """`coro` as a task on the private loop; `done` is set once it has fully finished or unwound."""

    def __init__(self, coro: Coroutine[Any, Any, T], on_done: Callable[[], None]) -> None:
        self.done = threading.Event()
        self._loop = aio.background_loop()
        self._outcome: Future[T] = Future()
        self._task: asyncio.Task[T] | None = None

        def finished(task: asyncio.Task[T]) -> None:
            if task.cancelled():
                self._outcome.cancel()
            elif (exc := task.exception()) is not None:
                self._outcome.set_exception(exc)
            else:
                self._outcome.set_result(task.result())
            self.done.set()
            on_done()

        def start() -> None:
            self._task = self._loop.create_task(coro)
            self._task.add_done_callback(finished)

        self._loop.call_soon_threadsafe(start)

    def cancel(self) -> None:
        # Scheduled after `start` on the same loop, so the task exists when this runs.
        self._loop.call_soon_threadsafe(lambda: self._task.cancel() if self._task else None)

    def result(self) -> T:
        return self._outcome.result()
