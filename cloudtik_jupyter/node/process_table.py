"""Who is whose child, read once for every process tree a sample looks at.

psutil's `children(recursive=True)` reads the whole process table (every /proc/PID/stat) per call. A
heartbeat looks at one tree per service and the activity sampler at a few more, and `node.start` polls the
agent's status every 50 ms while the head's services start: on the head that was a dozen full reads per
heartbeat and five per poll, most of the agent's CPU while the Spark master's JVM competed for it.
"""

from __future__ import annotations

import threading
import time

import psutil

MAX_AGE = 0.5  # seconds a read serves: usage figures, not decisions, are made from it


class ProcessTable:
    """Parent -> children of every process, re-read at most every `max_age` seconds (thread-safe: the
    activity sampler runs in a thread beside the agent's loop)."""

    def __init__(self, max_age: float = MAX_AGE) -> None:
        self._max_age = max_age
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._children: dict[int, list[int]] = {}
        self.reads = 0  # how many times the table was read (for tests and curiosity)

    def _current(self) -> dict[int, list[int]]:
        with self._lock:
            now = time.monotonic()
            if now - self._read_at >= self._max_age:
                children: dict[int, list[int]] = {}
                for proc in psutil.process_iter(["ppid"]):
                    parent = proc.info["ppid"]
                    if parent is not None:
                        children.setdefault(parent, []).append(proc.pid)
                self._children, self._read_at = children, now
                self.reads += 1
            return self._children

    def descendants(self, pid: int) -> list[int]:
        """Every process below `pid` as of the last read (a process younger than the read is missing)."""
        children = self._current()
        found: list[int] = []
        seen = {pid}
        stack = [pid]
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in seen:  # a pid reused within one read cannot loop the walk
                    seen.add(child)
                    found.append(child)
                    stack.append(child)
        return found
