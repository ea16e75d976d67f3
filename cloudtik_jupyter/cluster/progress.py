"""Progress of long work, reported as small events; each front end renders them its own way."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProgressEvent:
    phase: str  # e.g. "launch", "ssh", "file-mounts", "setup", "start", "up-to-date", "failed", "terminate"
    message: str
    node_id: str | None = None
    node_kind: str | None = None
    at: float = field(default_factory=time.monotonic)


ProgressSink = Callable[[ProgressEvent], None]


def ignore_progress(event: ProgressEvent) -> None:
    """The default sink."""
