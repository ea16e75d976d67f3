"""The client side of the CLI session (standard library only): find or start the session, hand it one
command with this process's stdin/stdout/stderr, relay Ctrl-C, return the exit status.

A session that is not there, left a stale socket, crashed, hangs or runs other code is replaced: the
client binds a fresh socket (under the place's lock, so concurrent clients start one session, not one
each), hands it to a new session process and connects at once; the connection waits in the socket's
backlog until the session is ready. `Unavailable` means nothing ran: the caller runs the command
in-process instead.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import sys

from . import place as P
from .wire import Reader, WireError, send

TYPE_CHECKING = False  # typing costs the thin client milliseconds it does not need at run time
if TYPE_CHECKING:
    from typing import Any

LOCK_TIMEOUT = 30.0
START_TIMEOUT = 60.0  # a new session imports the API before it answers (seconds on a loaded machine)
ANSWER_TIMEOUT = 30.0  # a running session answers at once; one that does not is hung: replaced
LOG_LIMIT = 1 << 20


class Unavailable(Exception):
    """The session cannot take the command; nothing ran."""


def _peer_uid(sock: socket.socket) -> int | None:
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _try_connect(path: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):  # none, or a stale socket nobody listens on
        sock.close()
        return None
    except OSError:
        sock.close()
        raise
    if _peer_uid(sock) not in (None, os.getuid()):
        sock.close()
        raise Unavailable(f"{path} is served by another user")
    return sock


def _spawn(place: P.Place, listener: socket.socket) -> None:
    """Start a session that inherits `listener`; it forks off at once (nobody's child, own session)."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in P.TERMINAL_VARS and k != P.ENV_NO_SESSION}
    env[P.ENV_FD] = str(listener.fileno())
    env["CLOUDTIK_HOME"] = str(place.identity["home"])
    log = os.open(place.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        if os.fstat(log).st_size > LOG_LIMIT:
            os.ftruncate(log, 0)
        starter = subprocess.Popen(
            [sys.executable, "-m", "cloudtik_jupyter.session", "serve"],
            env=env,
            cwd=place.directory,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(listener.fileno(),),
            start_new_session=True,
        )
        if starter.wait(timeout=START_TIMEOUT) != 0:
            raise Unavailable(f"the session did not start; see {place.log}")
    finally:
        os.close(log)


def _start(place: P.Place) -> socket.socket:
    """Under the place's lock: bind a fresh socket, start a session on it, connect."""
    try:  # noqa: SIM105 (contextlib: an import the thin client avoids)
        os.unlink(place.socket)  # stale: nobody listens there (checked under the lock)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        mask = os.umask(0o177)  # 0600 from the start
        try:
            listener.bind(place.socket)
        finally:
            os.umask(mask)
        listener.listen(64)
        _spawn(place, listener)
    finally:
        listener.close()
    sock = _try_connect(place.socket)
    if sock is None:
        raise Unavailable(f"the session did not start; see {place.log}")
    return sock


def _hello(sock: socket.socket, reader: Reader, place: P.Place, timeout: float) -> str:
    """ "ok", "replace" (another version, or hung or dead) or "refused"."""
    sock.settimeout(timeout)
    try:
        send(sock, {"op": "hello", "identity": place.identity})
        answer = reader.read()
    except (OSError, WireError):  # includes the timeout: a session that does not answer is hung
        return "replace"
    if answer is None:
        return "replace"
    if answer.get("op") == "hello" and answer.get("identity") == place.identity:
        return "ok"
    if answer.get("op") == "error" and answer.get("kind") not in ("version", None):
        return "refused"
    return "replace"


def connect(place: P.Place) -> tuple[socket.socket, Reader]:
    """A connection to a session of this place that has shaken hands (starting one if need be)."""
    for _ in range(3):
        if os.path.exists(place.unsupported):
            raise Unavailable(f"sessions do not work here (see {place.unsupported})")
        sock, timeout = _try_connect(place.socket), ANSWER_TIMEOUT
        if sock is None:
            with P.FileLock(place.lock, LOCK_TIMEOUT):
                sock = _try_connect(place.socket)  # another client may have started one meanwhile
                if sock is None:
                    sock, timeout = _start(place), START_TIMEOUT
        inode = _inode(place.socket)
        reader = Reader(sock)
        verdict = _hello(sock, reader, place, timeout)
        if verdict == "ok":
            return sock, reader
        sock.close()
        if verdict == "refused":
            raise Unavailable("the session refused the connection")
        with P.FileLock(place.lock, LOCK_TIMEOUT):  # replace it, unless someone already has
            if inode is not None and _inode(place.socket) == inode:
                os.unlink(place.socket)
    raise Unavailable("no session answered")


def _terminal_env() -> dict[str, str | None]:
    env: dict[str, str | None] = {name: os.environ.get(name) for name in P.TERMINAL_VARS}
    if os.isatty(1) and not (env["COLUMNS"] and env["LINES"]):
        try:  # the session's own stdio is no terminal: say how big ours is
            size = os.get_terminal_size(1)
            env["COLUMNS"] = env["COLUMNS"] or str(size.columns)
            env["LINES"] = env["LINES"] or str(size.lines)
        except OSError:
            pass
    return env


def _request(argv: list[str]) -> dict[str, Any]:
    try:
        cwd = os.getcwd()
        for fd in (0, 1, 2):
            os.fstat(fd)
    except OSError as exc:  # a deleted cwd, a closed stdio: the in-process CLI copes as it can
        raise Unavailable(str(exc)) from None
    mask = os.umask(0)
    os.umask(mask)
    return {"op": "run", "argv": argv, "cwd": cwd, "umask": mask, "env": _terminal_env()}


def forward(argv: list[str]) -> int:
    """Run `cloudtik ARGV` in the session; its exit status. Raises `Unavailable` if nothing ran."""
    request = _request(argv)
    try:
        place = P.current().ensure()
        sock, reader = connect(place)
    except (OSError, TimeoutError) as exc:
        raise Unavailable(str(exc)) from None
    interrupts = 0

    def on_sigint(signum: int, frame: object) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:  # a second Ctrl-C: stop waiting for the command to stop
            raise KeyboardInterrupt
        try:  # noqa: SIM105 (contextlib: an import the thin client avoids)
            send(sock, {"op": "interrupt"})
        except OSError:
            pass

    with sock:
        sock.settimeout(None)
        try:
            send(sock, request, fds=(0, 1, 2))
            answer = reader.read()
        except (OSError, WireError) as exc:
            raise Unavailable(f"the session failed: {exc}") from None
        if answer is None or answer.get("op") != "started":
            raise Unavailable(str((answer or {}).get("error", "the session closed the connection")))
        # Running. (A Ctrl-C before this point ended the client, which the session took as leaving.)
        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            try:
                while (message := reader.read()) is not None:
                    if message.get("op") == "exit":
                        return int(message.get("code", 1))
            except (OSError, WireError):
                pass
            _error(f"the CLI session ended while running the command; see {place.log}")
            return 1
        except KeyboardInterrupt:
            return 130
        finally:
            signal.signal(signal.SIGINT, previous)


def _error(message: str) -> None:
    red = os.isatty(2) and not os.environ.get("NO_COLOR")
    sys.stderr.write(f"\x1b[31mError: {message}\x1b[0m\n" if red else f"Error: {message}\n")


def _ask(place: P.Place, op: str) -> dict[str, Any] | None:
    """The running session's answer to `op`; None if none answers (none is started)."""
    try:
        sock = _try_connect(place.socket)
    except (OSError, Unavailable):
        return None
    if sock is None:
        return None
    with sock:
        reader = Reader(sock)
        if _hello(sock, reader, place, ANSWER_TIMEOUT) != "ok":
            return None
        try:
            send(sock, {"op": op})
            return reader.read()
        except (OSError, WireError):
            return None


def ping(place: P.Place) -> dict[str, Any] | None:
    """The running session's pid, commands served and running; None if none answers (none is started)."""
    return _ask(place, "ping")


def stop(place: P.Place) -> bool:
    """Ask the session to stop (running commands get Ctrl-C); whether one was there."""
    return _ask(place, "stop") is not None
