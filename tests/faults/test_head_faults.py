"""Idle release and head faults on one shared virtual cluster (1..3 workers, a 6 s idle timeout): busy
workers are never released, a half-dead head is reported by `status` and repaired by `up`, and after a
head crash `up` starts a new head that adopts every worker without handing out a seq id again.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from cloudtik_jupyter.api import Cluster
from cloudtik_jupyter.records.cluster import ClusterStatus
from cloudtik_jupyter.waiting import wait_for_sync

from .helpers import (
    all_events,
    assert_nothing_leaked,
    cli,
    cluster_config,
    cmdline,
    node_processes,
    node_tree,
    wait_converged,
)

pytestmark = pytest.mark.integration
NAME = "faults-b"
IDLE_MINUTES = 0.1


@pytest.fixture(scope="module")
def cluster(fault_home: Path) -> Iterator[Cluster]:
    config = cluster_config(
        NAME, workers={"min_workers": 1, "max_workers": 3}, idle_timeout_minutes=IDLE_MINUTES
    )
    c = Cluster(config).up()
    try:
        yield c
    finally:
        Cluster(NAME).down()


def releases(status: ClusterStatus) -> list[str]:
    return [e.message for e in status.events if e.kind == "idle-release"]


def workers_left(cluster: Cluster, count: int) -> ClusterStatus | None:
    status = cluster.status()
    ready = all(w.status == "up-to-date" for w in status.workers)
    return status if len(status.workers) == count and status.workers_desired == count and ready else None


def test_busy_workers_are_never_released(fault_home: Path, cluster: Cluster) -> None:
    """Issue 13, item 2: a worker running a user's 97 % CPU job was released as idle."""
    cluster.scale(3)
    cpu, shell, idle = wait_converged(cluster, 3).workers
    burn = "nohup python3 -c 'while True: pass' >/dev/null 2>&1 & echo $! > ~/work.pid"
    cluster.exec(burn, node=cpu.node_id, check=True)
    # An interactive shell session: a process on a terminal (as `cloudtik attach` gives).
    session = "nohup script -qfc 'sleep 600' /dev/null >/dev/null 2>&1 </dev/null & echo $! > ~/work.pid"
    cluster.exec(session, node=shell.node_id, check=True)

    status = wait_for_sync(
        lambda: workers_left(cluster, 2), timeout=90, what="the one idle worker to be released"
    )
    assert {w.node_id for w in status.workers} == {cpu.node_id, shell.node_id}
    (released,) = releases(status)  # in the same tick the busy two were judged, at the same age
    assert idle.node_id in released and "idle for" in released and "desired worker 3 -> 2" in released

    for node in (cpu, shell):  # the work ends: both become idle, one more goes (min_workers is 1)
        cluster.exec("pkill -P $(cat ~/work.pid); kill $(cat ~/work.pid)", node=node.node_id)
    status = wait_for_sync(
        lambda: workers_left(cluster, 1), timeout=90, what="one more idle worker to be released"
    )
    assert len(releases(status)) == 2 and "desired worker 2 -> 1" in releases(status)[-1]
    assert_nothing_leaked(fault_home, status)


def test_half_dead_head_is_reported_and_repaired_by_up(fault_home: Path, cluster: Cluster) -> None:
    """Issue 13, item 4: a head whose node runs but whose agent and services died showed as up-to-date."""
    before = wait_converged(cluster, 1)
    assert before.head is not None
    head = before.head.node_id
    history = set(all_events(cluster))
    on_head = node_tree(fault_home, head)[1:]  # all but the node itself (its SSH server)
    keeper = [p for p in on_head if "cloudtik_jupyter.node.start" in cmdline(p)]
    assert keeper and any("redis-server" in cmdline(p) for p in on_head)
    for proc in keeper + on_head:  # the keeper first, so nothing comes back on its own
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(on_head, timeout=10)

    status = cli(fault_home, "status", NAME)
    assert status.returncode == 1, status.stdout + status.stderr
    assert "Error:" in status.stderr and "cloudtik up" in status.stderr, status.stderr
    assert "Traceback" not in status.stdout + status.stderr

    up = cli(fault_home, "up", NAME, "--yes")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "repairing the head" in up.stdout
    after = wait_converged(cluster, 1, what="the repaired head and its worker")
    assert after.head is not None and after.head.node_id == head
    assert [w.node_id for w in after.workers] == [w.node_id for w in before.workers]
    assert history <= set(all_events(cluster))  # appendonly on the head's disk
    assert cli(fault_home, "status", NAME).returncode == 0
    assert_nothing_leaked(fault_home, after)


def test_head_crash_then_up_adopts_every_worker(fault_home: Path, cluster: Cluster) -> None:
    """Issue 13, item 3: after a head crash `up` terminated every worker and reused seq ids 2 and 3."""
    cluster.scale(2)
    before = wait_converged(cluster, 2)
    assert before.head is not None
    highest = max(n.seq for n in before.nodes)
    for proc in node_tree(fault_home, before.head.node_id):  # the head's instance dies, disk and all
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)
    wait_for_sync(
        lambda: cluster.status().head is None, timeout=30, what="the provider to report the head gone"
    )
    gone = cli(fault_home, "status", NAME)
    assert gone.returncode == 1 and "the head is gone" in gone.stderr, gone.stdout + gone.stderr

    up = cli(fault_home, "up", NAME, "--yes")
    assert up.returncode == 0, up.stdout + up.stderr
    after = wait_converged(cluster, 2, what="the new head to adopt both workers")
    assert after.head is not None and after.head.node_id != before.head.node_id
    assert [w.node_id for w in after.workers] == [w.node_id for w in before.workers]  # kept, not replaced
    kinds = [e.kind for e in after.events]
    assert "identity-restored" in kinds and kinds.count("node-adopting") == 2, kinds
    assert not any(e.kind == "node-terminated" for e in after.events)

    cluster.scale(3)  # the new head's first seq id is above every id the old one handed out
    grown = wait_converged(cluster, 3)
    (new,) = [w for w in grown.workers if w.node_id not in {b.node_id for b in before.workers}]
    assert new.seq > highest
    assert not node_processes(fault_home, before.head.node_id)
    assert_nothing_leaked(fault_home, grown)
