"""One forwarded command, run by the CLI's own code in a thread of the session, as if in-process: with the
client's stdin/stdout/stderr, terminal variables, working directory, umask and Ctrl-C.

What follows the command into the event loop's tasks (its output, its terminal variables, its Ctrl-C)
rides on context variables; the working directory is the thread's own (Linux: unshare(CLONE_FS)), and
the API resolves local paths before handing them to the loop.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

from .. import aio
from .streams import InText, Output, OutText, Switch

CLONE_FS = 0x200
_current: ContextVar[Command | None] = ContextVar("cloudtik_session_command", default=None)


def own_filesystem_context() -> None:
    """Give this thread its own working directory and umask (Linux), so commands can differ in both."""
    if hasattr(os, "unshare"):  # Python 3.12+
        os.unshare(CLONE_FS)
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_FS) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def per_thread_cwd_works() -> str | None:
    """None if threads can have their own working directory here, else why not."""
    failure: list[str] = []

    def probe() -> None:
        try:
            own_filesystem_context()
        except (OSError, AttributeError) as exc:
            failure.append(f"unshare(CLONE_FS): {exc}")

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return failure[0] if failure else None


class CommandEnviron(MutableMapping[str, str]):
    """`os.environ` in the session: the current command's terminal variables over the session's own
    environment (which equals the client's apart from those: see `place.identity`)."""

    def __init__(self, real: MutableMapping[str, str]) -> None:
        self._real = real

    def _overlay(self) -> Mapping[str, str | None] | None:
        command = _current.get()
        return command.env if command is not None else None

    def __getitem__(self, key: str) -> str:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            value = overlay[key]
            if value is None:
                raise KeyError(key)
            return value
        return self._real[key]

    def __iter__(self) -> Iterator[str]:
        overlay = self._overlay() or {}
        yield from (k for k in self._real if k not in overlay)
        yield from (k for k, v in overlay.items() if v is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __setitem__(self, key: str, value: str) -> None:
        self._real[key] = value

    def __delitem__(self, key: str) -> None:
        del self._real[key]

    def copy(self) -> dict[str, str]:
        return dict(self)

    def __repr__(self) -> str:
        return f"CommandEnviron({dict(self)!r})"


def _streams() -> dict[str, Any] | None:
    command = _current.get()
    return command.streams if command is not None else None


def install() -> None:
    """Route this process's stdio and environment through the current command (once, at start)."""
    sys.stdin = Switch(_streams, "stdin", sys.stdin)
    sys.stdout = Switch(_streams, "stdout", sys.stdout)
    sys.stderr = Switch(_streams, "stderr", sys.stderr)
    # Replaced on purpose (not cleared): os.getenv and every os.environ reader see the overlay.
    os.environ = CommandEnviron(os.environ)  # type: ignore[assignment]  # noqa: B003


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message"), as the interpreter does
    return 1


class Command:
    """`cloudtik ARGV` for one client; `run` in a thread of its own (it changes that thread's cwd)."""

    def __init__(
        self,
        argv: list[str],
        cwd: str,
        umask: int,
        env: dict[str, str | None],
        fds: tuple[int, int, int],
    ) -> None:
        self.argv = argv
        self.cwd = cwd
        self.umask = umask
        self.env = env
        self.fds = fds
        self.interrupt = aio.Interrupt()
        self.output = Output()
        self.streams: dict[str, Any] = {
            "stdin": InText(fds[0], self.interrupt),
            "stdout": OutText(self.output, fds[1], "strict"),
            "stderr": OutText(self.output, fds[2], "backslashreplace"),
        }

    def run(self, prepare: Any = None) -> int:
        """Run the command in this thread; the exit status. `prepare()` runs first, inside its context
        (the session enters its cluster pool there)."""
        own_filesystem_context()
        os.umask(self.umask)
        token = _current.set(self)
        interrupt_token = aio.current_interrupt.set(self.interrupt)
        try:
            os.chdir(self.cwd)
            with prepare() if prepare is not None else contextlib.nullcontext():
                return self._invoke()
        except OSError as exc:  # the client's directory is gone
            print(f"Error: {exc}", file=sys.stderr)
            return 1
        finally:
            with contextlib.suppress(Exception):
                self.output.flush()
            aio.current_interrupt.reset(interrupt_token)
            _current.reset(token)

    def _invoke(self) -> int:
        from ..cli import main

        try:
            main.main(args=list(self.argv), prog_name="cloudtik")
        except SystemExit as exc:
            return _exit_code(exc.code)
        except KeyboardInterrupt:
            return 130
        except BaseException:  # an escaped error (--debug): the traceback, as the interpreter prints it
            traceback.print_exc()
            return 1
        return 0

    def stop(self) -> None:
        """Ctrl-C from the client: the command's waits end with KeyboardInterrupt."""
        self.interrupt.fire()

    def detach(self) -> None:
        """The client is gone: stop the command, drop its output."""
        self.interrupt.fire()
        self.output.detach()

    def close(self) -> None:
        self.output.close()
        self.interrupt.close()
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
