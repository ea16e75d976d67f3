"""Helpers for the Jupyter tests: look at virtual nodes, kill them, press the stop button."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.virtual import state
from cloudtik_jupyter.waiting import wait_for_sync


def small_config(name: str, workers: int = 2, max_workers: int = 4, **extra: Any) -> dict[str, Any]:
    return {
        "cluster_name": name,
        "provider": {"type": "virtual"},
        "head_node_type": "head",
        "available_node_types": {"head": {}, "worker": {"min_workers": workers, "max_workers": max_workers}},
        **extra,
    }


def node_records(home: Path, cluster: str) -> list[state.NodeRecord]:
    return [r for r in state.live_records(home) if r.cluster == cluster]


def kill_node(home: Path, node_id: str) -> None:
    """An instance dying: kill -9 the node's whole process tree."""
    record = state.read_record(home, node_id)
    assert record is not None
    root = psutil.Process(record.pid)
    for proc in [root, *root.children(recursive=True)]:
        proc.send_signal(signal.SIGKILL)


def head_status(home: Path, cluster: str) -> str | None:
    heads = [r for r in node_records(home, cluster) if r.tags.get(T.NODE_KIND) == T.KIND_HEAD]
    return heads[0].tags.get(T.NODE_STATUS) if heads else None


class Interrupter:
    """Presses the stop button (SIGINT to this process, as the kernel gets) once `ready()` holds."""

    def __init__(self, ready: Callable[[], bool], timeout: float = 30.0) -> None:
        self.error: BaseException | None = None

        def run() -> None:
            try:
                wait_for_sync(ready, timeout=timeout, what="the moment to interrupt")
                os.kill(os.getpid(), signal.SIGINT)
            except BaseException as exc:  # reported by join()
                self.error = exc

        self._thread = threading.Thread(target=run, name="interrupter", daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join(timeout=60)
        if self.error is not None:
            raise self.error
