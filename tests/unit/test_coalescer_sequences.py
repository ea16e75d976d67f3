"""The watcher's coalescer over random sequences of store changes (cluster/follow.py), on a simulated clock:
never two looks within one heartbeat interval unless a node was removed in between, every change looked at
within an interval, a removal at once, and a look every period when nothing changes. Then the controller's
silence watch (head/silence.py): a node is reported once per silence."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from cloudtik_jupyter.cluster.follow import Coalescer, Seen, wait_for_look
from cloudtik_jupyter.head.silence import SILENT_AFTER, SilenceWatch

EPS = 1e-9


class Simulation:
    """Changes at given times; `poll` advances the clock to the next one (or by the whole timeout)."""

    def __init__(self, changes: list[tuple[float, Seen]]) -> None:
        self.pending = sorted(changes, key=lambda c: c[0])
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def poll(self, timeout: float) -> Seen:
        assert timeout > 0
        if self.pending and self.pending[0][0] <= self.now + timeout:
            at, seen = self.pending.pop(0)
            self.now = max(self.now, at)
            return seen
        self.now += timeout
        return Seen.NOTHING


def run(interval: float, period: float, changes: list[tuple[float, Seen]], horizon: float) -> list[float]:
    sim = Simulation(changes)
    coalescer = Coalescer(interval, period)
    looks: list[float] = []

    async def watch() -> None:
        while sim.now <= horizon:
            coalescer.looked(sim.now)
            looks.append(sim.now)
            await wait_for_look(coalescer, sim.poll, sim.clock)

    asyncio.run(watch())
    return looks


changes_st = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=20.0, allow_nan=False),
        st.sampled_from([Seen.CHANGE, Seen.CHANGE, Seen.CHANGE, Seen.REMOVAL]),
    ),
    max_size=200,
)


@settings(max_examples=150, deadline=None)
@given(
    interval=st.floats(min_value=0.1, max_value=2.0),
    period=st.floats(min_value=0.1, max_value=5.0),
    changes=changes_st,
)
def test_at_most_one_look_per_interval_and_every_change_is_looked_at(
    interval: float, period: float, changes: list[tuple[float, Seen]]
) -> None:
    looks = run(interval, period, changes, horizon=25.0)
    removals = sorted(t for t, seen in changes if seen is Seen.REMOVAL)
    for before, after in itertools.pairwise(looks):
        removed_between = any(before - EPS <= t <= after + EPS for t in removals)
        assert after - before >= interval - EPS or removed_between, (before, after)
        assert after - before <= max(interval, period) + EPS  # ages move on: a look every period
    for at, seen in changes:
        first_after = min(t for t in looks if t >= at - EPS)
        limit = 0.0 if seen is Seen.REMOVAL else interval
        assert first_after - at <= limit + EPS, (at, seen, first_after)


def test_a_thousand_heartbeats_a_second_cost_one_look_per_interval() -> None:
    beats = [(i / 1000, Seen.CHANGE) for i in range(10_000)]  # 10 s of 1,000 heartbeats a second
    looks = run(1.0, 1.0, beats, horizon=10.0)
    assert len(looks) <= 12  # one per second (plus the first and the last)
    assert looks[-1] >= beats[-1][0]  # the last state is delivered


def test_silence_is_reported_once_per_silence() -> None:
    watch = SilenceWatch()
    interval = 1.0
    known = {"vn-1", "vn-2", "vn-3"}
    beats = {"vn-1": 100.0, "vn-2": 100.0}  # vn-3 never reported: being set up, not silent
    assert watch.newly_silent(beats, known, 100.0 + SILENT_AFTER * interval, interval) == []
    assert sorted(watch.newly_silent(beats, known, 102.0, interval)) == ["vn-1", "vn-2"]
    assert watch.newly_silent(beats, known, 103.0, interval) == []  # once per silence
    beats["vn-1"] = 103.0  # it beats again, then falls silent again
    assert watch.newly_silent(beats, known, 103.5, interval) == []
    assert watch.newly_silent(beats, known, 105.0, interval) == ["vn-1"]
    assert watch.newly_silent(beats, {"vn-3"}, 106.0, interval) == [] and watch.suspected == set()
