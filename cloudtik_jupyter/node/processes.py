"""Owning processes by PID: identify them safely and stop exactly them (never by name).

A service is spawned as the leader of its own session/process group (pgid == pid), so stopping it
signals that group, which also reaches helpers it forked (java behind a shell script), and
nothing else on the machine. A recorded PID is trusted only together with its start time, so a
recycled PID belonging to someone else is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

# psutil's create_time is rounded differently across calls on some systems; allow a little slack.
_CREATE_TIME_SLACK = 0.05


@dataclass(frozen=True)
class OwnedProcess:
    """A process this node started: its PID plus start time, so PID reuse can't fool us."""

    name: str
    pid: int
    create_time: float

    @classmethod
    def of(cls, name: str, pid: int) -> OwnedProcess:
        return cls(name, pid, psutil.Process(pid).create_time())

    def alive(self) -> bool:
        return is_same_process(self.pid, self.create_time)


def is_same_process(pid: int, create_time: float) -> bool:
    """True when `pid` is still the process that started at `create_time` (and not a zombie)."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > _CREATE_TIME_SLACK:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal_group_and_tree(pid: int, members: list[psutil.Process], sig: signal.Signals) -> None:
    # The group first (pgid == pid for processes we spawned), then any descendant that left it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
    for proc in members:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def terminate(owned: OwnedProcess, timeout: float = 5.0) -> None:
    """SIGTERM `owned` and its process tree, SIGKILL what is left after `timeout`. Idempotent.

    For processes this caller may not have spawned (a PID read from a file); an asyncio child is
    stopped by its supervisor instead, which must reap it itself.
    """
    if not owned.alive():
        return
    try:
        leader = psutil.Process(owned.pid)
        members = [leader, *leader.children(recursive=True)]
    except psutil.Error:
        return
    _signal_group_and_tree(owned.pid, members, signal.SIGTERM)
    _, alive = psutil.wait_procs(members, timeout=timeout)
    if alive:
        _signal_group_and_tree(owned.pid, alive, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=timeout)
    # Daemons that stayed in the group but left the tree.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(owned.pid, signal.SIGKILL)


def tree_of(pid: int) -> list[psutil.Process]:
    """`pid` and its descendants (empty when it is gone)."""
    try:
        leader = psutil.Process(pid)
        return [leader, *leader.children(recursive=True)]
    except psutil.Error:
        return []


def save_owned(path: Path, processes: list[OwnedProcess]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps([asdict(p) for p in processes], indent=1))
    os.replace(tmp, path)


def load_owned(path: Path) -> list[OwnedProcess]:
    try:
        return [OwnedProcess(**item) for item in json.loads(path.read_text())]
    except FileNotFoundError:
        return []


def write_pid_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, path)


def read_pid_file(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
