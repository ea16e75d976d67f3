"""What a node's agent reports as activity, measured on real processes: CPU of the node's other processes,
shell sessions (processes on a terminal), the agent's own tree excluded."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from cloudtik_jupyter.node.activity import NODE_ROOT_ENV, ActivitySampler
from cloudtik_jupyter.waiting import wait_for_sync

BURN = f"{sys.executable} -c 'while True: pass'"


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> Iterator[subprocess.Popen[bytes]]:
    """A stand-in node root: a shell whose children are a CPU burner and one shell session on a pty, in
    which a shell runs two commands (three processes on one terminal: one session)."""
    if shutil.which("script") is None:
        pytest.fail("`script` (util-linux / bsdutils) is needed to open a pty session")
    root = subprocess.Popen(
        ["sh", "-c", f"{BURN} & script -qfc 'sleep 60 & sleep 60; wait' /dev/null </dev/null >/dev/null & wait"],
        start_new_session=True,
    )
    monkeypatch.setenv(NODE_ROOT_ENV, str(root.pid))
    try:
        yield root
    finally:
        procs = [root_proc := psutil.Process(root.pid), *root_proc.children(recursive=True)]
        for p in procs:
            p.kill()
        psutil.wait_procs(procs, timeout=10)
        root.wait()


def test_user_processes_and_shell_sessions_make_a_node_busy(node: subprocess.Popen[bytes]) -> None:
    sampler = ActivitySampler()

    def busy() -> tuple[float, int] | None:
        cpu, sessions = sampler.sample(())
        return (cpu, sessions) if cpu > 5 and sessions >= 1 else None  # 5: the default threshold

    cpu, sessions = wait_for_sync(busy, timeout=20, what="the burner's CPU and the pty session")
    assert sessions == 1

    # What the agent runs (its own tree: the services) is not the node's work.
    burner = next(p for p in psutil.Process(node.pid).children() if "while True" in " ".join(p.cmdline()))
    quiet = ActivitySampler()
    quiet.sample((burner.pid,))  # cpu_percent needs a first sample to measure from
    cpu, sessions = quiet.sample((burner.pid,))
    assert cpu < 5 and sessions == 1
