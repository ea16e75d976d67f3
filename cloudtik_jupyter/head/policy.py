"""The controller's decisions for one tick, as a pure function over small records.

Kept free of I/O so it is unit-tested directly and a tick over 10,000 nodes is cheap.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..providers.tags import NodeStatus


@dataclass(frozen=True)
class TypeLimits:
    min_workers: int
    max_workers: int


@dataclass(frozen=True)
class WorkerView:
    """What the controller knows of one worker: provider tags + the state store."""

    node_id: str
    node_type: str
    status: str  # NodeStatus value from the provider tag
    seq: int
    heartbeat_age: float | None = None  # seconds since the last heartbeat; None: never
    up_for: float = 0.0  # seconds since it became up-to-date (or was launched)
    failed_services: tuple[str, ...] = ()
    idle_for: float = 0.0  # seconds the node has had nothing to do
    stale: bool = False  # set up from an older config: setup must run again


@dataclass(frozen=True)
class Decision:
    launch: dict[str, int] = field(default_factory=dict)  # node type -> how many to launch
    update: list[str] = field(default_factory=list)  # (re-)run setup/start on these
    terminate: dict[str, str] = field(default_factory=dict)  # node id -> reason
    broken: set[str] = field(default_factory=set)  # terminated because setup/recovery kept failing
    # the targets after this tick (an idle scale-down lowers them)
    desired: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.launch or self.update or self.terminate)


def clamp_request(requested: int, limits: TypeLimits) -> int:
    return max(limits.min_workers, min(requested, limits.max_workers))


def _health(w: WorkerView, heartbeat_timeout: float) -> str | None:
    """Why a worker is unhealthy, or None."""
    if w.status != NodeStatus.UP_TO_DATE.value:
        return None
    if w.heartbeat_age is None:
        return "no heartbeat since setup" if w.up_for > heartbeat_timeout else None
    if w.heartbeat_age > heartbeat_timeout:
        return f"no heartbeat for {w.heartbeat_age:.0f}s"
    if w.failed_services:
        return f"service(s) failed: {', '.join(w.failed_services)}"
    return None


def _removal_order(w: WorkerView) -> tuple[int, float, int]:
    # Not-ready nodes go first, then the longest idle, then the newest.
    return (0 if w.status != NodeStatus.UP_TO_DATE.value else 1, -w.idle_for, -w.seq)


def decide(
    limits: Mapping[str, TypeLimits],
    desired: Mapping[str, int],
    workers: list[WorkerView],
    *,
    update_tries: Mapping[str, int],
    in_flight: set[str],
    heartbeat_timeout: float,
    idle_timeout: float,
    max_update_tries: int = 3,
    suspended: frozenset[str] = frozenset(),
) -> Decision:
    """One tick: recover or retire unhealthy workers, then launch/remove to reach the desired counts.

    Types in `suspended` get no new workers (their setup keeps failing)."""
    decision = Decision(
        desired={t: clamp_request(desired.get(t, lim.min_workers), lim) for t, lim in limits.items()}
    )
    by_type: dict[str, list[WorkerView]] = defaultdict(list)
    for w in workers:
        if w.node_type not in limits:
            decision.terminate[w.node_id] = f"node type {w.node_type!r} is no longer in the config"
            continue
        tries = update_tries.get(w.node_id, 0)
        if w.status == NodeStatus.UPDATE_FAILED.value and w.node_id not in in_flight:
            if tries >= max_update_tries:
                decision.terminate[w.node_id] = f"setup failed {tries} times"
                decision.broken.add(w.node_id)
                continue
            decision.update.append(w.node_id)
        elif (w.status != NodeStatus.UP_TO_DATE.value or w.stale) and w.node_id not in in_flight:
            # launched but never set up (e.g. the controller restarted), or set up from an older config
            decision.update.append(w.node_id)
        elif (why := _health(w, heartbeat_timeout)) and w.node_id not in in_flight:
            if tries >= max_update_tries:
                decision.terminate[w.node_id] = f"unhealthy ({why}) after {tries} recoveries"
                decision.broken.add(w.node_id)
                continue
            decision.update.append(w.node_id)
        by_type[w.node_type].append(w)

    for node_type, lim in limits.items():
        alive = by_type.get(node_type, [])
        target = decision.desired[node_type]
        if idle_timeout > 0 and len(alive) > lim.min_workers:
            idle = sorted((w for w in alive if w.idle_for >= idle_timeout), key=_removal_order)
            drop = idle[: len(alive) - lim.min_workers]
            for w in drop:
                decision.terminate[w.node_id] = f"idle for {w.idle_for / 60:.1f} min"
            if drop:  # lower the request by what was released; a scale-up with none idle stands
                alive = [w for w in alive if w.node_id not in decision.terminate]
                target = min(target, max(lim.min_workers, len(alive)))
                decision.desired[node_type] = target
        if len(alive) < target and node_type not in suspended:
            decision.launch[node_type] = target - len(alive)
        elif len(alive) > target:
            for w in sorted(alive, key=_removal_order)[: len(alive) - target]:
                decision.terminate[w.node_id] = "scaled down"
    decision.update[:] = [n for n in decision.update if n not in decision.terminate]
    return decision
