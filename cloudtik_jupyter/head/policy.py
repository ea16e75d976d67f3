"""The controller's decisions for one tick, as a pure function over small records.

Kept free of I/O so it is unit-tested directly (tests/unit/test_policy*.py, including hypothesis state
machines over random requests and faults) and a tick over 10,000 nodes is cheap.

The rules that matter to users:
- The desired count per type is the user's request. It changes only by a new request or by an idle
  release, which lowers it by exactly the workers released (`Decision.released` names them and why).
  Nothing else lowers it: a scale-up or a replacement is never capped at the current worker count.
- Idle release is conservative: a worker is released only when it has done nothing (`idle_for`, measured
  by the controller from CPU, shell sessions and the runtimes' own `busy` hooks) for `idle_timeout`, has
  been up for `idle_timeout`, is healthy and reporting now (not silent, not being set up or restarted),
  no scale request came within `idle_timeout`, the type has every worker it asked for, and the type
  stays at or above `min_workers`.
- A worker whose heartbeats stopped gets ONE recovery attempt (bounded by the controller's recovery
  deadline); if its heartbeats are still missing afterwards, it is terminated and replaced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..providers.tags import NodeStatus

UP = NodeStatus.UP_TO_DATE.value


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
    heartbeat_age: float | None = None  # seconds since the last heartbeat (or a successful recovery)
    up_for: float = 0.0  # seconds since this controller saw it up-to-date
    failed_services: tuple[str, ...] = ()
    idle_for: float = 0.0  # seconds the node has had nothing to do
    stale: bool = False  # set up from an older config: setup must run again
    adopt: bool = False  # set up under a previous head: reconnect its agent to this head now


@dataclass(frozen=True)
class Decision:
    launch: dict[str, int] = field(default_factory=dict)  # node type -> how many to launch
    update: list[str] = field(default_factory=list)  # (re-)run setup/start on these
    terminate: dict[str, str] = field(default_factory=dict)  # node id -> reason
    broken: set[str] = field(default_factory=set)  # terminated because setup/recovery kept failing
    released: dict[str, str] = field(default_factory=dict)  # idle releases (also in `terminate`)
    # the targets after this tick: the request, lowered only by `released`
    desired: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.launch or self.update or self.terminate)


def clamp_request(requested: int, limits: TypeLimits) -> int:
    return max(limits.min_workers, min(requested, limits.max_workers))


def heartbeat_lost(w: WorkerView, heartbeat_timeout: float) -> str | None:
    """Why an up-to-date worker counts as silent, or None."""
    if w.status != UP:
        return None
    if w.heartbeat_age is None:
        return "no heartbeat since setup" if w.up_for > heartbeat_timeout else None
    if w.heartbeat_age > heartbeat_timeout:
        return f"no heartbeat for {w.heartbeat_age:.0f}s"
    return None


def healthy(w: WorkerView, heartbeat_timeout: float) -> bool:
    """Set up, heartbeating and all services running."""
    fresh = w.heartbeat_age is not None and w.heartbeat_age <= heartbeat_timeout
    return w.status == UP and not w.stale and fresh and not w.failed_services


def _removal_order(w: WorkerView) -> tuple[int, float, int]:
    # Not-ready nodes go first, then the longest idle, then the newest.
    return (0 if w.status != UP else 1, -w.idle_for, -w.seq)


def idle_eligible(w: WorkerView, idle_timeout: float, heartbeat_timeout: float) -> bool:
    """Known to be idle: reporting now (a silent worker's last report says nothing of what it does since),
    healthy, and quiet for the idle timeout since its start."""
    return healthy(w, heartbeat_timeout) and w.idle_for >= idle_timeout and w.up_for >= idle_timeout


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
    since_request: float = float("inf"),
    settled: Mapping[str, int] | None = None,
) -> Decision:
    """One tick: recover or retire unhealthy workers, then launch/remove to reach the desired counts.

    `update_tries`: recovery or setup attempts since the node was last healthy. Types in `suspended` get
    no new workers (their setup keeps failing). `since_request`: seconds since the last scale request.
    `settled`: per type, workers left out of `workers` because they are healthy, need nothing and are not
    idle-eligible (`Observations.split`): they count as alive. Only valid where no removal order is needed
    (`needs_every_view`)."""
    settled = settled or {}
    decision = Decision(
        desired={t: clamp_request(desired.get(t, lim.min_workers), lim) for t, lim in limits.items()}
    )
    by_type: dict[str, list[WorkerView]] = defaultdict(list)
    for w in workers:
        if w.node_type not in limits:
            decision.terminate[w.node_id] = f"node type {w.node_type!r} is no longer in the config"
            continue
        tries = update_tries.get(w.node_id, 0)
        if w.node_id in in_flight:
            pass  # counts as alive until its update ends (a restart has its own short deadline)
        elif w.status == NodeStatus.UPDATE_FAILED.value:
            if tries >= max_update_tries:
                decision.terminate[w.node_id] = f"setup failed {tries} times"
                decision.broken.add(w.node_id)
                continue
            decision.update.append(w.node_id)
        elif w.status != UP or w.stale:
            # launched but never set up (e.g. the controller restarted), or set up from an older config
            decision.update.append(w.node_id)
        elif silent := heartbeat_lost(w, heartbeat_timeout):
            if tries >= 1:  # a recovery ran and the node is still silent: hung or cut off
                # Not `broken`: a dead machine says nothing about the config, so replacing goes on.
                decision.terminate[w.node_id] = f"unreachable ({silent}) after a recovery attempt"
                continue
            decision.update.append(w.node_id)
        elif w.adopt:
            decision.update.append(w.node_id)
        elif w.failed_services:
            if tries >= max_update_tries:
                why = f"service(s) failed: {', '.join(w.failed_services)}"
                decision.terminate[w.node_id] = f"unhealthy ({why}) after {tries} recoveries"
                decision.broken.add(w.node_id)
                continue
            decision.update.append(w.node_id)
        by_type[w.node_type].append(w)

    for node_type, lim in limits.items():
        alive = by_type.get(node_type, [])
        target = decision.desired[node_type]
        quiet = settled.get(node_type, 0)
        if quiet and len(alive) + quiet > target:
            raise ValueError(f"{node_type}: removing workers needs every view (see needs_every_view)")
        if len(alive) > target:
            for w in sorted(alive, key=_removal_order)[: len(alive) - target]:
                decision.terminate[w.node_id] = "scaled down"
            alive = [w for w in alive if w.node_id not in decision.terminate]
        elif len(alive) + quiet < target:
            if node_type not in suspended:
                decision.launch[node_type] = target - len(alive) - quiet
        elif idle_timeout > 0 and since_request >= idle_timeout and target > lim.min_workers:
            # At full size and quiet: release workers that did nothing for the idle timeout.
            busy_here = in_flight.union(decision.update)  # being set up or restarted: not idle
            candidates = [
                w
                for w in alive
                if idle_eligible(w, idle_timeout, heartbeat_timeout) and w.node_id not in busy_here
            ]
            for w in sorted(candidates, key=_removal_order)[: target - lim.min_workers]:
                reason = f"idle for {w.idle_for / 60:.1f} min"
                decision.terminate[w.node_id] = reason
                decision.released[w.node_id] = reason
                decision.desired[node_type] -= 1
    decision.update[:] = [n for n in decision.update if n not in decision.terminate]
    return decision


def needs_every_view(
    limits: Mapping[str, TypeLimits],
    desired: Mapping[str, int],
    workers: list[WorkerView],
    settled: Mapping[str, int],
) -> bool:
    """True when a type may have more workers than its target: choosing which to remove needs them all."""
    seen: dict[str, int] = defaultdict(int)
    for w in workers:
        seen[w.node_type] += 1
    for node_type, quiet in settled.items():
        lim = limits[node_type]
        if quiet and seen[node_type] + quiet > clamp_request(desired.get(node_type, lim.min_workers), lim):
            return True
    return False
