"""SSH sessions on a virtual node: exec, login shells, with or without a pty.

Commands run as ``/bin/bash -c`` in their own session. The node is a subreaper, so one SIGCHLD handler
reaps every child and orphan and hands exit statuses to the sessions waiting for them (asyncio's child
watchers would race it). Exit status is sent only after the command's output reached EOF, so no tail is
lost; a daemon the command left holding the pipe only delays the exit by EOF_GRACE, and its later output
goes to the node log instead of being cut off with SIGPIPE.

Signals the client sends (Ctrl-C forwarded as an SSH "signal" request) go to the command's process group;
a client that leaves while its command runs hangs it up (SIGHUP to the group), as a closed terminal would.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncssh

from .process_tree import reap_children

log = logging.getLogger(__name__)

SHELL = "/bin/bash"
# How long the output of an exited command may stay quiet before a lingering holder of the pipe (a
# background daemon) no longer delays the exit status.
EOF_GRACE = 0.5
_CHUNK = 1 << 16


class ChildWatcher:
    """The node's only reaper: waitpid(-1) on SIGCHLD, results dispatched to per-pid futures."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiters: dict[int, asyncio.Future[int]] = {}
        loop.add_signal_handler(signal.SIGCHLD, self.reap)

    def watch(self, pid: int) -> asyncio.Future[int]:
        """Future of the raw wait status. Call right after spawning, before yielding to the loop."""
        fut: asyncio.Future[int] = self._loop.create_future()
        self._waiters[pid] = fut
        return fut

    def reap(self) -> None:
        reap_children(self._exited)

    def _exited(self, pid: int, status: int) -> None:
        fut = self._waiters.pop(pid, None)
        if fut is None:
            log.debug("reaped orphan %d (status %d)", pid, status)
        elif not fut.done():
            fut.set_result(status)


class OutputPump:
    """Copies one output pipe (or the pty master) of a command to its SSH stream until EOF."""

    def __init__(self, fd: int, writer: asyncssh.SSHWriter[bytes], label: str) -> None:
        self._fd = fd
        self._writer: asyncssh.SSHWriter[bytes] | None = writer
        self._label = label
        self._busy = False
        self._last_activity = time.monotonic()
        self._transport: asyncio.ReadTransport | None = None

    def quiet_for(self) -> float:
        return 0.0 if self._busy else time.monotonic() - self._last_activity

    def detach(self) -> None:
        """Stop sending to the SSH stream; whatever still comes goes to the node log."""
        self._writer = None

    def close(self) -> None:
        """Stop reading (a pty master closed this way hangs up the session)."""
        if self._transport is not None:
            self._transport.close()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_CHUNK)
        pipe = os.fdopen(self._fd, "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        self._transport = transport
        try:
            while True:
                try:
                    data = await reader.read(_CHUNK)
                except OSError:  # EIO from a pty master once the last slave fd closed: that is EOF
                    break
                if not data:
                    break
                self._busy = True
                try:
                    await self._deliver(data)
                finally:
                    self._busy = False
                    self._last_activity = time.monotonic()
        finally:
            transport.close()

    async def _deliver(self, data: bytes) -> None:
        if self._writer is not None:
            try:
                self._writer.write(data)
                await self._writer.drain()
                return
            except (OSError, asyncssh.Error):  # the client went away
                self._writer = None
        log.info(
            "output after session end (%s): %s", self._label, data[:2000].decode(errors="replace").rstrip()
        )


def _set_winsize(fd: int, term_size: tuple[int, int, int, int]) -> None:
    width, height, pixwidth, pixheight = term_size
    if width and height:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, pixwidth, pixheight))


def _acquire_controlling_tty() -> None:  # runs in the child, after setsid, with the pty slave on fd 0
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@dataclass
class _Started:
    pid: int
    exited: asyncio.Future[int]
    stdin_fd: int
    outputs: list[tuple[int, str]]  # (fd, "stdout" | "stderr")
    pty_master: bool


def _disown(popen: subprocess.Popen[bytes]) -> int:
    """The ChildWatcher alone reaps. A Popen left unfinished would poll waitpid(pid) from
    subprocess._cleanup() later and could steal the status of another command that reused the pid."""
    popen.returncode = 0
    return popen.pid


def _spawn(
    argv: list[str],
    env: Mapping[str, str],
    term_size: tuple[int, int, int, int] | None,
    children: ChildWatcher,
) -> _Started:
    """Start the command; registers the exit waiter before the loop can run the reaper."""
    if term_size is not None:
        master, slave = os.openpty()
        try:
            _set_winsize(slave, term_size)
            popen = subprocess.Popen(
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=dict(env),
                start_new_session=True,
                preexec_fn=_acquire_controlling_tty,
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return _Started(_disown(popen), children.watch(popen.pid), os.dup(master), [(master, "pty")], True)
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        popen = subprocess.Popen(
            argv, stdin=in_r, stdout=out_w, stderr=err_w, env=dict(env), start_new_session=True
        )
    except BaseException:
        for fd in (in_w, out_r, err_r):
            os.close(fd)
        raise
    finally:
        for fd in (in_r, out_w, err_w):
            os.close(fd)
    return _Started(
        _disown(popen), children.watch(popen.pid), in_w, [(out_r, "stdout"), (err_r, "stderr")], False
    )


def _send_exit(process: asyncssh.SSHServerProcess[bytes], status: int) -> None:
    with contextlib.suppress(OSError, asyncssh.Error):
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            name = signal.Signals(sig).name.removeprefix("SIG") if sig in signal.valid_signals() else str(sig)
            process.exit_with_signal(name, os.WCOREDUMP(status))
        else:
            process.exit(os.WEXITSTATUS(status))


async def _wait_for_output(pumps: list[OutputPump], tasks: list[asyncio.Task[None]]) -> None:
    """Wait for EOF on every output; one that stays quiet for EOF_GRACE is held by a daemon: detach it."""
    pending = {t: p for t, p in zip(tasks, pumps, strict=True)}
    while pending:
        await asyncio.wait(pending, timeout=EOF_GRACE)
        for task, pump in list(pending.items()):
            if task.done():
                del pending[task]
            elif pump.quiet_for() >= EOF_GRACE:
                pump.detach()
                del pending[task]


class SessionHandler:
    """`process_factory` for the node's SSH server."""

    def __init__(self, children: ChildWatcher, base_env: Mapping[str, str]) -> None:
        self._children = children
        self._base_env = dict(base_env)
        self._draining: set[asyncio.Task[None]] = set()  # detached pumps still copying to the log

    def _argv_env(self, process: asyncssh.SSHServerProcess[bytes]) -> tuple[list[str], dict[str, str]]:
        env = {**self._base_env, **process.env}
        if process.term_type:
            env["TERM"] = process.term_type
        command = process.command
        if command is None:
            return [SHELL, "-l"], env  # interactive when on a pty (`cloudtik attach`)
        return [SHELL, "-c", command], env

    async def __call__(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        argv, env = self._argv_env(process)
        use_pty = process.term_type is not None
        try:
            started = _spawn(argv, env, process.term_size if use_pty else None, self._children)
        except OSError as exc:
            log.warning("cannot start %r: %s", argv, exc)
            with contextlib.suppress(OSError, asyncssh.Error):
                process.stderr.write(f"cannot start command: {exc}\n".encode())
                process.exit(127)
            return
        log.info("started pid %d: %s", started.pid, (process.command or "login shell")[:200])
        await self._run(process, started)

    async def _run(self, process: asyncssh.SSHServerProcess[bytes], started: _Started) -> None:
        # stdin (and terminal size changes, for a pty) flow through asyncssh's own pipe writer; it sends
        # signals to this pid, negative: the command's whole process group (its own session).
        process.set_redirect_pid(-started.pid)
        await process.redirect(stdin=os.fdopen(started.stdin_fd, "wb", buffering=0))
        streams = {"stdout": process.stdout, "stderr": process.stderr, "pty": process.stdout}
        pumps = [
            OutputPump(fd, streams[label], f"pid {started.pid} {label}") for fd, label in started.outputs
        ]
        tasks = [asyncio.create_task(p.run()) for p in pumps]
        closed = asyncio.ensure_future(process.channel.wait_closed())
        try:
            either: set[asyncio.Future[Any]] = {started.exited, closed}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not started.exited.done():  # the client left while the command runs: hang it up
                if started.pty_master:
                    for pump in pumps:
                        pump.close()  # closing the master hangs up the session (SIGHUP)
                else:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(started.pid, signal.SIGHUP)
            status = await started.exited
            await _wait_for_output(pumps, tasks)
            for task in tasks:
                if not task.done():
                    self._draining.add(task)
                    task.add_done_callback(self._draining.discard)
            log.info("pid %d exited with status %d", started.pid, status)
            if not closed.done():
                _send_exit(process, status)
        finally:
            closed.cancel()
