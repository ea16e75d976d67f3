"""One read of the process table serves every tree a heartbeat (or a burst of status polls) looks at."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from cloudtik_jupyter.node.metrics import MetricsSampler
from cloudtik_jupyter.node.process_table import ProcessTable
from cloudtik_jupyter.waiting import wait_for_sync

TREE = "sleep 60 & sleep 60 & (sleep 60 & wait) & wait"  # two children and a grandchild under a subshell


@pytest.fixture
def tree() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sh", "-c", TREE], start_new_session=True)
    try:
        yield proc
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=10)


def sleeps_below(table: ProcessTable, pid: int) -> int:
    return sum(1 for p in table.descendants(pid) if psutil.Process(p).name() == "sleep")


def test_descendants_are_the_whole_tree_as_of_the_last_read(tree: subprocess.Popen[bytes]) -> None:
    table = ProcessTable(max_age=0.0)  # every call reads
    wait_for_sync(lambda: sleeps_below(table, tree.pid) == 3, timeout=10, what="three sleeps in the tree")
    below = table.descendants(tree.pid)
    assert os.getpid() not in below and tree.pid not in below
    assert table.descendants(2**22 + 12345) == []  # no such process: nothing below it


def test_one_read_serves_every_tree_until_it_is_stale(tree: subprocess.Popen[bytes]) -> None:
    table = ProcessTable(max_age=3600.0)
    sampler = MetricsSampler(table)
    wait_for_sync(lambda: psutil.Process(tree.pid).children(recursive=True), timeout=10, what="the tree")
    for _ in range(20):  # twenty status polls, each looking at five services' trees
        for pid in (tree.pid, os.getpid(), 1, tree.pid, os.getppid()):
            sampler.tree(pid)
    assert table.reads == 1, "each tree read the whole process table again"

    stale = ProcessTable(max_age=0.05)  # a process started after a read shows up once the read is stale
    stale.descendants(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        wait_for_sync(lambda: child.pid in stale.descendants(os.getpid()), timeout=10, what="the new child")
        assert stale.reads >= 2
    finally:
        child.kill()
        child.wait(timeout=10)


def test_a_trees_usage_counts_its_descendants(tree: subprocess.Popen[bytes]) -> None:
    table = ProcessTable(max_age=0.0)
    wait_for_sync(lambda: sleeps_below(table, tree.pid) == 3, timeout=10, what="three sleeps in the tree")
    usage = MetricsSampler(table).tree(tree.pid)
    alone = psutil.Process(tree.pid).memory_info().rss
    members = [tree.pid, *table.descendants(tree.pid)]
    assert usage.memory_rss > alone
    assert usage.memory_rss <= sum(psutil.Process(p).memory_info().rss for p in members) * 1.5
    assert MetricsSampler(table).tree(2**22 + 12345).memory_rss == 0  # gone: nothing, no error
