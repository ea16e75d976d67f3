"""Bounded waits for AWS's eventual consistency: poll a condition or retry a call, always with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import TypeVar

from ...errors import Timeout
from .clients import error_code, is_client_error

T = TypeVar("T")


def poll(condition: Callable[[], T | None], *, timeout: float, what: str, max_interval: float = 5.0) -> T:
    """Call `condition` until it is truthy, backing off to `max_interval` (AWS rate-limits describes)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        result = condition()
        if result:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, max_interval)


def retry_while(codes: Collection[str], call: Callable[[], T], *, timeout: float, what: str) -> T:
    """Run `call`, retrying while AWS answers with one of `codes` (a dependency not gone yet)."""
    outcome: list[T] = []

    def attempt() -> bool:
        try:
            outcome.append(call())
        except Exception as exc:
            if is_client_error(exc) and error_code(exc) in codes:
                return False
            raise
        return True

    poll(attempt, timeout=timeout, what=what)
    return outcome[0]
