"""Rows of the head's state store, and how each is encoded in Redis.

Rows are frozen dataclasses; they cross the Redis boundary as compact JSON (or hash fields for the
node table, so the controller can change one field atomically).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class ProcessStatus(str, Enum):
    STARTING = "starting"  # spawned, health check not yet passed
    RUNNING = "running"
    FAILED = "failed"  # exited on its own; the agent restarts it while restarts remain
    STOPPED = "stopped"  # stopped on purpose


@dataclass(frozen=True)
class NodeRecord:
    """One row of the node table. `last_heartbeat` is filled from the heartbeat index on read.

    The controller mirrors each listed node into it (head/controller.py `_sync_records`), so views read
    the cluster here instead of listing the provider (cluster/readmodel.py)."""

    node_id: str
    node_type: str = ""
    kind: str = ""  # head | worker (providers.tags.KIND_*)
    address: str = ""  # private address the head reaches the node on
    status: str = ""
    seq_id: int | None = None
    last_heartbeat: float | None = None
    external_ip: str = ""  # "" when the node has none
    launch_hash: str = ""  # the setup the node got (providers.tags.LAUNCH_HASH): is it up-to-date?

    def to_fields(self) -> dict[str, str]:
        """Hash fields of the node table (`last_heartbeat` lives in the heartbeat index). Empty optional
        fields are left out, so an agent registering itself does not blank what the controller wrote."""
        fields = {
            "node_id": self.node_id,
            "node_type": self.node_type,
            "kind": self.kind,
            "address": self.address,
            "status": self.status,
        }
        if self.seq_id is not None:
            fields["seq_id"] = str(self.seq_id)
        if self.external_ip:
            fields["external_ip"] = self.external_ip
        if self.launch_hash:
            fields["launch_hash"] = self.launch_hash
        return fields

    @classmethod
    def from_fields(cls, node_id: str, fields: dict[str, str], last_heartbeat: float | None) -> NodeRecord:
        """Tolerant: a field another writer mangled reads as unset, never as an exception in a view."""

        def text(name: str) -> str:
            value = fields.get(name, "")
            return value if isinstance(value, str) else ""

        seq = text("seq_id")
        return cls(
            node_id=node_id,
            node_type=text("node_type"),
            kind=text("kind"),
            address=text("address"),
            status=text("status"),
            seq_id=int(seq) if seq.isdigit() else None,
            last_heartbeat=last_heartbeat,
            external_ip=text("external_ip"),
            launch_hash=text("launch_hash"),
        )


# A row the client marked when it terminated the node itself (`kill-node`): views leave it out at once,
# the controller removes it when its next listing no longer has the node.
TERMINATED = "terminated"


@dataclass(frozen=True)
class ProcessRecord:
    """One service of a node as its agent last reported it."""

    name: str
    pid: int | None
    status: ProcessStatus
    restarts: int = 0
    exit_code: int | None = None  # of the last exit, when it has exited at least once
    cpu_percent: float = 0.0  # the whole process tree of the service
    memory_rss: int = 0  # bytes, the whole process tree

    def to_obj(self) -> list[Any]:
        # Positional list: heartbeats carry these every second from every node.
        return [
            self.name,
            self.pid,
            self.status.value,
            self.restarts,
            self.exit_code,
            round(self.cpu_percent, 1),
            self.memory_rss,
        ]

    @classmethod
    def from_obj(cls, obj: list[Any]) -> ProcessRecord:
        name, pid, status, restarts, exit_code, cpu, rss = obj
        return cls(name, pid, ProcessStatus(status), restarts, exit_code, cpu, rss)


@dataclass(frozen=True)
class NodeMetrics:
    cpu_percent: float = 0.0
    memory_used: int = 0  # bytes
    memory_total: int = 0  # bytes
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)  # 1, 5, 15 minute load averages
    # Which machine (kernel) the node runs on: nodes sharing one (virtual nodes, containers) report the
    # same memory, which is counted once. Empty from agents that do not say.
    machine: str = ""

    def to_obj(self) -> list[Any]:
        return [
            round(self.cpu_percent, 1),
            self.memory_used,
            self.memory_total,
            list(self.load),
            self.machine,
        ]

    @classmethod
    def from_obj(cls, obj: list[Any]) -> NodeMetrics:
        cpu, used, total, load = obj[:4]
        machine = str(obj[4]) if len(obj) > 4 else ""
        return cls(cpu, used, total, (float(load[0]), float(load[1]), float(load[2])), machine)


@dataclass(frozen=True)
class MetricSample:
    """One point of a node's short cpu/memory history (the store keeps a ring of these per node)."""

    time: float
    cpu_percent: float
    memory_used: int

    def encode(self) -> str:
        return f"{self.time:.1f},{self.cpu_percent:.1f},{self.memory_used}"

    @classmethod
    def decode(cls, raw: str | bytes) -> MetricSample:
        t, cpu, used = (raw.decode() if isinstance(raw, bytes) else raw).split(",")
        return cls(float(t), float(cpu), int(used))


def encode_processes(processes: list[ProcessRecord] | tuple[ProcessRecord, ...]) -> str:
    return json.dumps([p.to_obj() for p in processes], separators=(",", ":"))


def decode_processes(raw: str | bytes | None) -> list[ProcessRecord]:
    return [ProcessRecord.from_obj(o) for o in json.loads(raw)] if raw else []


def encode_metrics(metrics: NodeMetrics) -> str:
    return json.dumps(metrics.to_obj(), separators=(",", ":"))


def decode_metrics(raw: str | bytes | None) -> NodeMetrics | None:
    return NodeMetrics.from_obj(json.loads(raw)) if raw else None


@dataclass(frozen=True)
class NodeActivity:
    """Whether a node is doing work beyond its supervised services (what "idle" is judged on)."""

    user_cpu: float = 0.0  # CPU % of the node's other processes (user jobs, notebooks, shells)
    sessions: int = 0  # interactive shell sessions (processes on a terminal)
    runtime_busy: bool | None = None  # a runtime's `busy` hook: True/False, None when none can say


@dataclass(frozen=True)
class NodeHealth:
    """What the controller reads for every node every tick, without decoding process lists."""

    busiest_cpu: float  # the busiest supervised service's process tree
    failed: tuple[str, ...]
    activity: NodeActivity = field(default_factory=NodeActivity)

    def encode(self) -> str:
        a = self.activity
        busy = "" if a.runtime_busy is None else str(int(a.runtime_busy))
        return f"{self.busiest_cpu:.1f}|{','.join(self.failed)}|{a.user_cpu:.1f}|{a.sessions}|{busy}"

    @classmethod
    def parse(cls, raw: str) -> NodeHealth:
        """Tolerant: a garbled report (workers are less trusted) reads as busy, never as an error."""
        return _parse_health(raw)

    @classmethod
    def _parse(cls, raw: str) -> NodeHealth:
        cpu, failed, user_cpu, sessions, busy = [*raw.split("|"), "", "", ""][:5]
        try:
            activity = NodeActivity(
                float(user_cpu or 0), int(sessions or 0), bool(int(busy)) if busy else None
            )
            return cls(float(cpu or 0), tuple(failed.split(",")) if failed else (), activity)
        except ValueError:
            return cls(100.0, (), NodeActivity(runtime_busy=True))


# The controller reads every node's report every tick; most are the same as last tick (and as each other's).
_parse_health = functools.lru_cache(maxsize=1 << 16)(NodeHealth._parse)


def health_summary(processes: Iterable[ProcessRecord], activity: NodeActivity | None = None) -> str:
    processes = tuple(processes)
    busiest = max((p.cpu_percent for p in processes), default=0.0)
    failed = tuple(p.name for p in processes if p.status == ProcessStatus.FAILED)
    return NodeHealth(busiest, failed, activity or NodeActivity()).encode()


@dataclass(frozen=True)
class Heartbeat:
    """What a node agent sends every `heartbeat_interval`."""

    node_id: str
    processes: tuple[ProcessRecord, ...] = ()
    metrics: NodeMetrics = field(default_factory=NodeMetrics)
    time: float | None = None  # None: the store stamps it with its clock
    activity: NodeActivity | None = None


@dataclass(frozen=True)
class Event:
    """A line of the cluster's event log (capped, on the primary)."""

    time: float
    kind: str  # e.g. node-registered, service-exited, service-restarted, node-lost
    message: str
    node_id: str | None = None

    def to_json(self) -> str:
        return json.dumps([self.time, self.kind, self.message, self.node_id], separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Event:
        t, kind, message, node_id = json.loads(raw)
        return cls(t, kind, message, node_id)


class ChangeKind(str, Enum):
    NODE = "node"  # a node row was added or changed
    NODE_REMOVED = "node-removed"
    HEARTBEAT = "heartbeat"  # processes / metrics / last heartbeat of `node_ids` changed
    EVENT = "event"  # an event was appended; `detail` is its kind
    SCALE = "scale"  # the desired worker counts changed


# A batched heartbeat names at most this many nodes; beyond it `node_ids` is empty, meaning "many".
MAX_IDS_PER_CHANGE = 64


@dataclass(frozen=True)
class Change:
    """A small notification published on every change; subscribers re-read what they show."""

    kind: ChangeKind
    node_ids: tuple[str, ...] = ()
    detail: str = ""

    def to_json(self) -> str:
        return json.dumps([self.kind.value, list(self.node_ids), self.detail], separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Change:
        kind, node_ids, detail = json.loads(raw)
        return cls(ChangeKind(kind), tuple(node_ids), detail)
