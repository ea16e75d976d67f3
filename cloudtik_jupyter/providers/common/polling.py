"""Bounded waits for eventually consistent cloud APIs: poll a condition, always with a deadline, and
stop at once when the operation is cancelled (see `cancel`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from ...errors import Timeout
from . import cancel

T = TypeVar("T")


def poll(condition: Callable[[], T | None], *, timeout: float, what: str, max_interval: float = 5.0) -> T:
    """Call `condition` until it is truthy, backing off to `max_interval` (clouds rate-limit reads)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        cancel.check()
        result = condition()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout(f"timed out after {timeout:g}s waiting for {what}")
        cancel.sleep(min(delay, remaining))
        delay = min(delay * 2, max_interval)
