"""`python -m cloudtik_jupyter.session [status|stop]`: the CLI sessions of this state dir.

`serve` is how a client starts one (with the listening socket in ``$CLOUDTIK_SESSION_FD``).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "status"
    if what == "serve":
        fd = int(os.environ["CLOUDTIK_SESSION_FD"])
        if os.fork() > 0:  # the client waits for this one; the session itself is nobody's child
            os._exit(0)
        from .server import main as serve

        serve(fd)
        return 0
    from .admin import describe, stop_all
    from .place import state_dir

    if what == "status":
        lines = describe(state_dir())
        print("\n".join(lines) if lines else "no CLI session")
        return 0
    if what == "stop":
        stopped = stop_all(state_dir())
        print(f"stopped {', '.join(map(str, stopped))}" if stopped else "no CLI session")
        return 0
    print("usage: python -m cloudtik_jupyter.session [status|stop]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
