"""Helpers and fault injectors for the fault suite: real virtual clusters, real processes, real signals.

Each module shares one cluster between its tests (they run in file order; every test ends converged),
with short heartbeat/recovery timeouts so faults heal in seconds. Every injector undoes itself: stopped
processes are continued or killed, iptables rules are removed, and at the end the cluster is brought
down and the test fails if any process of its state dir is left (`teardown_virtual`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from cloudtik_jupyter.api import Cluster
from cloudtik_jupyter.providers.virtual import state
from cloudtik_jupyter.records.cluster import ClusterStatus
from cloudtik_jupyter.waiting import wait_for_sync
from tests.cli_process import ROOT as ROOT
from tests.cli_process import cli as cli  # the fault tests' terminal, with the injectors below
from tests.virtual_nodes import processes_using_home

# Heartbeats every 0.5 s, silent after 3 s, one recovery attempt of at most 5 s.
FAST_HEAD = {
    "controller_interval": 1.0,
    "heartbeat_interval": 0.5,
    "heartbeat_timeout": 3.0,
    "recovery_timeout": 5.0,
}


def cluster_config(name: str, **extra: Any) -> dict[str, Any]:
    workers = extra.pop("workers", {"min_workers": 2, "max_workers": 4})
    return {
        "cluster_name": name,
        "provider": {"type": "virtual"},
        "head_node_type": "head",
        "available_node_types": {"head": {}, "worker": workers},
        "head": {**FAST_HEAD, **extra.pop("head", {})},
        **extra,
    }


# -- looking at a cluster --------------------------------------------------------------------------


def node_tree(home: Path, node_id: str) -> list[psutil.Process]:
    record = state.read_record(home, node_id)
    assert record is not None, f"no record of {node_id}"
    root = psutil.Process(record.pid)
    return [root, *root.children(recursive=True)]


def node_processes(home: Path, node_id: str) -> list[psutil.Process]:
    """Live processes of one node (by its environment: they may have left the node's tree)."""
    found = []
    for proc in processes_using_home(home):
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("CLOUDTIK_NODE_ID") == node_id:
                found.append(proc)
    return found


def cmdline(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return " ".join(proc.cmdline())
    return ""


def agent_status(cluster: Cluster, node: str | None = None) -> dict[str, tuple[int, str]]:
    """Service name -> (pid, status), as the node's agent reports it."""
    (result,) = cluster.exec(
        "python3 -m cloudtik_jupyter.node.agent ctl ~/.cloudtik/node/agent status", node=node, check=True
    )
    return {s[0]: (s[1], s[2]) for s in json.loads(result.stdout)["services"]}


def agent_pids(cluster: Cluster, node: str | None = None) -> tuple[int, int]:
    """(agent, keeper) pids of a node."""
    (result,) = cluster.exec(
        "cat ~/.cloudtik/node/agent/agent.pid ~/.cloudtik/node/agent/keeper.pid", node=node, check=True
    )
    agent, keeper = result.stdout.split()
    return int(agent), int(keeper)


def converged(cluster: Cluster, workers: int, *, fresh: float = 2.5) -> ClusterStatus | None:
    """The status once `workers` workers are up-to-date, every node heartbeats and nothing is wrong."""
    status = cluster.status()
    nodes_ok = all(
        n.status == "up-to-date" and n.heartbeat_age is not None and n.heartbeat_age < fresh
        for n in status.nodes
    )
    if (
        len(status.workers) == workers
        and status.workers_desired == workers
        and nodes_ok
        and status.error is None
    ):
        return status
    return None


def wait_converged(
    cluster: Cluster, workers: int, *, timeout: float = 90, what: str = "", without: str | None = None
) -> ClusterStatus:
    """Wait for `converged`; with `without`, also for that node to be gone."""

    def check() -> ClusterStatus | None:
        status = converged(cluster, workers)
        if status is not None and without is not None and without in {n.node_id for n in status.nodes}:
            return None
        return status

    return wait_for_sync(
        check, timeout=timeout, what=what or f"{workers} healthy workers and a healthy head", max_interval=0.2
    )


def all_events(cluster: Cluster) -> list[tuple[float, str, str]]:
    """Every event in the head's store: (time, kind, message)."""

    async def read() -> list[tuple[float, str, str]]:
        head = await cluster._ctx.head()
        assert head is not None
        store = await cluster._ctx.store(head)
        return [(e.time, e.kind, e.message) for e in await store.events(10_000)]

    return cluster._sync(read())


def seq_counter(cluster: Cluster) -> int:
    """The head's sequence counter (the highest id handed out)."""

    async def read() -> int:
        head = await cluster._ctx.head()
        assert head is not None
        return await (await cluster._ctx.store(head)).seq_counter()

    return cluster._sync(read())


def assert_nothing_leaked(home: Path, status: ClusterStatus) -> None:
    """Exactly the cluster's nodes run: no process of a terminated node, one agent + keeper per node,
    unique seq ids."""
    live = {n.node_id for n in status.nodes}
    strays = []
    for proc in processes_using_home(home):
        with contextlib.suppress(psutil.Error):
            node = proc.environ().get("CLOUDTIK_NODE_ID")
            if node is not None and node not in live:
                strays.append(f"{proc.pid} ({node}): {cmdline(proc)}")
    assert not strays, f"processes of nodes that are gone: {strays}"
    for node_id in live:
        keepers = [p for p in node_processes(home, node_id) if "cloudtik_jupyter.node.start" in cmdline(p)]
        # node.start's keeper and the agent it forked keep node.start's command line: two per node
        assert len(keepers) == 2, f"{node_id}: expected one keeper and one agent, got {len(keepers)}"
    seqs = [n.seq for n in status.nodes]
    assert len(seqs) == len(set(seqs)), f"duplicate seq ids: {seqs}"


# -- injecting faults ------------------------------------------------------------------------------


def kill(pid: int) -> None:
    proc = psutil.Process(pid)
    proc.send_signal(signal.SIGKILL)
    psutil.wait_procs([proc], timeout=10)


@contextlib.contextmanager
def stopped(procs: list[psutil.Process]) -> Iterator[None]:
    """SIGSTOP `procs` (a hung machine: the cloud still says it runs); SIGCONT what is left afterwards."""
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.send_signal(signal.SIGCONT)


def can_partition() -> str | None:
    """Why this machine cannot cut traffic between two 127.x addresses, or None if it can."""
    if os.geteuid() != 0:
        return "needs root to add iptables rules"
    if shutil.which("iptables") is None:
        return "needs iptables (apt-get install iptables)"
    probe = subprocess.run(["iptables", "-S", "OUTPUT"], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"iptables does not work here: {probe.stderr.strip()}"


@contextlib.contextmanager
def partitioned(a: str, b: str) -> Iterator[None]:
    """Drop every packet between node addresses `a` and `b` (both ours, in 127.0.0.0/8), both ways."""
    assert a.startswith("127.") and b.startswith("127.") and a != b
    tag = f"cloudtik-faults-{os.getpid()}"
    rules = [["-s", a, "-d", b], ["-s", b, "-d", a]]
    added: list[list[str]] = []
    try:
        for rule in rules:
            spec = ["OUTPUT", *rule, "-m", "comment", "--comment", tag, "-j", "DROP"]
            subprocess.run(["iptables", "-I", *spec], check=True, capture_output=True)
            added.append(spec)
        yield
    finally:
        for spec in added:
            subprocess.run(["iptables", "-D", *spec], check=True, capture_output=True)
