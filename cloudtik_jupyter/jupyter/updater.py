"""Widget state is written by one writer at a time, promptly, even while a cell runs.

Background work (watching a cluster, scale and down requests) runs on the package's private loop and
posts what it learns into an `Inbox`. The inbox wakes the owner's loop (the kernel's), where one function
applies everything posted since its last run. While a cell runs, that loop is blocked for as long as the
cell takes (a 10 s Spark job: 10 s of a frozen view), so a relay thread applies what the owner has not
picked up within `BUSY_AFTER`: ipywidgets 8 on ipykernel 7 sends comm messages from any thread (they go
through the kernel's thread-safe IOPub socket, with the shell's parent). The inbox's `lock` keeps the two
writers apart: the owner takes it for its own widget writes (button callbacks), the relay while applying.
A blocking magic still calls `pump()` while it waits, so it sees its own views' updates in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

# Messages the owner's loop has not applied after this long are applied by the relay (the loop is busy).
BUSY_AFTER = 0.2

_log = logging.getLogger(__name__)
_inboxes: weakref.WeakSet[Inbox[object]] = weakref.WeakSet()
_wakers: list[Callable[[], None]] = []
_registry_lock = threading.Lock()


class Inbox(Generic[T]):
    """Messages from any thread, applied in order by `apply`: on the thread that made the inbox, or by
    the relay when that thread is busy (with `relay`, and only where an event loop runs)."""

    def __init__(self, apply: Callable[[list[T]], None], *, relay: bool = False) -> None:
        self._apply = apply
        self._owner = threading.get_ident()
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a plain script): only `pump()` applies messages
            self._loop = None
        self._relay = relay and self._loop is not None
        self.lock = threading.RLock()  # held by whoever writes the widgets this inbox feeds
        self._guard = threading.Lock()  # the pending list
        self._pending: list[T] = []
        self._scheduled = False
        self._closed = False
        with _registry_lock:
            _inboxes.add(self)  # type: ignore[arg-type]

    def post(self, message: T) -> None:
        """Queue `message` (any thread) and wake the owner (and the relay, in case it is busy)."""
        with self._guard:
            if self._closed:
                return
            self._pending.append(message)
            schedule = self._loop is not None and not self._scheduled
            self._scheduled = self._scheduled or schedule
        if schedule and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the owner's loop has closed: nothing to update
                self._loop.call_soon_threadsafe(self.flush)
            if self._relay:
                _relay.arm(self, time.monotonic() + BUSY_AFTER)
        for wake in list(_wakers):
            wake()

    def flush(self) -> None:
        """Apply what is pending; only on the owner's thread."""
        if threading.get_ident() != self._owner:
            raise RuntimeError("an Inbox is flushed only on the thread that created it")
        self._apply_pending()

    def _apply_pending(self) -> None:
        with self.lock:
            with self._guard:
                messages, self._pending = self._pending, []
                self._scheduled = False
            if messages:
                self._apply(messages)

    def close(self) -> None:
        """Drop pending and future messages."""
        with self._guard:
            self._closed = True
            self._pending = []
        with _registry_lock:
            _inboxes.discard(self)  # type: ignore[arg-type]

    @property
    def owned_here(self) -> bool:
        return threading.get_ident() == self._owner


class _Relay:
    """One daemon thread: applies an inbox's messages when its owner did not within `BUSY_AFTER`."""

    def __init__(self) -> None:
        self._due: dict[Inbox[object], float] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, inbox: Inbox[T], due: float) -> None:
        with self._wake:
            self._due.setdefault(inbox, due)  # type: ignore[arg-type]
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cloudtik-widget-relay", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due:
                    self._wake.wait()
                now = time.monotonic()
                ready = [inbox for inbox, due in self._due.items() if due <= now]
                if not ready:
                    self._wake.wait(timeout=min(self._due.values()) - now)
                    continue
                for inbox in ready:
                    del self._due[inbox]
            for inbox in ready:
                try:
                    inbox._apply_pending()
                except Exception:  # keep relaying for the other views
                    _log.exception("cloudtik: applying a widget update failed")


_relay = _Relay()


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
