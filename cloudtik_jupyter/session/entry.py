"""The `cloudtik` command's entry point: hand the command to the CLI session, or run it in-process.

Standard library only until it knows: a command the session answers costs this interpreter's start, a
socket and a few frames. Commands that take a terminal or stream long progress (`attach`, `monitor`,
`up`, `down`, `workspace ...`) run in-process as before, and so does everything when
``CLOUDTIK_NO_SESSION=1`` is set, on systems other than Linux, or when no session can be had.
"""

from __future__ import annotations

import os
import sys

# First words (after the top-level options) that run in this process.
IN_PROCESS = frozenset(("up", "down", "attach", "monitor", "workspace"))
_TOP_FLAGS = frozenset(("--debug",))


def command_word(argv: list[str]) -> str | None:
    """The command (or group) named by `argv`, past the top-level flags; None when there is none."""
    for word in argv:
        if word in _TOP_FLAGS:
            continue
        return None if word.startswith("-") else word
    return None


def uses_session(argv: list[str]) -> bool:
    if os.environ.get("CLOUDTIK_NO_SESSION", "") not in ("", "0"):
        return False
    if not sys.platform.startswith("linux"):  # a thread of its own directory needs unshare(CLONE_FS)
        return False
    return command_word(argv) not in IN_PROCESS


def main() -> None:
    argv = sys.argv[1:]
    if uses_session(argv):
        from .client import Unavailable, forward

        try:
            code = forward(argv)
        except Unavailable:
            pass  # nothing ran: run it here
        except KeyboardInterrupt:
            sys.exit(130)
        else:
            sys.exit(code)
    from ..cli import main as in_process

    in_process()
