"""The cancel token cloud work checks: before every step, in every wait, before every cloud call.

The API sets a token for the thread that runs a workspace operation (`scope`); the provider code reads
it through `check()` / `sleep()` without passing it around, and each cloud's client factory hooks
`check()` in front of every request. So a cancel (Ctrl-C, a notebook's stop button, `Workspace.cancel`)
stops the work before its next cloud call, and the API then waits for the thread to end.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar

from ...errors import Cancelled


class CancelToken:
    """Set once, from any thread; checked by the thread doing the work."""

    def __init__(self, what: str = "the operation") -> None:
        self.what = what
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled(f"{self.what} {self.reason}; re-run it to converge")

    def sleep(self, seconds: float) -> None:
        """Sleep, waking at once (with `Cancelled`) when the token is set."""
        if self._event.wait(max(seconds, 0.0)):
            self.check()


_NEVER = CancelToken()
_current: ContextVar[CancelToken] = ContextVar("cloudtik_cancel_token", default=_NEVER)


def current() -> CancelToken:
    return _current.get()


@contextlib.contextmanager
def scope(token: CancelToken) -> Iterator[CancelToken]:
    """Make `token` the one `check()` and `sleep()` see in this thread (and context)."""
    reset = _current.set(token)
    try:
        yield token
    finally:
        _current.reset(reset)


def check() -> None:
    _current.get().check()


def sleep(seconds: float) -> None:
    _current.get().sleep(seconds)
