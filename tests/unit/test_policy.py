"""The controller's per-tick decisions, as a pure function."""

from __future__ import annotations

from cloudtik_jupyter.head.policy import TypeLimits, WorkerView, decide

LIMITS = {"worker": TypeLimits(min_workers=2, max_workers=4)}
UP = "up-to-date"


def w(n: int, status: str = UP, **kw: object) -> WorkerView:
    fields: dict[str, object] = {"heartbeat_age": 0.5, **kw}
    return WorkerView(node_id=f"n{n}", node_type="worker", status=status, seq=n, **fields)  # type: ignore[arg-type]


def run(workers: list[WorkerView], desired: dict[str, int] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "update_tries": {},
        "in_flight": set(),
        "heartbeat_timeout": 30.0,
        "idle_timeout": 0.0,
        **kw,
    }
    return decide(LIMITS, desired or {}, workers, **args)  # type: ignore[arg-type]


def test_keeps_min_workers() -> None:
    assert run([]).launch == {"worker": 2}
    assert run([w(2)]).launch == {"worker": 1}
    assert run([w(2), w(3)]).empty


def test_scale_requests_are_clamped_to_min_max() -> None:
    assert run([w(2), w(3)], {"worker": 9}).launch == {"worker": 2}
    d = run([w(2), w(3), w(4), w(5)], {"worker": 0})
    assert sorted(d.terminate) == ["n4", "n5"]  # newest first, never below min
    assert d.desired == {"worker": 2}


def test_scale_down_prefers_not_ready_then_idle() -> None:
    d = run([w(2, idle_for=1), w(3, idle_for=50), w(4, status="setting-up")], {"worker": 2}, in_flight={"n4"})
    assert list(d.terminate) == ["n4"]
    d = run([w(2, idle_for=1), w(3, idle_for=50), w(4, idle_for=5)], {"worker": 2})
    assert list(d.terminate) == ["n3"]


def test_unset_up_and_stale_workers_are_updated_unless_in_flight() -> None:
    d = run([w(2, status="pending"), w(3, stale=True), w(4, status="setting-up")], in_flight={"n4"})
    assert d.update == ["n2", "n3"]


def test_failed_updates_are_retried_then_terminated_as_broken() -> None:
    d = run([w(2, status="update-failed"), w(3)], update_tries={"n2": 1})
    assert d.update == ["n2"] and not d.terminate
    d = run([w(2, status="update-failed"), w(3)], update_tries={"n2": 3})
    assert d.terminate == {"n2": "setup failed 3 times"} and d.broken == {"n2"}
    assert d.launch == {"worker": 1}  # replaced
    d = run([w(2, status="update-failed"), w(3)], update_tries={"n2": 3}, suspended=frozenset({"worker"}))
    assert "n2" in d.terminate and not d.launch  # broken setups don't churn nodes forever


def test_lost_heartbeats_and_failed_services_trigger_recovery() -> None:
    stale = WorkerView("n2", "worker", UP, 2, heartbeat_age=31.0)
    never = WorkerView("n3", "worker", UP, 3, heartbeat_age=None, up_for=40.0)
    young = WorkerView("n4", "worker", UP, 4, heartbeat_age=None, up_for=1.0)
    sick = w(5, failed_services=("spark-worker",))
    d = run([stale, never, young, sick], {"worker": 4})
    assert d.update == ["n2", "n3", "n5"]
    # A silent worker gets one recovery attempt; still silent afterwards, it is replaced at once.
    d = run([stale, never], update_tries={"n2": 1})
    assert d.terminate == {"n2": "unreachable (no heartbeat for 31s) after a recovery attempt"}
    assert d.launch == {"worker": 1} and not d.broken  # a hung machine does not suspend launches
    # A worker whose services keep failing gets max_update_tries recoveries.
    assert run([w(2), sick], update_tries={"n5": 2}).update == ["n5"]
    d = run([w(2), sick], update_tries={"n5": 3})
    assert d.terminate == {"n5": "unhealthy (service(s) failed: spark-worker) after 3 recoveries"}


def test_a_worker_set_up_by_another_head_is_adopted_at_once() -> None:
    d = run([w(2, adopt=True), w(3)])
    assert d.update == ["n2"] and not d.terminate and not d.launch


def eligible(n: int, idle_for: float = 100.0) -> WorkerView:
    return w(n, idle_for=idle_for, up_for=100.0)


def test_idle_workers_above_min_are_released_and_the_request_lowered_by_exactly_them() -> None:
    workers = [eligible(2), eligible(3), eligible(4), eligible(5, idle_for=1)]
    d = run(workers, {"worker": 4}, idle_timeout=60.0)
    assert len(d.released) == 2 and "n5" not in d.terminate
    assert d.released.keys() == d.terminate.keys()
    assert all(reason.startswith("idle for") for reason in d.released.values())
    assert d.desired == {"worker": 2} and not d.launch


def test_scale_up_is_never_capped_by_the_idle_timeout() -> None:
    """Issue 13, item 1: 3 -> 4 with the default idle timeout launched nothing (the target was lowered
    to the current count and written back over the request)."""
    three = [eligible(2), eligible(3), eligible(4)]
    d = run(three, {"worker": 4}, idle_timeout=300.0)
    assert d.launch == {"worker": 1} and not d.terminate and d.desired == {"worker": 4}
    # ... nor is a lost worker above min left unreplaced
    d = run([eligible(2), eligible(3)], {"worker": 3}, idle_timeout=300.0)
    assert d.launch == {"worker": 1} and d.desired == {"worker": 3}


def test_no_idle_release_near_a_start_or_a_scale_request() -> None:
    young = [w(n, idle_for=100.0, up_for=10.0) for n in (2, 3, 4)]
    assert not run(young, {"worker": 3}, idle_timeout=60.0).terminate  # just started
    quiet = [eligible(n) for n in (2, 3, 4)]
    assert not run(quiet, {"worker": 3}, idle_timeout=60.0, since_request=30.0).terminate
    assert len(run(quiet, {"worker": 3}, idle_timeout=60.0, since_request=61.0).released) == 1
    busy = [eligible(n, idle_for=10.0) for n in (2, 3, 4)]
    assert not run(busy, {"worker": 3}, idle_timeout=60.0).terminate


def test_workers_being_set_up_or_restarted_are_never_released_as_idle() -> None:
    """Their last report says nothing of what they do now (found by the sequence test: a worker a new head
    was adopting started work before it could report it, and was released as idle)."""
    quiet = [eligible(2), eligible(3), eligible(4)]
    assert len(run(quiet, {"worker": 3}, idle_timeout=60.0).released) == 1
    assert not run(quiet, {"worker": 3}, idle_timeout=60.0, in_flight={"n2", "n3", "n4"}).released
    stale = [w(n, idle_for=100.0, up_for=100.0, heartbeat_age=40.0) for n in (2, 3, 4)]
    assert not run(stale, {"worker": 3}, idle_timeout=60.0, in_flight={"n2", "n3", "n4"}).released


def test_a_scale_up_above_min_stands_when_no_worker_is_idle() -> None:
    # 3 busy workers (min 2), 4 requested: launch one; the request is not lowered to what is alive.
    d = run([w(2), w(3), w(4)], {"worker": 4}, idle_timeout=60.0)
    assert d.launch == {"worker": 1} and d.desired == {"worker": 4} and not d.terminate


def test_unknown_node_types_are_retired() -> None:
    gone = WorkerView("n9", "old-type", UP, 9, heartbeat_age=0.1)
    assert "n9" in run([w(2), w(3), gone]).terminate
