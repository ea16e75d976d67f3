"""What the controller sees of each worker: provider tags and the store's reports, turned into `WorkerView`s.

It remembers between ticks when each worker became up-to-date, last did work, had a service fail and was
last restarted; all of it is rebuilt harmlessly (conservatively) after a controller restart.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from ..cluster.context import NodeRef
from ..config.schema import HeadConfig
from ..providers import tags as T
from ..state.records import NodeHealth
from .policy import TypeLimits, WorkerView, needs_every_view

UP = T.NodeStatus.UP_TO_DATE.value
SERVICE_FAILED_GRACE = 10.0  # seconds a service may stay failed (the agent restarting it) before recovery


def is_busy(health: NodeHealth | None, cpu_threshold: float) -> bool:
    """Busy unless its last report says otherwise: services or other processes using CPU, a shell session,
    or a runtime running tasks. No report counts as busy."""
    if health is None:
        return True
    activity = health.activity
    return (
        health.busiest_cpu > cpu_threshold
        or activity.user_cpu > cpu_threshold
        or activity.sessions > 0
        or bool(activity.runtime_busy)
    )


@dataclass
class Observations:
    up_since: dict[str, float] = field(default_factory=dict)  # monotonic times
    busy_at: dict[str, float] = field(default_factory=dict)
    failed_since: dict[tuple[str, str], float] = field(default_factory=dict)
    # when a restart (recovery, adoption) last succeeded: its heartbeats are awaited from there
    restarted_at: dict[str, float] = field(default_factory=dict)

    def restarted(self, node_id: str) -> None:
        self.restarted_at[node_id] = time.monotonic()

    def forget(self, node_id: str) -> None:
        for table in (self.up_since, self.busy_at, self.restarted_at):
            table.pop(node_id, None)
        for key in [k for k in self.failed_since if k[0] == node_id]:
            del self.failed_since[key]

    def views(
        self,
        workers: list[NodeRef],
        head: NodeRef | None,
        beats: dict[str, float],
        health: dict[str, NodeHealth],
        now: float,
        *,
        worker_hash: str,
        config: HeadConfig,
        mono: float | None = None,
    ) -> list[WorkerView]:
        mono = time.monotonic() if mono is None else mono
        return [
            self._view(w, head, beats.get(w.node_id), health.get(w.node_id), now, mono, worker_hash, config)
            for w in workers
        ]

    def for_tick(
        self,
        workers: list[NodeRef],
        head: NodeRef | None,
        beats: dict[str, float],
        health: dict[str, NodeHealth],
        now: float,
        mono: float,
        *,
        full: bool,
        worker_hash: str,
        config: HeadConfig,
        limits: Mapping[str, TypeLimits],
        desired: Mapping[str, int],
        in_flight: Collection[str],
        tries: Mapping[str, int],
        idle_timeout: float,
    ) -> tuple[list[WorkerView], dict[str, int]]:
        """What `decide` gets this tick: (views, settled counts). Incremental (`split`) unless `full` or a
        type may be above its target (choosing whom to remove needs every view): then every view."""
        if not full:
            views, settled = self.split(
                workers,
                head,
                beats,
                health,
                now,
                worker_hash=worker_hash,
                config=config,
                types=limits.keys(),
                in_flight=in_flight,
                tries=tries,
                idle_timeout=idle_timeout,
                mono=mono,
            )
            if not needs_every_view(limits, desired, views, settled):
                return views, settled
        every = self.views(
            workers, head, beats, health, now, worker_hash=worker_hash, config=config, mono=mono
        )
        return every, {}

    def split(
        self,
        workers: list[NodeRef],
        head: NodeRef | None,
        beats: dict[str, float],
        health: dict[str, NodeHealth],
        now: float,
        *,
        worker_hash: str,
        config: HeadConfig,
        types: Collection[str],
        in_flight: Collection[str],
        tries: Mapping[str, int],
        idle_timeout: float,
        mono: float | None = None,
    ) -> tuple[list[WorkerView], dict[str, int]]:
        """`views` of the workers that need a look, and per type how many others are settled.

        Settled: up-to-date with this config and head, heartbeating within the timeout, no failed service
        (nor one in its grace period), nothing in flight or tried, and not idle-eligible now. `decide`
        keeps such a worker alive and does nothing with it, so it is counted, not viewed; what `views`
        would remember of it (its busy time) is kept the same. A cheap test per worker instead of a view:
        the incremental tick (tests/unit/test_incremental_tick.py checks it decides as every view would)."""
        mono = time.monotonic() if mono is None else mono
        timeout = config.heartbeat_timeout
        threshold = config.idle_cpu_percent
        failing = {node_id for node_id, _ in self.failed_since}
        up_since, busy_at = self.up_since, self.busy_at
        settled: dict[str, int] = {}
        looked_at: list[WorkerView] = []
        for w in workers:
            node_id, tags = w.node_id, w.tags
            node_type = tags.get(T.NODE_TYPE, "")
            beat = beats.get(node_id)
            h = health.get(node_id)
            set_up_by = tags.get(T.HEAD_ID)
            quiet = (
                beat is not None
                and now - beat <= timeout
                and h is not None
                and not h.failed
                and tags.get(T.NODE_STATUS) == UP
                and tags.get(T.LAUNCH_HASH) == worker_hash
                and not (head is not None and set_up_by and set_up_by != head.node_id)
                and node_type in types
                and node_id not in in_flight
                and not tries.get(node_id)
                and node_id not in failing
                and node_id in up_since
                and node_id in busy_at
            )
            if quiet:
                if is_busy(h, threshold):
                    busy_at[node_id] = mono
                elif idle_timeout > 0 and (
                    mono - busy_at[node_id] >= idle_timeout and mono - up_since[node_id] >= idle_timeout
                ):
                    quiet = False  # idle-eligible: `decide` may release it
            if quiet:
                settled[node_type] = settled.get(node_type, 0) + 1
            else:
                looked_at.append(self._view(w, head, beat, h, now, mono, worker_hash, config))
        return looked_at, settled

    def _view(
        self,
        w: NodeRef,
        head: NodeRef | None,
        beat: float | None,
        health: NodeHealth | None,
        now: float,
        mono: float,
        worker_hash: str,
        config: HeadConfig,
    ) -> WorkerView:
        node_id = w.node_id
        if w.status == T.NodeStatus.UP_TO_DATE.value:
            up_since = self.up_since.setdefault(node_id, mono)
        else:
            self.up_since.pop(node_id, None)
            up_since = mono
        if node_id not in self.busy_at or is_busy(health, config.idle_cpu_percent):
            self.busy_at[node_id] = mono
        failed = []
        for name in health.failed if health else ():
            since = self.failed_since.setdefault((node_id, name), mono)
            if mono - since > SERVICE_FAILED_GRACE:
                failed.append(name)
        if self.failed_since and not (health and health.failed):
            for key in [k for k in self.failed_since if k[0] == node_id]:
                del self.failed_since[key]
        age = now - beat if beat is not None else None
        restarted = self.restarted_at.get(node_id)
        if restarted is not None:  # a fresh restart gets a full heartbeat timeout to report
            age = min(age, mono - restarted) if age is not None else mono - restarted
        set_up_by = w.tags.get(T.HEAD_ID)
        return WorkerView(
            node_id=node_id,
            node_type=w.node_type,
            status=w.status,
            seq=w.seq,
            heartbeat_age=age,
            up_for=mono - up_since,
            failed_services=tuple(failed),
            idle_for=mono - self.busy_at[node_id],
            stale=w.tags.get(T.LAUNCH_HASH) != worker_hash,
            adopt=bool(head and set_up_by and set_up_by != head.node_id),
        )
