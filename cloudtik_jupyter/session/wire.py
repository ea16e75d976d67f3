"""Frames between the `cloudtik` client and its session (standard library only).

A frame is a 4-byte big-endian length and a JSON object. The client's stdin, stdout and stderr travel with
the `run` frame as SCM_RIGHTS descriptors, so the session writes to (and reads from) the user's terminal
or pipes directly.

    client                                   session
    hello {identity}                     ->
                                         <-  hello {identity, pid}  |  error {kind, error}
    run {argv, cwd, umask, env} + fds    ->
                                         <-  started  |  error {kind: "fallback"}: nothing ran
    interrupt (Ctrl-C, any number)       ->
                                         <-  exit {code}
Instead of `run`: ping -> pong {pid, served, running}; stop -> stopping (the session exits when done).
"""

from __future__ import annotations

import array
import json
import socket

TYPE_CHECKING = False  # typing costs the thin client milliseconds it does not need at run time
if TYPE_CHECKING:
    from typing import Any

MAX_FRAME = 1 << 20  # argv and environment fit many times over; anything larger is refused unread
STDIO_FDS = 3


class WireError(Exception):
    """A malformed frame; the connection is closed after saying so."""


def encode(message: dict[str, Any]) -> bytes:
    data = json.dumps(message, separators=(",", ":")).encode()
    return len(data).to_bytes(4, "big") + data


def send(sock: socket.socket, message: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    frame = encode(message)
    if not fds:
        sock.sendall(frame)
        return
    rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
    sent = sock.sendmsg([frame], rights)  # the descriptors ride on the first bytes
    if sent < len(frame):
        sock.sendall(frame[sent:])


class Reader:
    """Reads frames from one socket; descriptors that arrive are kept in `fds` (at most `max_fds`)."""

    def __init__(self, sock: socket.socket, max_fds: int = 0) -> None:
        self.sock = sock
        self.max_fds = max_fds
        self.fds: list[int] = []
        self._buf = bytearray()

    def _fill(self) -> bool:
        if self.max_fds:
            space = socket.CMSG_SPACE(self.max_fds * array.array("i").itemsize)
            data, ancillary, _flags, _ = self.sock.recvmsg(65536, space)
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds = array.array("i")
                    fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                    self.fds.extend(fds)
        else:
            data = self.sock.recv(65536)  # descriptors sent now are discarded by the kernel
        self._buf += data
        return bool(data)

    def read(self) -> dict[str, Any] | None:
        """The next frame; None when the peer closed between frames."""
        while len(self._buf) < 4:
            if not self._fill():
                if self._buf:
                    raise WireError("connection closed inside a frame")
                return None
        size = int.from_bytes(self._buf[:4], "big")
        if size > MAX_FRAME:
            raise WireError(f"frame of {size} bytes is larger than {MAX_FRAME}")
        while len(self._buf) < 4 + size:
            if not self._fill():
                raise WireError("connection closed inside a frame")
        body = bytes(self._buf[4 : 4 + size])
        del self._buf[: 4 + size]
        try:
            message = json.loads(body)
        except ValueError:
            raise WireError("frame is not JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("op"), str):
            raise WireError("frame is not an object with an op")
        return message
