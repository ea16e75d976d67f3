"""Interactive session: the local terminal, in raw mode, bridged to a remote pty (like ``ssh -t``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import termios
import tty

import asyncssh

from .exec import exit_status_of

DEFAULT_TERM = "xterm-256color"


def terminal_size(fd: int) -> tuple[int, int]:
    """(columns, rows) of the terminal on `fd`; 80x24 when it is not one."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return 80, 24
    return size.columns or 80, size.lines or 24


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def _pump(reader: asyncssh.SSHReader[bytes], fd: int) -> None:
    while data := await reader.read(65536):
        _write_all(fd, data)


async def attach_process(
    conn: asyncssh.SSHClientConnection,
    command: str | None,
    *,
    tty_in: int = 0,
    tty_out: int = 1,
    tty_err: int = 2,
) -> int:
    """Run `command` (a login shell when None) with the local terminal attached; return its exit status.

    When `tty_in` is a terminal a pty is requested with the local TERM and window size, the terminal is
    put in raw mode (keys like Ctrl-C go to the remote side) and restored afterwards, whatever happens;
    window size changes follow (SIGWINCH, when running on the main thread).
    """
    loop = asyncio.get_running_loop()
    interactive = os.isatty(tty_in)
    size_fd = tty_out if os.isatty(tty_out) else tty_in
    process = await conn.create_process(
        command if command is not None else (),
        term_type=(os.environ.get("TERM") or DEFAULT_TERM) if interactive else None,
        term_size=terminal_size(size_fd) if interactive else None,
        request_pty=interactive,
        encoding=None,
    )

    def on_input() -> None:
        try:
            data = os.read(tty_in, 65536)
        except OSError:
            data = b""  # EIO: the terminal went away
        try:
            if data:
                process.stdin.write(data)
                return
            process.stdin.write_eof()
        except (OSError, asyncssh.Error):
            pass  # the remote side is gone; the output pumps end on their own
        loop.remove_reader(tty_in)

    saved = termios.tcgetattr(tty_in) if interactive else None
    winch = False
    reading = False
    try:
        if saved is not None:
            tty.setraw(tty_in, termios.TCSANOW)
            with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
                resize = lambda: process.change_terminal_size(*terminal_size(size_fd))  # noqa: E731
                loop.add_signal_handler(signal.SIGWINCH, resize)
                winch = True
        try:
            loop.add_reader(tty_in, on_input)
            reading = True
        except PermissionError:  # a regular file cannot be polled: send it whole
            process.stdin.write(await asyncio.to_thread(_read_all, tty_in))
            process.stdin.write_eof()
        await asyncio.gather(_pump(process.stdout, tty_out), _pump(process.stderr, tty_err))
        await process.wait_closed()
    finally:
        if reading:
            loop.remove_reader(tty_in)
        if winch:
            loop.remove_signal_handler(signal.SIGWINCH)
        if saved is not None:
            termios.tcsetattr(tty_in, termios.TCSADRAIN, saved)
        process.close()
    status = exit_status_of(process.channel)
    return 255 if status is None else status


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)
