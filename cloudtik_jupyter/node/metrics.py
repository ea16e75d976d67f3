"""CPU and memory of the node and of each service's process tree (psutil).

psutil's cpu_percent is the usage since the previous call on the same `Process` object, so the
sampler keeps those objects between heartbeats.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..state.records import NodeMetrics
from .process_table import ProcessTable


@dataclass(frozen=True)
class TreeUsage:
    cpu_percent: float
    memory_rss: int


def machine_id() -> str:
    """A short, stable name of the running kernel: nodes that share it share the machine's memory."""
    for source in ("/proc/sys/kernel/random/boot_id", "/etc/machine-id"):
        with contextlib.suppress(OSError):
            raw = Path(source).read_text().strip()
            if raw:
                return hashlib.sha256(raw.encode()).hexdigest()[:12]
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:12]


class MetricsSampler:
    def __init__(self, table: ProcessTable | None = None) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self._table = table or ProcessTable()
        self._machine = machine_id()
        psutil.cpu_percent(interval=None)  # first call primes the node-wide counter

    def node(self) -> NodeMetrics:
        mem = psutil.virtual_memory()
        load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
        return NodeMetrics(
            cpu_percent=psutil.cpu_percent(interval=None),
            memory_used=mem.total - mem.available,
            memory_total=mem.total,
            load=(load[0], load[1], load[2]),
            machine=self._machine,
        )

    def _cached(self, proc: psutil.Process) -> psutil.Process:
        # Reuse the object that saw the previous sample (same pid *and* start time).
        known = self._procs.get(proc.pid)
        if known is not None and known == proc:
            return known
        self._procs[proc.pid] = proc
        return proc

    def tree(self, pid: int) -> TreeUsage:
        """Usage of `pid` and its descendants (0 when it is gone)."""
        cpu, rss = 0.0, 0
        try:
            leader = self._cached(psutil.Process(pid))
        except psutil.Error:
            return TreeUsage(0.0, 0)
        members = [leader]
        for child in self._table.descendants(pid):
            with contextlib.suppress(psutil.Error):  # gone since the table was read
                members.append(self._cached(psutil.Process(child)))
        for proc in members:
            with contextlib.suppress(psutil.Error):
                cpu += proc.cpu_percent(interval=None)
                rss += proc.memory_info().rss
        return TreeUsage(cpu, rss)

    def forget_dead(self) -> None:
        self._procs = {pid: p for pid, p in self._procs.items() if p.is_running()}
