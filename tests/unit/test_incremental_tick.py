"""The controller's incremental tick decides exactly as a full one.

An incremental tick views only the workers that are not settled (`Observations.split`) and gives `decide`
a count of the others. A hypothesis state machine drives two controllers' memories through the same random
sequence of changes (status and config changes, heartbeats that come, stop and come back, busy/idle and
failing services, shells, head changes, recoveries in flight, tries, scale requests, wall-clock steps,
nodes appearing and vanishing); one views every worker every tick, the other ticks incrementally (with a
full reconcile only when it asks for one). After every tick both must reach the same `Decision` and
remember the same things.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from cloudtik_jupyter.cluster.context import NodeRef
from cloudtik_jupyter.config.schema import HeadConfig
from cloudtik_jupyter.head.observe import Observations
from cloudtik_jupyter.head.policy import Decision, TypeLimits, decide, healthy
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.base import NodeAddress
from cloudtik_jupyter.state.records import NodeActivity, NodeHealth

LIMITS = {"cpu": TypeLimits(1, 6), "gpu": TypeLimits(0, 3)}
HASH = "hash-now"
CONFIG = HeadConfig(heartbeat_timeout=30.0, idle_cpu_percent=5.0)
IDS = [f"w{i}" for i in range(6)]
HEALTH = {
    "idle": NodeHealth(1.0, ()),
    "busy-service": NodeHealth(80.0, ()),
    "busy-user": NodeHealth(0.0, (), NodeActivity(user_cpu=97.0)),
    "shell": NodeHealth(0.0, (), NodeActivity(sessions=1)),
    "tasks": NodeHealth(0.0, (), NodeActivity(runtime_busy=True)),
    "failed": NodeHealth(0.0, ("spark-worker",)),
}
UP = T.NodeStatus.UP_TO_DATE.value
STATUSES = [T.NodeStatus.UP_TO_DATE.value] * 4 + [
    T.NodeStatus.PENDING.value,
    T.NodeStatus.UPDATE_FAILED.value,
]


def tags_for(node_type: str, status: str, launch_hash: str, head_id: str | None, seq: int) -> dict[str, str]:
    tags = {
        T.NODE_KIND: T.KIND_WORKER,
        T.NODE_TYPE: node_type,
        T.NODE_STATUS: status,
        T.LAUNCH_HASH: launch_hash,
        T.NODE_SEQ: str(seq),
    }
    if head_id is not None:
        tags[T.HEAD_ID] = head_id
    return tags


class IncrementalMatchesFull(RuleBasedStateMachine):
    @initialize(idle_minutes=st.sampled_from([0.0, 5.0]), cpu=st.integers(1, 6), gpu=st.integers(0, 3))
    def start(self, idle_minutes: float, cpu: int, gpu: int) -> None:
        self.full, self.incremental = Observations(), Observations()
        self.idle_timeout = idle_minutes * 60
        self.now, self.mono = 1_000_000.0, 500.0
        self.head: NodeRef | None = NodeRef("head-a", {T.NODE_KIND: T.KIND_HEAD}, NodeAddress("127.0.0.1"))
        self.workers: dict[str, dict[str, str]] = {}
        self.beats: dict[str, float] = {}
        self.health: dict[str, NodeHealth] = {}
        self.tries: dict[str, int] = {}
        self.in_flight: set[str] = set()
        self.desired: dict[str, int] = {"cpu": cpu, "gpu": gpu}
        self.since_request = float("inf")
        self.next_full = True
        self.settled_ticks = 0  # incremental ticks that left workers out (the shortcut was taken)
        self.decisions: tuple[Decision, Decision] | None = None

    # -- the world changing -----------------------------------------------------------------------

    @rule(
        node_id=st.sampled_from(IDS),
        node_type=st.sampled_from(["cpu", "cpu", "gpu", "retired-type"]),
        status=st.sampled_from(STATUSES),
        launch_hash=st.sampled_from([HASH, HASH, HASH, "hash-old"]),
        head_id=st.sampled_from([None, "head-a", "head-a", "head-old"]),
    )
    def node_changes(
        self, node_id: str, node_type: str, status: str, launch_hash: str, head_id: str | None
    ) -> None:
        """A node appears or its tags change (launched, set up, failed, re-tagged by a new head)."""
        self.workers[node_id] = tags_for(node_type, status, launch_hash, head_id, IDS.index(node_id) + 2)

    @rule(node_id=st.sampled_from(IDS), node_type=st.sampled_from(sorted(LIMITS)))
    def node_set_up(self, node_id: str, node_type: str) -> None:
        """The common case: a worker set up by this head with this config."""
        self.workers[node_id] = tags_for(node_type, UP, HASH, "head-a", IDS.index(node_id) + 2)

    @rule(
        kind=st.sampled_from(sorted(HEALTH)),
        odd=st.sampled_from(sorted(HEALTH)),
        node_id=st.sampled_from(IDS),
    )
    def everyone_reports(self, kind: str, odd: str, node_id: str) -> None:
        """Every node heartbeats, one of them with a different report."""
        for other in self.workers:
            self.beats[other] = self.now
            self.health[other] = HEALTH[odd if other == node_id else kind]
        self.tick()

    @rule(steps=st.integers(1, 3))
    def quiet_period(self, steps: int) -> None:
        """Everyone reports idle for a while (what makes idle releases possible)."""
        for _ in range(steps):
            for other in self.workers:
                self.beats[other] = self.now
                self.health[other] = HEALTH["idle"]
            self.now += 10.0
            self.mono += 160.0
            self.since_request += 160.0
            self.tick()

    @rule(node_id=st.sampled_from(IDS), status=st.sampled_from(STATUSES))
    def status_changes(self, node_id: str, status: str) -> None:
        if node_id in self.workers:
            self.workers[node_id] = {**self.workers[node_id], T.NODE_STATUS: status}

    @rule(node_id=st.sampled_from(IDS))
    def node_vanishes(self, node_id: str) -> None:
        self.workers.pop(node_id, None)
        self.beats.pop(node_id, None)
        self.health.pop(node_id, None)
        for memory in (self.full, self.incremental):
            memory.forget(node_id)

    @rule(ids=st.sets(st.sampled_from(IDS)), kind=st.sampled_from(sorted(HEALTH)))
    def heartbeats(self, ids: set[str], kind: str) -> None:
        for node_id in ids:
            self.beats[node_id] = self.now
            self.health[node_id] = HEALTH[kind]

    @rule(node_id=st.sampled_from(IDS))
    def store_forgets(self, node_id: str) -> None:
        """A shard restarted empty: the node's last heartbeat and report are gone."""
        self.beats.pop(node_id, None)
        self.health.pop(node_id, None)

    @rule(
        wall=st.sampled_from([0.0, 1.0, 5.0, 29.9, 30.0, 30.5, 299.0, 300.0, 301.0, 900.0, -40.0]),
        mono=st.sampled_from([0.0, 1.0, 5.0, 10.0, 10.5, 30.0, 150.0, 300.0, 301.0, 900.0]),
    )
    def time_passes(self, wall: float, mono: float) -> None:
        self.now += wall  # the wall clock may step back; the monotonic one never does
        self.mono += mono
        self.since_request += mono
        self.tick()  # the controller ticks as time passes

    @rule(ids=st.sets(st.sampled_from(IDS), max_size=3))
    def updates_in_flight(self, ids: set[str]) -> None:
        self.in_flight = ids

    @rule(node_id=st.sampled_from(IDS), tries=st.integers(0, 3))
    def tries_change(self, node_id: str, tries: int) -> None:
        if tries:
            self.tries[node_id] = tries
        else:
            self.tries.pop(node_id, None)

    @rule(node_id=st.sampled_from(IDS))
    def restarted(self, node_id: str) -> None:
        for memory in (self.full, self.incremental):
            memory.restarted_at[node_id] = self.mono

    @rule(node_type=st.sampled_from(sorted(LIMITS)), count=st.integers(0, 7))
    def scale(self, node_type: str, count: int) -> None:
        self.desired[node_type] = count
        self.since_request = 0.0

    @rule(head_id=st.sampled_from(["head-a", "head-b"]))
    def head_changes(self, head_id: str) -> None:
        self.head = NodeRef(head_id, {T.NODE_KIND: T.KIND_HEAD}, NodeAddress("127.0.0.1"))

    @rule()
    def full_reconcile_due(self) -> None:
        self.next_full = True

    # -- the two controllers ------------------------------------------------------------------------

    def _decide(self, memory: Observations, full: bool) -> tuple[Decision, set[str], int]:
        workers = [NodeRef(i, dict(t), NodeAddress("127.0.0.2")) for i, t in sorted(self.workers.items())]
        views, settled = memory.for_tick(
            workers,
            self.head,
            dict(self.beats),
            dict(self.health),
            self.now,
            self.mono,
            full=full,
            worker_hash=HASH,
            config=CONFIG,
            limits=LIMITS,
            desired=self.desired,
            in_flight=self.in_flight,
            tries=self.tries,
            idle_timeout=self.idle_timeout,
        )
        decision = decide(
            LIMITS,
            self.desired,
            views,
            update_tries=self.tries,
            in_flight=self.in_flight,
            heartbeat_timeout=CONFIG.heartbeat_timeout,
            idle_timeout=self.idle_timeout,
            since_request=self.since_request,
            settled=settled,
        )
        # the controller clears the tries of workers that are healthy again (from the views it has)
        cleared = {
            v.node_id
            for v in views
            if self.tries.get(v.node_id)
            and v.node_id not in self.in_flight
            and healthy(v, CONFIG.heartbeat_timeout)
        }
        return decision, cleared, sum(settled.values())

    @rule()
    def tick(self) -> None:
        expected, expected_cleared, none_settled = self._decide(self.full, full=True)
        got, cleared, settled = self._decide(self.incremental, full=self.next_full)
        self.next_full = False
        assert none_settled == 0
        assert got == expected, (got, expected)
        assert cleared == expected_cleared
        self.settled_ticks += bool(settled)

    @invariant()
    def same_memory(self) -> None:
        for table in ("up_since", "busy_at", "failed_since", "restarted_at"):
            assert getattr(self.incremental, table) == getattr(self.full, table), table


IncrementalMatchesFull.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestIncrementalMatchesFull = IncrementalMatchesFull.TestCase


def settled_cluster(
    count: int, memory: Observations, health: NodeHealth
) -> tuple[list[NodeRef], dict[str, float]]:
    workers = [
        NodeRef(
            f"w{i}",
            tags_for("cpu", T.NodeStatus.UP_TO_DATE.value, HASH, "head-a", i + 2),
            NodeAddress("127.0.0.2"),
        )
        for i in range(count)
    ]
    for w in workers:
        memory.up_since[w.node_id] = 0.0
        memory.busy_at[w.node_id] = 0.0
    return workers, {w.node_id: 1000.0 for w in workers}


def test_settled_workers_are_counted_not_viewed() -> None:
    """The point of the incremental tick: a quiet cluster at its size gets no views, and nothing to do."""
    memory = Observations()
    workers, beats = settled_cluster(500, memory, HEALTH["busy-service"])
    head = NodeRef("head-a", {T.NODE_KIND: T.KIND_HEAD}, NodeAddress("127.0.0.1"))
    health = {w.node_id: HEALTH["busy-service"] for w in workers}
    limits = {"cpu": TypeLimits(1, 500)}
    args = dict(worker_hash=HASH, config=CONFIG, limits=limits, in_flight=set(), tries={}, idle_timeout=300.0)
    views, settled = memory.for_tick(
        workers, head, beats, health, 1010.0, 50.0, full=False, desired={"cpu": 500}, **args
    )
    assert (views, settled) == ([], {"cpu": 500})
    assert set(memory.busy_at.values()) == {50.0}  # busy now, as a view would have recorded
    decision = decide(
        limits,
        {"cpu": 500},
        views,
        update_tries={},
        in_flight=set(),
        heartbeat_timeout=30.0,
        idle_timeout=300.0,
        settled=settled,
    )
    assert decision.empty and decision.desired == {"cpu": 500}
    # One silent worker is looked at (and recovered); a scale-down needs every view to choose whom to remove.
    del beats["w7"]
    views, settled = memory.for_tick(
        workers, head, beats, health, 1010.0, 51.0, full=False, desired={"cpu": 500}, **args
    )
    assert [v.node_id for v in views] == ["w7"] and settled == {"cpu": 499}
    views, settled = memory.for_tick(
        workers, head, beats, health, 1010.0, 52.0, full=False, desired={"cpu": 400}, **args
    )
    assert len(views) == 500 and settled == {}


def test_directed_sequences() -> None:
    """Sequences the random search reaches only now and then, run every time: an idle release among
    settled workers, a pending worker set up after its first view, a recovered worker's tries cleared."""
    m = IncrementalMatchesFull()
    m.start(idle_minutes=5.0, cpu=2, gpu=0)
    m.node_set_up("w0", "cpu")
    m.node_set_up("w1", "cpu")
    m.everyone_reports("busy-user", "busy-user", "w0")
    m.quiet_period(3)  # every tick after the first compares a release decided on settled workers
    m.node_changes("w2", "gpu", T.NodeStatus.PENDING.value, HASH, "head-a")
    m.scale("gpu", 1)
    m.everyone_reports("busy-service", "busy-service", "w2")
    m.status_changes("w2", UP)
    m.tries_change("w0", 1)
    m.everyone_reports("busy-service", "busy-service", "w2")
    m.time_passes(wall=1.0, mono=1.0)
    m.same_memory()
    assert m.settled_ticks >= 3


def test_decide_refuses_settled_workers_it_would_have_to_choose_among() -> None:
    """Above target, `decide` must choose whom to remove: counted workers cannot be chosen, so it refuses
    (the controller views every worker then: `needs_every_view`)."""
    limits = {"cpu": TypeLimits(0, 5)}
    with pytest.raises(ValueError, match="needs every view"):
        decide(
            limits,
            {"cpu": 2},
            [],
            update_tries={},
            in_flight=set(),
            heartbeat_timeout=30.0,
            idle_timeout=0,
            settled={"cpu": 3},
        )
    assert decide(
        limits,
        {"cpu": 5},
        [],
        update_tries={},
        in_flight=set(),
        heartbeat_timeout=30.0,
        idle_timeout=0,
        settled={"cpu": 3},
    ).launch == {"cpu": 2}
