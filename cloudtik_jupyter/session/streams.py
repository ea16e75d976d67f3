"""A forwarded command's stdin, stdout and stderr: the client's own descriptors, seen by the CLI's code
through `sys.stdin/stdout/stderr` (switches that follow the command's context variable).

Output goes through one writer thread per command, in order: exec output is written from the session's
shared event loop, which must not wait on one client's slow pipe. A client that leaves detaches its
streams (later output is dropped). Reads from stdin give way to Ctrl-C.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import select
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

from ..aio import Interrupt

BACKLOG = 8 << 20  # bytes queued before writers wait for the client to read
CHUNK = 4096  # at most PIPE_BUF per write: a pipe reported writable takes it without blocking


class Output:
    """The writer of one command's stdout and stderr."""

    def __init__(self) -> None:
        self.owner = threading.get_ident()  # the command's thread: only it waits in flush()
        self._queue: deque[tuple[int, bytes]] = deque()
        self._pending = 0
        self._cond = threading.Condition()
        self._detached = False
        self._broken: set[int] = set()
        self._abort_r, self._abort_w = os.pipe()
        self._thread: threading.Thread | None = None

    def write(self, fd: int, data: bytes) -> None:
        if not data:
            return
        with self._cond:
            if fd in self._broken:
                raise BrokenPipeError(32, "Broken pipe")
            if self._detached:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cloudtik-session-output", daemon=True)
                self._thread.start()
            while self._pending > BACKLOG and not self._detached:
                self._cond.wait()
            self._queue.append((fd, data))
            self._pending += len(data)
            self._cond.notify_all()

    def flush(self) -> None:
        """From the command's thread: wait until the client has its output. From others: nothing to do."""
        if threading.get_ident() != self.owner:
            return
        with self._cond:
            while self._pending and not self._detached:
                self._cond.wait()

    def detach(self) -> None:
        """The client left: drop what is queued and anything written later."""
        with self._cond:
            self._detached = True
            self._queue.clear()
            self._pending = 0
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            os.write(self._abort_w, b"!")

    def close(self) -> None:
        if self._abort_r < 0:
            return
        self.flush()
        with self._cond:
            self._detached = True
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            os.write(self._abort_w, b"!")
        if self._thread is not None:
            self._thread.join()
        for fd in (self._abort_r, self._abort_w):
            os.close(fd)
        self._abort_r = self._abort_w = -1

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._detached:
                    self._cond.wait()
                if not self._queue:
                    return
                fd, data = self._queue[0]
            ok = self._write_all(fd, data)
            with self._cond:
                if self._queue and self._queue[0][1] is data:
                    self._queue.popleft()
                    self._pending -= len(data)
                if not ok:
                    self._broken.add(fd)
                    dropped = [d for f, d in self._queue if f == fd]
                    self._queue = deque((f, d) for f, d in self._queue if f != fd)
                    self._pending -= sum(len(d) for d in dropped)
                self._cond.notify_all()

    def _write_all(self, fd: int, data: bytes) -> bool:
        view = memoryview(data)
        while view:
            try:
                readable, _, _ = select.select([self._abort_r], [fd], [])
                if readable:
                    return True  # detached: the rest is dropped
                view = view[os.write(fd, view[:CHUNK]) :]
            except InterruptedError:
                continue
            except OSError:  # EPIPE (the reader is gone), EIO (the terminal closed)
                return False
        return True


class OutText:
    """`sys.stdout` / `sys.stderr` of one command."""

    encoding = "utf-8"
    line_buffering = True
    closed = False

    def __init__(self, output: Output, fd: int, errors: str) -> None:
        self._output = output
        self._fd = fd
        self.errors = errors
        self.buffer = _OutBytes(output, fd)
        self._tty = os.isatty(fd)

    def write(self, text: str) -> int:
        self._output.write(self._fd, text.encode("utf-8", self.errors))
        return len(text)

    def writelines(self, lines: Iterator[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._output.flush()

    def isatty(self) -> bool:
        return self._tty

    def fileno(self) -> int:
        return self._fd

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False


class _OutBytes:
    def __init__(self, output: Output, fd: int) -> None:
        self._output = output
        self._fd = fd

    def write(self, data: bytes) -> int:
        self._output.write(self._fd, bytes(data))
        return len(data)

    def flush(self) -> None:
        self._output.flush()

    def fileno(self) -> int:
        return self._fd


class InText:
    """`sys.stdin` of one command: reads the client's stdin; Ctrl-C (its Interrupt) ends a read."""

    encoding = "utf-8"
    errors = "strict"
    closed = False

    def __init__(self, fd: int, interrupt: Interrupt) -> None:
        self._fd = fd
        self._interrupt = interrupt
        self._buf = b""
        self._eof = False
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._tty = os.isatty(fd)

    def _more(self) -> bool:
        if self._eof:
            return False
        while True:
            try:
                ready, _, _ = select.select([self._fd, self._interrupt.fileno()], [], [])
            except InterruptedError:
                continue
            if self._interrupt.fired:
                raise KeyboardInterrupt
            if self._fd in ready:
                break
        chunk = os.read(self._fd, 65536)
        self._eof = not chunk
        self._buf += chunk
        return bool(chunk)

    def _take(self, n: int) -> str:
        data, self._buf = self._buf[:n], self._buf[n:]
        return self._decoder.decode(data, final=self._eof and not self._buf)

    def readline(self, size: int = -1) -> str:
        while b"\n" not in self._buf and (size < 0 or len(self._buf) < size) and self._more():
            pass
        end = self._buf.find(b"\n") + 1 or len(self._buf)
        return self._take(end if size < 0 else min(end, size))

    def read(self, size: int = -1) -> str:
        while (size < 0 or len(self._buf) < size) and self._more():
            pass
        return self._take(len(self._buf) if size < 0 else size)

    def __iter__(self) -> Iterator[str]:
        while line := self.readline():
            yield line

    def isatty(self) -> bool:
        return self._tty

    def fileno(self) -> int:
        return self._fd

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False


class Switch:
    """What `sys.stdout` (or stdin, stderr) is in the session: the current command's stream, or the
    session's own (its log) outside any command."""

    def __init__(self, streams: Any, name: str, fallback: Any) -> None:
        self._streams = streams  # () -> the current command's {name: stream}, or None
        self._name = name
        self._fallback = fallback

    def _target(self) -> Any:
        current = self._streams()
        return current[self._name] if current is not None else self._fallback

    @property
    def encoding(self) -> str:
        return "utf-8"

    @property
    def errors(self) -> str:
        return str(getattr(self._target(), "errors", "strict"))

    def write(self, text: str) -> int:
        return int(self._target().write(text))

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return bool(self._target().isatty())

    def fileno(self) -> int:
        return int(self._target().fileno())

    def readline(self, size: int = -1) -> str:
        return str(self._target().readline(size))

    def read(self, size: int = -1) -> str:
        return str(self._target().read(size))

    def __iter__(self) -> Iterator[str]:
        return iter(self._target())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)
