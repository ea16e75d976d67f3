"""The head runs the cluster on its own: real redis-server, node agents, the controller, real node processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from cloudtik_jupyter import paths
from cloudtik_jupyter.api import Cluster
from cloudtik_jupyter.cluster.live import redis_dir
from cloudtik_jupyter.errors import ConfigError
from cloudtik_jupyter.providers.virtual import state
from cloudtik_jupyter.waiting import wait_for_sync

FAST = {"controller_interval": 0.5, "heartbeat_interval": 0.5, "heartbeat_timeout": 3.0}


def config(
    name: str, *, workers: int = 2, max_workers: int = 4, head: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "cluster_name": name,
        "provider": {"type": "virtual"},
        "head_node_type": "head",
        "available_node_types": {"head": {}, "worker": {"min_workers": workers, "max_workers": max_workers}},
        "head": {**FAST, **(head or {})},
        "idle_timeout_minutes": 0,
        **extra,
    }


def kill_tree(home: Path, node_id: str) -> None:
    """What a dying instance looks like: the node's whole process tree gone at once."""
    record = state.read_record(home, node_id)
    assert record is not None
    root = psutil.Process(record.pid)
    procs = [root, *root.children(recursive=True)]
    for p in procs:
        p.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=10)


def workers_of(cluster: Cluster) -> list[Any]:
    return cluster.status().workers


def test_store_heartbeats_and_security(cloudtik_home: Path) -> None:
    cluster = Cluster(config("hb")).up()
    status = cluster.status()
    assert [n.seq for n in status.nodes] == [1, 2, 3]
    # Every node's agent heartbeats into the head's store; the view reads it through the SSH forward.
    wait_for_sync(
        lambda: all(n.heartbeat_age is not None and n.heartbeat_age < 3 for n in cluster.status().nodes),
        timeout=20,
        what="a fresh heartbeat from every node",
    )
    assert all(n.memory_total for n in cluster.status().nodes)

    head_ip = status.nodes[0].internal_ip
    endpoints = json.loads((redis_dir(cluster._ctx) / "endpoints.json").read_text())
    password_file = redis_dir(cluster._ctx) / "password"
    assert password_file.stat().st_mode & 0o777 == 0o600
    password = password_file.read_text().strip()
    ports = [endpoints["primary"]["port"], *(s["port"] for s in endpoints["shards"])]
    assert len(ports) == 3  # a primary and the default 2 shards

    for port in ports:
        with pytest.raises(redis.AuthenticationError):  # no password, no access
            redis.Redis(host=head_ip, port=port, socket_timeout=5).get("x")
        assert redis.Redis(host=head_ip, port=port, password=password, socket_timeout=5).ping()
        with pytest.raises(redis.ConnectionError):  # bound to the head's private address only
            redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=2).ping()
    servers = [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] and "redis-server" in p.info["cmdline"][0]
    ]
    for proc in servers:
        assert password not in " ".join(proc.info["cmdline"]), "the password must never be on a command line"
    cluster.down()


def test_lost_worker_is_replaced_with_a_new_seq_id(cloudtik_home: Path) -> None:
    cluster = Cluster(config("heal")).up()
    before = workers_of(cluster)
    victim = before[0]
    kill_tree(cloudtik_home, victim.node_id)

    def replaced() -> list[Any] | None:
        workers = workers_of(cluster)
        ids = {w.node_id for w in workers}
        if victim.node_id in ids or len(workers) != 2:
            return None
        return workers if all(w.status == "up-to-date" for w in workers) else None

    after = wait_for_sync(replaced, timeout=60, what="the lost worker to be replaced")
    new = [w for w in after if w.node_id not in {b.node_id for b in before}]
    assert len(new) == 1
    assert new[0].seq == 4  # never reuses a seq id (head 1, workers 2 and 3, replacement 4)
    events = [e.kind for e in cluster.status().events]
    assert "node-lost" in events and "node-launched" in events
    cluster.down()


def test_setup_retries_then_broken_workers_are_bounded(cloudtik_home: Path) -> None:
    flaky = 'n=$(cat ~/tries 2>/dev/null || echo 0); n=$((n+1)); echo $n > ~/tries; [ "$n" -ge 3 ]'
    cluster = Cluster(config("flaky", workers=1, worker_setup_commands=[flaky])).up()
    (worker,) = cluster.status().workers
    assert worker.status == "up-to-date"
    (result,) = cluster.exec("cat ~/tries", node=worker.node_id, check=True)
    assert result.stdout.strip() == "3"  # failed twice, succeeded on the third try
    cluster.down()

    broken = config(
        "broken",
        workers=1,
        head={"max_update_tries": 1, "max_failed_launches": 2},
        worker_setup_commands=["echo no disk >&2; exit 9"],
    )
    cluster = Cluster(broken).up(with_workers=False)

    def suspended() -> bool:
        # The controller says so before it terminates the last broken worker: wait for both.
        kinds = [e.kind for e in cluster.status().events]
        return "launch-suspended" in kinds and kinds.count("node-terminated") >= 2

    wait_for_sync(suspended, timeout=90, what="the controller to stop replacing broken workers")
    events = cluster.status().events
    # The first worker was launched by `up` beside the head; the controller launched its replacement.
    launched = [e for e in events if e.kind == "node-launched"]
    terminated = [e for e in events if e.kind == "node-terminated"]
    assert len(launched) == 1 and len(terminated) == 2, [(e.kind, e.message) for e in events]
    assert any("exited with 9" in e.message and "no disk" in e.message for e in events)
    cluster.down()


def test_scale_up_down_and_limits(cloudtik_home: Path) -> None:
    cluster = Cluster(config("scaly", workers=1, max_workers=4)).up()
    assert len(workers_of(cluster)) == 1
    cluster.scale(2)
    assert len(workers_of(cluster)) == 2
    cluster.scale(4)
    workers = workers_of(cluster)
    assert len(workers) == 4 and all(w.status == "up-to-date" for w in workers)
    assert len({w.seq for w in workers}) == 4
    cluster.scale(1)
    assert len(workers_of(cluster)) == 1
    with pytest.raises(ConfigError, match=r"cannot scale worker to 5: allowed 1\.\.4"):
        cluster.scale(5)
    assert cluster.status().workers_desired == 1
    cluster.down()


def test_idle_workers_above_min_are_released(cloudtik_home: Path) -> None:
    cluster = Cluster(config("idle", workers=1, max_workers=3, idle_timeout_minutes=0.03)).up()
    cluster.scale(3, wait=False)
    wait_for_sync(lambda: len(workers_of(cluster)) >= 2, timeout=30, what="the scale-up to start")
    wait_for_sync(
        lambda: len(workers_of(cluster)) == 1 and cluster.status().workers_desired == 1,
        timeout=60,
        what="idle workers above min_workers to be terminated",
    )
    assert any("idle" in e.message for e in cluster.status().events)
    cluster.down()


def test_controller_killed_mid_scale_converges(cloudtik_home: Path) -> None:
    cluster = Cluster(config("phoenix", workers=1)).up()
    cluster.scale(3, wait=False)
    (status,) = cluster.exec(
        "python3 -m cloudtik_jupyter.node.agent ctl ~/.cloudtik/node/agent status", check=True
    )
    controller = next(s for s in json.loads(status.stdout)["services"] if s[0] == "controller")
    os.kill(controller[1], signal.SIGKILL)  # the head survives; its agent must restart the controller
    ready = cluster.wait_for_ready(timeout=90)
    assert len(ready.workers) == 3 and all(w.status == "up-to-date" for w in ready.workers)
    assert len({w.seq for w in ready.workers}) == 3
    (status,) = cluster.exec(
        "python3 -m cloudtik_jupyter.node.agent ctl ~/.cloudtik/node/agent status", check=True
    )
    restarted = next(s for s in json.loads(status.stdout)["services"] if s[0] == "controller")
    assert restarted[1] != controller[1] and restarted[2] == "running"
    cluster.down()


def test_watch_follows_the_store(cloudtik_home: Path) -> None:
    cluster = Cluster(config("watch", workers=1)).up()

    async def watch_until_two() -> int:
        seen = 0
        async for status in cluster.watch_async():
            seen += 1
            if seen == 1:
                await cluster.scale_async(2, wait=False)
            if len(status.workers) == 2 and status.workers_ready == 2:
                return seen
        return seen

    assert asyncio.run(asyncio.wait_for(watch_until_two(), timeout=60)) >= 2
    cluster.down()
    assert not paths.cluster_dir("watch").exists()
