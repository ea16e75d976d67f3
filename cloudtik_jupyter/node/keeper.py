"""The agent's keeper: a tiny parent that restarts the node agent when it dies (systemd's Restart=on-failure).

`node.start` forks the keeper (detached, its own session); the keeper forks the agent and waits for it.
An agent that exits 0 was asked to stop (a ``shutdown`` request, SIGTERM): the keeper exits too. Any other
exit, including SIGKILL or a crash, gets a new agent after a short backoff; the new agent stops the
services its predecessor left (by recorded PID) and starts them again, so a head whose agent was killed
gets its Redis, controller and runtime services back on its own. SIGTERM to the keeper stops the agent
and then the keeper.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from pathlib import Path
from typing import NoReturn

import psutil

from .config import AgentConfig
from .processes import read_pid_file, write_pid_file

log = logging.getLogger("cloudtik.keeper")

KEEPER_PID_FILE = "keeper.pid"
STABLE_AFTER = 30.0  # an agent that ran this long resets the backoff
MAX_QUICK_FAILURES = 20  # in a row: the agent cannot start at all (stop and let `up` report it)


def keeper_pid_file(run_dir: Path) -> Path:
    return run_dir / KEEPER_PID_FILE


def keeper_pid(run_dir: Path) -> int | None:
    """The running keeper of this node, if any."""
    pid = read_pid_file(keeper_pid_file(run_dir))
    if pid is None or pid == os.getpid():
        return None
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        if proc.status() != psutil.STATUS_ZOMBIE and "cloudtik_jupyter.node." in " ".join(proc.cmdline()):
            return pid
    return None


def _run_agent(config: AgentConfig) -> NoReturn:
    from .agent import NodeAgent

    code = 1
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)  # the agent's loop installs its own
        asyncio.run(NodeAgent(config, keeper_pid=os.getppid()).run())
        code = 0
    except BaseException:  # the child must never return into the keeper's code
        logging.getLogger("cloudtik.agent").exception("node agent failed")
    os._exit(code)


def keep(config: AgentConfig) -> NoReturn:
    """Supervise the agent until it exits on request. Runs in the detached child `node.start` forked."""
    pid_file = keeper_pid_file(config.run_dir)
    write_pid_file(pid_file)
    stopping = False
    child: int | None = None

    def on_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_stop)
    failures = 0
    while not stopping:
        started = time.monotonic()
        child = os.fork()
        if child == 0:
            _run_agent(config)
        _, status = os.waitpid(child, 0)
        child = None
        code = os.waitstatus_to_exitcode(status)
        if code == 0 or stopping:
            break
        failures = 1 if time.monotonic() - started >= STABLE_AFTER else failures + 1
        if failures > MAX_QUICK_FAILURES:
            log.error("node agent failed %d times in a row; giving up", failures - 1)
            break
        delay = min(0.1 * 2 ** (failures - 1), 5.0)
        log.warning("node agent exited with %d; restarting it in %.1fs", code, delay)
        time.sleep(delay)  # backoff between restarts, not synchronisation
    if read_pid_file(pid_file) == os.getpid():
        pid_file.unlink(missing_ok=True)
    os._exit(0)
