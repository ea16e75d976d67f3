"""Bounded waits for AWS's eventual consistency: poll a condition or retry a call, always with a deadline."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TypeVar

from ..common.polling import poll
from .clients import error_code, is_client_error

__all__ = ["poll", "retry_while"]

T = TypeVar("T")


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
