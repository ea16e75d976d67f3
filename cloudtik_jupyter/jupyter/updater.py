"""Widget state is written on one thread only: the one whose event loop runs the kernel's cells.

Background work (watching a cluster, scale and down requests) runs on the package's private loop and
posts what it learns into an `Inbox`. The inbox wakes the owner's loop, where one function applies
everything posted since its last run (ipykernel 7 must not see widget updates from other threads).
A blocking magic calls `pump()` while it waits, so views keep updating during `%cloudtik scale`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_inboxes: weakref.WeakSet[Inbox[object]] = weakref.WeakSet()
_wakers: list[Callable[[], None]] = []
_registry_lock = threading.Lock()


class Inbox(Generic[T]):
    """Messages from any thread, applied in order by `apply` on the thread that made the inbox."""

    def __init__(self, apply: Callable[[list[T]], None]) -> None:
        self._apply = apply
        self._owner = threading.get_ident()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a plain script): only `pump()` applies messages
            self._loop = None
        self._lock = threading.Lock()
        self._pending: list[T] = []
        self._scheduled = False
        self._closed = False
        with _registry_lock:
            _inboxes.add(self)  # type: ignore[arg-type]

    def post(self, message: T) -> None:
        """Queue `message` (any thread) and wake the owner."""
        with self._lock:
            if self._closed:
                return
            self._pending.append(message)
            schedule = self._loop is not None and not self._scheduled
            self._scheduled = self._scheduled or schedule
        if schedule and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the owner's loop has closed: nothing to update
                self._loop.call_soon_threadsafe(self.flush)
        for wake in list(_wakers):
            wake()

    def flush(self) -> None:
        """Apply what is pending; only on the owner's thread."""
        if threading.get_ident() != self._owner:
            raise RuntimeError("an Inbox is flushed only on the thread that created it")
        with self._lock:
            messages, self._pending = self._pending, []
            self._scheduled = False
        if messages:
            self._apply(messages)

    def close(self) -> None:
        """Drop pending and future messages."""
        with self._lock:
            self._closed = True
            self._pending = []
        with _registry_lock:
            _inboxes.discard(self)  # type: ignore[arg-type]

    @property
    def owned_here(self) -> bool:
        return threading.get_ident() == self._owner


def pump() -> None:
    """Apply pending messages of every inbox owned by the calling thread."""
    with _registry_lock:
        mine = [inbox for inbox in _inboxes if inbox.owned_here]
    for inbox in mine:
        inbox.flush()


@contextlib.contextmanager
def wake_on_post(wake: Callable[[], None]) -> Iterator[None]:
    """Call `wake` (from any thread) whenever any inbox gets a message, while the block runs."""
    with _registry_lock:
        _wakers.append(wake)
    try:
        yield
    finally:
        with _registry_lock:
            _wakers.remove(wake)
