"""Bounded waits for eventually consistent cloud APIs: poll a condition, always with a deadline."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ...waiting import wait_for_sync

T = TypeVar("T")


def poll(condition: Callable[[], T | None], *, timeout: float, what: str, max_interval: float = 5.0) -> T:
    """Call `condition` until it is truthy, backing off to `max_interval` (clouds rate-limit reads)."""
    return wait_for_sync(
        condition, timeout=timeout, what=what, interval=0.05, max_interval=max_interval, factor=2
    )
