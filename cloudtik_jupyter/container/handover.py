"""Stop the node agent running outside the container (``python -m cloudtik_jupyter.container.handover``).

Run on the node just before its first container starts, when the node was set up in host mode before:
the agent (and the services it owns) stop, so the agent started in the container is the only one.
"""

from __future__ import annotations

import asyncio
import sys

from .. import paths
from ..errors import CloudtikError


def main() -> int:
    from ..node.keeper import keeper_pid
    from ..node.start import agent_pid, stop_agent
    from ..records.layout import AGENT_DIR

    run_dir = paths.node_state_dir() / AGENT_DIR
    pid = agent_pid(run_dir) or keeper_pid(run_dir)
    if pid is None:
        return 0
    try:
        asyncio.run(stop_agent(run_dir))
    except CloudtikError as exc:
        print(f"error: cannot stop the node agent (pid {pid}): {exc}", file=sys.stderr)
        return 1
    print(f"stopped the node agent (pid {pid}) running outside the container")
    return 0


if __name__ == "__main__":
    sys.exit(main())
