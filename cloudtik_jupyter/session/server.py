"""The CLI session process: accepts `cloudtik` clients of the same user on its Unix socket and runs each
command in a thread of its own, through the CLI and API code, with clusters kept warm in a pool.

It exits when idle (``$CLOUDTIK_SESSION_IDLE`` seconds, default 600, with no command), on SIGTERM or
`stop`, and when it is replaced: a client of another package version or code (version handshake), or
a socket path that is no longer its own. Connections from another uid are refused (SO_PEERCRED), frames
that are not well formed get an error and a closed connection; neither disturbs other clients.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import select
import signal
import socket
import struct
import threading
import time
from typing import Any

from . import place as P
from .command import Command, install, per_thread_cwd_works
from .wire import MAX_FRAME, STDIO_FDS, Reader, WireError, send

log = logging.getLogger("cloudtik_jupyter.session")

HANDSHAKE_TIMEOUT = 5.0  # a client that connects and says nothing is dropped after this long
MAX_CONNECTIONS = 64
REFUSE_DRAIN = 1.0  # how long a refused client may go on sending before the connection closes
STOP_GRACE = 10.0  # on shutdown: how long running commands get to stop after their Ctrl-C
WARM = (
    "cloudtik_jupyter.api.pool",
    "cloudtik_jupyter.cli.cluster",
    "cloudtik_jupyter.cli.nodes",
    "cloudtik_jupyter.cli.render",
    "cloudtik_jupyter.cli.runtime",
    "rich.table",
)


def peer_uid(conn: socket.socket) -> int | None:
    """The uid of the process at the other end (Linux SO_PEERCRED); None where unknown."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


class Session:
    def __init__(self, place: P.Place, listener: socket.socket, idle: float) -> None:
        from ..api import pool

        self.place = place
        self.listener = listener
        self.idle = idle
        self.inode = os.stat(place.socket).st_ino
        self.pool = pool.ClusterPool()
        pool.install(self.pool)
        self.started_at = time.time()
        self.served = 0
        self._lock = threading.Lock()
        self._quiet = threading.Condition(self._lock)  # notified when a connection ends
        self._connections = 0
        self._commands: set[Command] = set()
        self._last_active = time.monotonic()
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._interrupt_running = True
        self.reason = ""

    # -- lifecycle --------------------------------------------------------------------------------

    def stop(self, reason: str, *, interrupt: bool = True) -> None:
        """Stop accepting and exit; running commands get Ctrl-C (`interrupt`) or may finish. Safe from a
        signal handler."""
        if not self._stopping.is_set():
            self.reason = reason
            self._interrupt_running = interrupt
            self._stopping.set()
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"!")  # the accept loop wakes at once

    def serve(self) -> None:
        tick = max(min(self.idle / 4, 2.0), 0.05)
        self.listener.setblocking(False)
        while not self._stopping.is_set():
            ready, _, _ = select.select([self.listener.fileno(), self._wake_r], [], [], tick)
            if self.listener.fileno() not in ready:
                self._tick()
                continue
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                continue  # another accept took it, or a signal came first
            conn.setblocking(True)
            self._accept(conn)
        log.info("stopping: %s", self.reason)
        self._shutdown()

    def _tick(self) -> None:
        with self._lock:
            busy = self._connections > 0
        if busy:
            return
        if time.monotonic() - self._last_active >= self.idle:
            self.stop(f"idle for {self.idle:g}s")
        elif not self._socket_is_mine():
            self.stop("its socket was removed or replaced")
        else:
            self.pool.sweep()  # clusters taken down meanwhile: close their connections

    def _socket_is_mine(self) -> bool:
        try:
            return os.stat(self.place.socket).st_ino == self.inode
        except OSError:
            return False

    def _shutdown(self) -> None:
        self.listener.close()
        with self._lock:
            running = list(self._commands) if self._interrupt_running else []
        for command in running:
            command.stop()
        with self._quiet:  # running commands end (replaced: they finish; stopped: they stop)
            self._quiet.wait_for(
                lambda: self._connections == 0, timeout=STOP_GRACE if self._interrupt_running else None
            )
        with P.FileLock(self.place.lock, 10.0):  # a client replacing us holds it while it binds anew
            if self._socket_is_mine():
                os.unlink(self.place.socket)
            with contextlib.suppress(OSError), open(self.place.pid_file) as f:
                if f.read().split()[:1] == [str(os.getpid())]:
                    os.unlink(self.place.pid_file)
        self.pool.close_all()
        log.info("exited after serving %d commands", self.served)

    # -- connections ------------------------------------------------------------------------------

    def _accept(self, conn: socket.socket) -> None:
        with self._lock:
            busy = self._connections >= MAX_CONNECTIONS
            if not busy:
                self._connections += 1
                self._last_active = time.monotonic()
        if busy:
            with conn, contextlib.suppress(OSError):
                send(conn, {"op": "error", "kind": "fallback", "error": "the session is busy"})
            return
        threading.Thread(target=self._connection, args=(conn,), name="cloudtik-session-client").start()

    def _connection(self, conn: socket.socket) -> None:
        reader = Reader(conn, max_fds=STDIO_FDS)
        try:
            with conn:
                self._converse(conn, reader)
        except Exception:
            log.exception("connection failed")
        finally:
            for fd in reader.fds:  # descriptors no command took
                with contextlib.suppress(OSError):
                    os.close(fd)
            reader.fds.clear()
            with self._lock:
                self._connections -= 1
                self._last_active = time.monotonic()
                self._quiet.notify_all()

    def _refuse(self, conn: socket.socket, kind: str, error: str) -> None:
        """Say why, then read what the client still sends (briefly, a bounded amount): a Unix socket
        closed with unread data resets the connection, and the client would never see the reason."""
        with contextlib.suppress(OSError):
            send(conn, {"op": "error", "kind": kind, "error": error})
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(REFUSE_DRAIN)
            drained = 0
            while drained <= MAX_FRAME and (chunk := conn.recv(65536)):
                drained += len(chunk)

    def _converse(self, conn: socket.socket, reader: Reader) -> None:
        uid = peer_uid(conn)
        if uid is not None and uid != os.getuid():
            log.warning("refused a connection from uid %d", uid)
            self._refuse(conn, "refused", "this session serves another user")
            return
        conn.settimeout(HANDSHAKE_TIMEOUT)
        try:
            hello = reader.read()
            if hello is None:
                return
            if hello.get("op") != "hello":
                raise WireError("expected hello")
            if hello.get("identity") != self.place.identity:
                self._refuse(conn, "version", "the session runs another version, code or environment")
                self.stop("a client of another version, code or environment", interrupt=False)
                return
            send(conn, {"op": "hello", "identity": self.place.identity, "pid": os.getpid()})
            request = reader.read()
        except (WireError, TimeoutError) as exc:
            self._refuse(conn, "bad-request", str(exc) or "timed out")
            return
        if request is None:
            return
        op = request.get("op")
        if op == "ping":
            with self._lock:
                running = len(self._commands)
            send(conn, {"op": "pong", "pid": os.getpid(), "served": self.served, "running": running})
        elif op == "stop":
            send(conn, {"op": "stopping"})
            self.stop("asked to stop")
        elif op == "run":
            self._run(conn, reader, request)
        else:
            self._refuse(conn, "bad-request", f"unknown op {op!r}")

    def _run(self, conn: socket.socket, reader: Reader, request: dict[str, Any]) -> None:
        try:
            command = _command_of(request, reader.fds)
        except (TypeError, ValueError) as exc:
            self._refuse(conn, "bad-request", str(exc))
            return
        reader.fds.clear()  # the command owns them now
        with self._lock:
            self._commands.add(command)
            self.served += 1
        conn.settimeout(None)
        watcher = threading.Thread(target=_watch, args=(reader, command), name="cloudtik-session-watch")
        try:
            send(conn, {"op": "started"})
            watcher.start()
            code = command.run(self.pool.command)
            with contextlib.suppress(OSError):
                send(conn, {"op": "exit", "code": code})
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # ends the watcher's read
            if watcher.is_alive():
                watcher.join()
            command.close()
            with self._lock:
                self._commands.discard(command)


def _watch(reader: Reader, command: Command) -> None:
    """Relay the client's Ctrl-C; a client that leaves (or talks nonsense) stops its command."""
    try:
        while (message := reader.read()) is not None:
            if message["op"] == "interrupt":
                command.stop()
    except (WireError, OSError):
        pass
    command.detach()


def _command_of(request: dict[str, Any], fds: list[int]) -> Command:
    argv, cwd, umask, env = request.get("argv"), request.get("cwd"), request.get("umask"), request.get("env")
    if len(fds) != STDIO_FDS:
        raise ValueError(f"expected {STDIO_FDS} descriptors (stdin, stdout, stderr), got {len(fds)}")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise ValueError("argv must be a list of strings")
    if not isinstance(cwd, str) or not os.path.isabs(cwd):
        raise ValueError("cwd must be an absolute path")
    if not isinstance(umask, int) or not 0 <= umask <= 0o777:
        raise ValueError("umask must be an integer in 0..0o777")
    if not isinstance(env, dict) or not all(
        k in P.TERMINAL_VARS and (v is None or isinstance(v, str)) for k, v in env.items()
    ):
        raise ValueError("env may only carry the terminal's variables")
    full_env: dict[str, str | None] = dict.fromkeys(P.TERMINAL_VARS)
    full_env.update(env)
    return Command(argv, cwd, umask, full_env, (fds[0], fds[1], fds[2]))


def _write_pid(place: P.Place) -> None:
    import psutil

    me = psutil.Process()
    tmp = place.pid_file + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{me.pid} {me.create_time()}\n")
    os.replace(tmp, place.pid_file)


def main(listen_fd: int) -> None:
    """The session's body (after `__main__` forked it off): warm up, then serve until told otherwise."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)
    listener = socket.socket(fileno=listen_fd)
    place = P.current()
    idle = float(os.environ.get(P.ENV_IDLE) or P.DEFAULT_IDLE)
    os.environ.pop(P.ENV_FD, None)
    why_not = per_thread_cwd_works()
    if why_not is not None:  # commands would run in the wrong directory: clients run in-process instead
        log.warning("not serving: %s", why_not)
        with open(place.unsupported, "w") as f:
            f.write(why_not + "\n")
        return
    for module in WARM:  # what commands need, loaded once, before the first client waits for it
        importlib.import_module(module)

    install()
    session = Session(place, listener, idle)
    _write_pid(place)
    signal.signal(signal.SIGTERM, lambda *_: session.stop("SIGTERM"))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches commands through their clients
    log.info("serving %s (pid %d, idle exit after %gs)", place.socket, os.getpid(), idle)
    session.serve()
    logging.shutdown()
    os._exit(0)  # everything is closed; tearing down the interpreter's heap only delays the exit
