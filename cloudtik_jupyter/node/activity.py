"""Is this node doing work? What the controller's idle release is judged on (`NodeActivity`).

- CPU of the node's other processes: everything on the node that is not the agent, its keeper or a
  supervised service (user jobs started over SSH, notebooks, anything a user runs);
- interactive shell sessions: terminals that processes of the node hold (``cloudtik attach``, an ssh
  login); a shell and the command it runs share one terminal and count once;
- the runtimes' own answer (`Runtime.busy(config, node)`, e.g. Spark: executors on this worker).

"The node" is the process tree under ``$CLOUDTIK_NODE_ROOT_PID`` where a node shares its machine (the
virtual provider sets it), otherwise every process of the node's user.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable, Collection
from pathlib import Path

import psutil

from ..state.records import NodeActivity
from .process_table import ProcessTable

log = logging.getLogger(__name__)

NODE_ROOT_ENV = "CLOUDTIK_NODE_ROOT_PID"
BUSY_HOOK_TIMEOUT = 5.0  # a runtime that cannot answer in time does not say (None) ...
KEEP_ANSWER = 3  # ... and its last answer stands for this many such tries (a loaded JVM answers slowly)
# Sampled at most this often (a scan of the process table costs ~10 ms of CPU); idle timeouts are minutes.
SAMPLE_INTERVAL = 2.0

BusyHook = Callable[[], "bool | None"]


def _tree(table: ProcessTable, pid: int) -> list[psutil.Process]:
    """`pid` first, then its descendants; empty when `pid` is gone."""
    try:
        members = [psutil.Process(pid)]
    except psutil.Error:
        return []
    for child in table.descendants(pid):
        with contextlib.suppress(psutil.Error):  # gone since the table was read
            members.append(psutil.Process(child))
    return members


class ActivitySampler:
    """Samples the node's activity; psutil's cpu_percent needs the same `Process` objects between calls."""

    def __init__(self, busy_hooks: Collection[BusyHook] = (), table: ProcessTable | None = None) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self._table = table or ProcessTable()
        self._hooks = list(busy_hooks)
        self._busy: bool | None = None  # the hooks' last answer
        self._unanswered = 0
        self._asking: asyncio.Task[None] | None = None
        self._last: tuple[float, float, int] | None = None  # (monotonic time, cpu, sessions)
        root = os.environ.get(NODE_ROOT_ENV, "")
        self._root = int(root) if root.isdigit() else None
        self._uid = os.getuid()

    def use_hooks(self, busy_hooks: Collection[BusyHook]) -> None:
        """Hooks found after the sampler was made (the agent looks for them once its services run)."""
        self._hooks = list(busy_hooks)

    def _candidates(self) -> list[psutil.Process]:
        if self._root is not None:
            members = _tree(self._table, self._root)
            if members:
                return members[1:]  # the node's own root (its SSH server) is infrastructure
        return [p for p in psutil.process_iter() if _uid(p) == self._uid]

    def sample(self, excluded_roots: Collection[int]) -> tuple[float, int]:
        """(CPU % of the node's other processes, shell sessions). `excluded_roots`: the agent, its keeper
        and the services' main processes; their descendants are excluded with them."""
        excluded = {pid for root in excluded_roots for pid in (root, *self._table.descendants(root))}
        excluded.add(os.getpid())
        cpu, seen = 0.0, {}
        terminals: set[str] = set()
        for proc in self._candidates():
            if proc.pid in excluded:
                continue
            known = self._procs.get(proc.pid)
            if known is None or known != proc:  # same pid and start time: keep the sampled object
                known = proc
            seen[proc.pid] = known
            with contextlib.suppress(psutil.Error):
                cpu += known.cpu_percent(interval=None)  # 0.0 on the first sample of a process
                terminal = _terminal(known)
                if terminal:
                    terminals.add(terminal)
        self._procs = seen
        return cpu, len(terminals)

    async def activity(self, excluded_roots: Collection[int]) -> NodeActivity:
        """The node's activity now; the runtimes' answer is the last one they gave (they are asked in the
        background, so a slow runtime never delays a heartbeat)."""
        now = time.monotonic()
        if self._last is None or now - self._last[0] >= SAMPLE_INTERVAL:
            if self._hooks and (self._asking is None or self._asking.done()):
                self._asking = asyncio.create_task(self._ask_runtimes())
            cpu, sessions = await asyncio.to_thread(self.sample, excluded_roots)
            self._last = (now, cpu, sessions)
        _, cpu, sessions = self._last
        return NodeActivity(user_cpu=cpu, sessions=sessions, runtime_busy=self._busy)

    async def _ask_runtimes(self) -> None:
        answers = await asyncio.gather(*(_ask(hook) for hook in self._hooks))
        if any(a is not None for a in answers):
            self._busy, self._unanswered = any(a is True for a in answers), 0
        else:
            self._unanswered += 1
            if self._unanswered > KEEP_ANSWER:
                self._busy = None


async def _ask(hook: BusyHook) -> bool | None:
    try:
        return await asyncio.wait_for(asyncio.to_thread(hook), BUSY_HOOK_TIMEOUT)
    except Exception as exc:  # a runtime's hook must never stop heartbeats
        log.debug("busy hook failed: %s", exc)
        return None


def _terminal(proc: psutil.Process) -> str | None:
    """The process's controlling terminal, if any. Read from /proc where it exists: psutil maps terminals
    once per process (a long-running agent would never see a pty opened after it started)."""
    try:
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
    except FileNotFoundError:
        return proc.terminal()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    tty_nr = fields[4] if len(fields) > 4 else "0"
    return None if tty_nr == "0" else tty_nr


def _uid(proc: psutil.Process) -> int | None:
    try:
        return proc.uids().real
    except psutil.Error:
        return None


def runtime_busy_hooks(cluster_config: Path, node: object) -> list[BusyHook]:
    """The enabled runtimes' `busy(config, node)` hooks, bound to this node (none when unreadable)."""
    try:
        from ..config import load_config
        from ..runtimes import enabled_runtimes

        config = load_config(cluster_config, check_files=False)
        hooks: list[BusyHook] = []
        for runtime, section in enabled_runtimes(config):
            busy = getattr(runtime, "busy", None)
            if busy is not None:
                hooks.append(functools.partial(busy, section, node))
        return hooks
    except Exception as exc:
        log.warning("runtime busy hooks unavailable: %s", exc)
        return []
