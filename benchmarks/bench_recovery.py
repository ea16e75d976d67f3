"""Time from killing a worker's whole process tree to its replacement being up-to-date (heartbeat timeout 3 s).

Target: <= 6 s. Runs a real virtual cluster (head + 2 workers) in a private CLOUDTIK_HOME.
"""

from __future__ import annotations

import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

import psutil
import repo  # noqa: F401 -- the repository root on sys.path, for tests' helpers


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="ctj-bench-recovery-"))
    os.environ["CLOUDTIK_HOME"] = str(home)
    from cloudtik_jupyter.api import Cluster
    from cloudtik_jupyter.providers.virtual import state
    from cloudtik_jupyter.waiting import wait_for_sync
    from tests.virtual_nodes import teardown_virtual

    cluster = Cluster(
        {
            "cluster_name": "recovery",
            "provider": {"type": "virtual"},
            "head_node_type": "head",
            "available_node_types": {"head": {}, "worker": {"min_workers": 2, "max_workers": 2}},
            "head": {"controller_interval": 1.0, "heartbeat_interval": 1.0, "heartbeat_timeout": 3.0},
        }
    )
    samples = []
    try:
        cluster.up()
        for _ in range(3):
            victim = cluster.status().workers[0].node_id
            record = state.read_record(home, victim)
            assert record is not None
            root = psutil.Process(record.pid)
            procs = [root, *root.children(recursive=True)]
            started = time.perf_counter()
            for p in procs:
                p.send_signal(signal.SIGKILL)

            def recovered(victim: str = victim) -> bool:
                workers = cluster.status().workers
                return (
                    len(workers) == 2
                    and victim not in {w.node_id for w in workers}
                    and all(w.status == "up-to-date" for w in workers)
                )

            wait_for_sync(recovered, timeout=60, what="the replacement worker to be up-to-date")
            samples.append(time.perf_counter() - started)
    finally:
        try:
            cluster.down()
        finally:
            teardown_virtual(home)
    print("worker killed -> replacement up-to-date (controller interval 1 s, heartbeat timeout 3 s)")
    print(f"  runs: {', '.join(f'{s:.2f} s' for s in samples)}")
    median = statistics.median(samples)
    print(f"  median {median:.2f} s   {median / 6:.2f}x of target 6 s")


if __name__ == "__main__":
    main()
