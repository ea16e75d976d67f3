"""Run one command on an open connection, collecting its output and streaming it line by line."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import contextvars
import signal
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import asyncssh

from ..errors import NodeUnreachable, Timeout
from .connect import describe

OutputCallback = Callable[[str, str, str], None]  # (node_id, "stdout" | "stderr", line without newline)
TAIL_LINES = 20
STREAMS = ("stdout", "stderr")


@dataclass(frozen=True)
class RawResult:
    exit_status: int
    stdout: str
    stderr: str
    tail: str  # last lines of stdout and stderr, interleaved as they arrived


class _OutputSession(asyncssh.SSHClientSession[bytes]):
    """Decodes output incrementally (UTF-8 split across packets is fine) and emits complete lines.

    `on_output` runs in the context of the caller of `run_command`, not in that of whoever opened the
    (shared, cached) connection: context variables (e.g. where a CLI session command writes) hold.
    """

    def __init__(self, node_id: str, on_output: OutputCallback | None) -> None:
        self._node_id = node_id
        self._on_output = on_output
        self._context = contextvars.copy_context()
        self._decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in STREAMS}
        self._chunks: dict[str, list[str]] = {s: [] for s in STREAMS}
        self._partial = dict.fromkeys(STREAMS, "")
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.callback_error: Exception | None = None
        self.lost: Exception | None = None

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        stream = "stderr" if datatype == asyncssh.EXTENDED_DATA_STDERR else "stdout"
        self._feed(stream, self._decoders[stream].decode(data))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc
        for stream in STREAMS:
            self._feed(stream, self._decoders[stream].decode(b"", final=True), final=True)

    def output(self, stream: str) -> str:
        return "".join(self._chunks[stream])

    def _feed(self, stream: str, text: str, final: bool = False) -> None:
        if text:
            self._chunks[stream].append(text)
        *lines, rest = (self._partial[stream] + text).split("\n")
        if final and rest:
            lines.append(rest)
            rest = ""
        self._partial[stream] = rest
        for line in lines:
            self.tail.append(line)
            if self._on_output is not None and self.callback_error is None:
                try:
                    self._context.run(self._on_output, self._node_id, stream, line)
                except Exception as exc:  # surfaced after the command ends; never kills the connection
                    self.callback_error = exc


def exit_status_of(chan: asyncssh.SSHClientChannel[bytes]) -> int | None:
    status = chan.get_exit_status()
    if status is not None and status >= 0:
        return status
    sig = chan.get_exit_signal()
    if sig is not None:
        try:
            return 128 + signal.Signals[f"SIG{sig[0]}"].value
        except KeyError:
            return 255
    return None


async def run_command(
    conn: asyncssh.SSHClientConnection,
    node_id: str,
    command: str,
    *,
    stdin: bytes = b"",
    timeout: float | None = None,
    on_output: OutputCallback | None = None,
    shown_command: str | None = None,
) -> RawResult:
    """Exec `command`, send `stdin` then EOF, wait for the channel to close.

    Raises Timeout (the channel is closed) and NodeUnreachable when the connection dies mid-command.
    """
    shown = shown_command or command
    session = _OutputSession(node_id, on_output)
    chan, _ = await conn.create_session(lambda: session, command, encoding=None)
    try:
        if stdin:
            chan.write(stdin)
        chan.write_eof()
        await asyncio.wait_for(chan.wait_closed(), timeout)
    except asyncio.TimeoutError:
        chan.close()
        raise Timeout(f"{node_id}: command {shown!r} did not finish within {timeout:g}s") from None
    except BaseException:
        with contextlib.suppress(OSError, asyncssh.Error):
            chan.send_signal("INT")  # Ctrl-C: the node stops the command (servers that support signals)
        chan.close()  # and do not leave the session open on the node
        raise
    if session.callback_error is not None:
        raise session.callback_error
    status = exit_status_of(chan)
    if status is None:
        if session.lost is not None or conn.is_closed():
            why = describe(session.lost) if session.lost else "connection closed"
            raise NodeUnreachable(f"{node_id}: connection lost while running {shown!r}: {why}")
        status = 255
    return RawResult(status, session.output("stdout"), session.output("stderr"), "\n".join(session.tail))
