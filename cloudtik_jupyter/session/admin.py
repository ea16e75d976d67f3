"""The CLI sessions of a state dir, found by their pid files: list them, stop them (by PID).

Used by `python -m cloudtik_jupyter.session status|stop` and by test fixtures, which must stop every
session they caused.
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import time
from dataclasses import dataclass

import psutil

from ..errors import Timeout
from ..waiting import wait_for_sync
from . import place as P
from .client import ping


@dataclass(frozen=True)
class SessionProcess:
    pid: int
    create_time: float
    key: str
    directory: str

    def process(self) -> psutil.Process | None:
        """The live process, if this pid is still that session (not a reused pid)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE:
                return proc
        except psutil.Error:
            pass
        return None


def sessions(home: str) -> list[SessionProcess]:
    """Sessions of state dir `home` that are running (stale pid files are removed)."""
    found = []
    for directory in P.session_dirs(home):
        for path in glob.glob(os.path.join(glob.escape(directory), "s-*.pid")):
            key = os.path.basename(path)[2:-4]
            try:
                with open(path) as f:
                    pid_text, created_text = f.read().split()[:2]
                record = SessionProcess(int(pid_text), float(created_text), key, directory)
            except (OSError, ValueError):
                continue
            if record.process() is None:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                continue
            found.append(record)
    return found


def stop_all(home: str, timeout: float = 15.0) -> list[int]:
    """Stop every session of `home`: SIGTERM (running commands get Ctrl-C), SIGKILL after `timeout`."""
    stopped = []
    for record in sessions(home):
        proc = record.process()
        if proc is None or record.pid == os.getpid():  # never this process (a command a session runs)
            continue
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGTERM)
            if not _ended(record, timeout):
                proc.kill()
                _ended(record, timeout)
        stopped.append(record.pid)
    return stopped


def _ended(record: SessionProcess, timeout: float) -> bool:
    """Wait until the session is gone or a zombie (its parent, init, reaps it when it gets to it)."""
    try:
        wait_for_sync(lambda: record.process() is None, timeout=timeout, what=f"session {record.pid} to exit")
    except Timeout:
        return False
    return True


def describe(home: str) -> list[str]:
    mine = P.current()
    lines = []
    for record in sessions(home):
        line = f"pid {record.pid}, up since {time.ctime(record.create_time)}"
        if record.key == mine.key and record.directory == mine.directory:
            answer = ping(mine)
            if answer is not None:
                line += f", {answer.get('served')} commands served, {answer.get('running')} running"
            line += f"; socket {mine.socket}, log {mine.log}"
        else:
            line += f" (another environment; log {os.path.join(record.directory, f's-{record.key}.log')})"
        lines.append(line)
    return lines
