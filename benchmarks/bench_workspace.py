"""Workspace create/delete through the API against a local moto server, and how fast a cancel takes.

Prints: create and delete times (public mode), what the locks cost (the local and the cloud lock
taken and released, against a create), and the time from `Workspace.cancel()` to the cancelled
create returning (the worker stops before its next cloud call: about one call). Absolute times are
moto's on this machine; the ratios are what carries over.

    .venv/bin/python benchmarks/bench_workspace.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import urllib.request


def main(rounds: int) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with tempfile.TemporaryDirectory(prefix="cloudtik-bench-") as home:
        os.environ.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE=os.path.join(home, "none"),
            AWS_SHARED_CREDENTIALS_FILE=os.path.join(home, "none"),
            CLOUDTIK_HOME=home,
        )
        from cloudtik_jupyter.api.workspace import Workspace
        from cloudtik_jupyter.errors import Cancelled

        config = {
            "workspace_name": "bench",
            "provider": {"type": "aws", "region": "us-east-1", "endpoint_url": endpoint},
            "networking": {"allowed_ssh_cidrs": ["203.0.113.7/32"]},
        }

        def reset() -> None:
            request = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")
            urllib.request.urlopen(request, timeout=10).close()

        creates, deletes, locking, cancels = [], [], [], []
        for _ in range(rounds):
            reset()
            warm = Workspace(config)  # moto builds a region's backends on first use: not measured
            warm.create()
            warm.delete()
            ws = Workspace(config)
            t = time.perf_counter()
            ws.create()
            creates.append(time.perf_counter() - t)
            t = time.perf_counter()
            ws.delete()
            deletes.append(time.perf_counter() - t)

            locked = Workspace(config)  # what the two locks cost: taken and released around nothing
            _ = locked.provider.clients
            t = time.perf_counter()
            locked._exclusive("create", lambda: None)
            locking.append(time.perf_counter() - t)

            reached = threading.Event()

            def at_nat(message: str, reached: threading.Event = reached) -> None:
                if message == "creating NAT gateway":
                    reached.set()

            ws = Workspace(config, progress=at_nat)
            done: list[float] = []

            def run(ws: Workspace = ws, done: list[float] = done) -> None:
                try:
                    ws.create()
                except Cancelled:
                    done.append(time.perf_counter())

            worker = threading.Thread(target=run)
            worker.start()
            reached.wait(60)
            t = time.perf_counter()
            ws.cancel()
            worker.join(60)
            cancels.append(done[0] - t)
            Workspace(config).delete()

    server.stop()
    create, delete, locks = (statistics.median(x) for x in (creates, deletes, locking))
    print(f"workspace create (API, moto)      : {create:6.2f} s   delete: {delete:6.2f} s")
    print(f"local + cloud lock, taken+released: {locks * 1000:6.0f} ms ({locks / create:.1%} of a create)")
    print(
        f"cancel -> create returns          : {statistics.median(cancels) * 1000:6.0f} ms (median of {rounds})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    main(parser.parse_args().rounds)
