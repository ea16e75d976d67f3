"""Warm `Cluster` objects shared between calls in one long-lived process (the CLI session).

A `Cluster` keeps its SSH connections and its store forwards for its lifetime; a process that serves many
commands keeps one per cluster, so the second `cloudtik exec` opens a channel, not a connection. A cached
cluster is reused while its config and its local record (rewritten by every `up`) are unchanged; a
replaced one is closed once no command uses it any more.

Outside a pool (the in-process CLI, notebooks, scripts) `cluster(source)` is simply `Cluster(source)`.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import paths
from ..records.layout import CONFIG_FILE
from .cluster import Cluster

_active: ClusterPool | None = None
_leases: contextvars.ContextVar[list[Cluster] | None] = contextvars.ContextVar(
    "cloudtik_pool_leases", default=None
)


def _record_stamp(name: str) -> tuple[int, int] | None:
    try:
        st = os.stat(paths.cluster_dir(name) / CONFIG_FILE)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)


@dataclass
class _Entry:
    cluster: Cluster
    stamp: tuple[int, int] | None
    users: int = 0
    retired: bool = False
    closed: bool = field(default=False)


class ClusterPool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._by_object: dict[int, _Entry] = {}

    def get(self, source: Any) -> Cluster:
        """The warm cluster for `source` (config file or name), or a new one replacing a changed one."""
        warm = self._by_name(source)
        if warm is not None:
            return warm
        fresh = Cluster(source)  # connections are not made yet
        stamp = _record_stamp(fresh.name)
        stale: list[_Entry] = []
        with self._lock:
            entry = self._entries.get(fresh.name)
            if entry is None or entry.stamp != stamp or entry.cluster.config != fresh.config:
                if entry is not None:
                    entry.retired = True
                    stale.append(entry)
                entry = _Entry(fresh, stamp)
                self._entries[fresh.name] = entry
                self._by_object[id(fresh)] = entry
            self._lease(entry)
        self._close_unused(stale)
        return entry.cluster

    def _by_name(self, source: Any) -> Cluster | None:
        """A cluster named by its (unchanged) local record needs no config loading: its record is the
        config. Config files are always read again (they may include others)."""
        if not isinstance(source, str) or not paths.is_name(source) or os.path.exists(source):
            return None
        stamp = _record_stamp(source)
        with self._lock:
            entry = self._entries.get(source)
            if entry is None or stamp is None or entry.stamp != stamp:
                return None
            self._lease(entry)
            return entry.cluster

    def _lease(self, entry: _Entry) -> None:
        leases = _leases.get()
        if leases is not None:
            entry.users += 1
            leases.append(entry.cluster)

    @contextlib.contextmanager
    def command(self) -> Iterator[None]:
        """Clusters taken inside stay open until the block ends (a replaced one is closed then)."""
        leases: list[Cluster] = []
        token = _leases.set(leases)
        try:
            yield
        finally:
            _leases.reset(token)
            done = []
            with self._lock:
                for cluster in leases:
                    entry = self._by_object.get(id(cluster))
                    if entry is not None:
                        entry.users -= 1
                        done.append(entry)
            self._close_unused(done)

    def sweep(self) -> None:
        """Retire clusters whose local record is gone (taken down) or changed; close the unused ones."""
        with self._lock:
            stale = []
            for name, entry in list(self._entries.items()):
                if _record_stamp(name) != entry.stamp:
                    entry.retired = True
                    del self._entries[name]
                    stale.append(entry)
        self._close_unused(stale)

    def close_all(self) -> None:
        with self._lock:
            everything = list(self._by_object.values())
            for entry in everything:
                entry.retired = True
                entry.users = 0
            self._entries.clear()
        self._close_unused(everything)

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for e in self._by_object.values() if not e.closed)

    def _close_unused(self, entries: list[_Entry]) -> None:
        for entry in entries:
            with self._lock:
                if not entry.retired or entry.users > 0 or entry.closed:
                    continue
                entry.closed = True
                self._by_object.pop(id(entry.cluster), None)
            # Closing is not part of any command: run it outside the command's context (its Ctrl-C).
            with contextlib.suppress(Exception):  # a dead connection closes as well as it can
                contextvars.Context().run(entry.cluster.close)


def install(pool: ClusterPool | None) -> None:
    """Make `cluster()` serve from `pool` in this process (None: back to a new Cluster per call)."""
    global _active
    _active = pool


def cluster(source: Any) -> Cluster:
    """The cluster of `source`: the process's warm one when a pool is installed, else a new `Cluster`."""
    pool = _active
    return pool.get(source) if pool is not None else Cluster(source)
