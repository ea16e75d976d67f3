"""Process-tree plumbing for virtual nodes: subreaping, reaping, and killing a whole tree.

A node's root process is a Linux child subreaper, so daemons its commands start (``nohup x &``, double
forks) are re-parented to the node instead of escaping to init: the node's tree is everything it ran.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
from collections.abc import Callable, Collection, Iterable

import psutil

log = logging.getLogger(__name__)

_PR_SET_CHILD_SUBREAPER = 36
_MAX_STOP_ROUNDS = 50
# psutil derives create_time from clock ticks; the same process always yields the same value.
_CREATE_TIME_TOLERANCE = 0.01


def set_child_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name or not hasattr(os, "getpgid"):
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def reap_children(on_exit: Callable[[int, int], None] | None = None) -> None:
    """Collect every exited child without blocking; `on_exit(pid, wait_status)` for each."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if on_exit is not None:
            on_exit(pid, status)


def is_running(pid: int, create_time: float) -> bool:
    """`pid` still runs AND is the process that started at `create_time` (a reused pid is another
    process), and is not a zombie."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > _CREATE_TIME_TOLERANCE:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def is_gone(proc: psutil.Process) -> bool:
    """The process no longer runs: exited, or a zombie waiting to be reaped by its parent."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for proc in psutil.process_iter(["ppid"]):
        ppid = proc.info["ppid"]
        if ppid is not None:
            children.setdefault(int(ppid), []).append(proc.pid)
    return children


def _tree_pids(roots: Iterable[int], children: dict[int, list[int]], exclude: Collection[int]) -> list[int]:
    found: list[int] = []
    stack = [pid for pid in roots if pid not in exclude]
    seen: set[int] = set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        found.append(pid)
        stack.extend(c for c in children.get(pid, ()) if c not in exclude)
    return found


def _signal(proc: psutil.Process, sig: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        proc.send_signal(sig)  # psutil refuses if the pid was reused by another process


def kill_trees(roots: Collection[psutil.Process], exclude: Collection[int] = ()) -> list[psutil.Process]:
    """SIGKILL `roots` and all their descendants; returns the processes to wait for.

    Everything is SIGSTOPped first, re-scanning until no new descendant appears, so nothing can fork
    or escape between the scan and the kill. Subtrees rooted at an `exclude` pid (another node, the
    hypervisor) are left alone even if they happen to be descendants.
    """
    root_pids = [p.pid for p in roots]
    stopped: dict[int, psutil.Process] = {}
    pending = list(roots)
    for _ in range(_MAX_STOP_ROUNDS):
        for proc in pending:
            _signal(proc, signal.SIGSTOP)
            stopped[proc.pid] = proc
        pending = []
        for pid in _tree_pids(root_pids, _children_map(), exclude):
            if pid not in stopped:
                with contextlib.suppress(psutil.NoSuchProcess):
                    pending.append(psutil.Process(pid))
        if not pending:
            break
    else:
        log.warning(
            "process tree kept growing after %d stop rounds; killing what was found", _MAX_STOP_ROUNDS
        )
    for proc in stopped.values():
        _signal(proc, signal.SIGKILL)
    return list(stopped.values())
