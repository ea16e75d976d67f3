"""What Spark's authentication costs: a master and 2 workers started from the runtime's own service specs,
once with the cluster's key (as clusters run) and once with authentication off, and the same notebook-style
job through `spark_session()` on each: session start and job time, best of 3.

    .venv/bin/python benchmarks/bench_spark_auth.py
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from cloudtik_jupyter.records.node import NodeInfo
from cloudtik_jupyter.runtimes.secret import ensure_secret
from cloudtik_jupyter.runtimes.spark.auth import properties_file, spark_secret
from cloudtik_jupyter.runtimes.spark.runtime import SparkRuntime
from cloudtik_jupyter.runtimes.spark.session import spark_session, stop_spark
from cloudtik_jupyter.waiting import wait_for_sync

RUNTIME = SparkRuntime()


def alive(ui: str) -> int:
    try:
        with urllib.request.urlopen(f"{ui}/json/", timeout=2) as r:
            return sum(1 for w in json.load(r)["workers"] if w["state"] == "ALIVE")
    except (OSError, ValueError):  # not answering yet, or an HTML page while its JSON view starts
        return 0


def run(work: Path, authenticated: bool) -> tuple[float, float]:
    block = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
    head, workers = f"{block}.1", [f"{block}.2", f"{block}.3"]
    config = RUNTIME.parse_config({"history_server": False, "executor_memory": "512m"})
    secret = ensure_secret(work / "runtime_secret")
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(ip: str, kind: str) -> None:
        node = NodeInfo("bench", ip, kind, kind, ip, head, work / ip, {"CPU": 1}, secret_file=secret)
        specs = RUNTIME.services(config, node)
        if not authenticated:  # the same daemons, told not to ask for the key
            properties_file(node.runtime_dir).write_text("spark.authenticate false\n")
        for spec in specs:
            procs.append(
                subprocess.Popen(
                    spec.argv,
                    env={**os.environ, **spec.env},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    try:
        spawn(head, "head")
        ui = f"http://{head}:{config.master_ui_port}"
        wait_for_sync(lambda: alive(ui) >= 0 and _up(ui), timeout=120, what="the master")
        for ip in workers:
            spawn(ip, "worker")
        wait_for_sync(lambda: alive(ui) == 2, timeout=300, what="2 alive workers")
        master = RUNTIME.master_url(config, head)
        best_start = best_job = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            session = spark_session(
                master,
                "bench-auth",
                auth_secret=spark_secret(secret) if authenticated else None,
                executor_memory="512m",
                sql_shuffle_partitions=8,
            )
            sc = session.sparkContext
            sc.parallelize(range(10), 2).count()  # executors registered and reachable
            best_start = min(best_start, time.perf_counter() - started)
            started = time.perf_counter()
            assert sc.parallelize(range(2_000_000), 8).map(lambda x: x * x).sum() > 0
            session.range(2_000_000).selectExpr("id % 97 AS k").groupBy("k").count().collect()  # a shuffle
            best_job = min(best_job, time.perf_counter() - started)
            stop_spark(session)
        return best_start, best_job
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def _up(ui: str) -> bool:
    try:
        with urllib.request.urlopen(f"{ui}/json/", timeout=2):
            return True
    except OSError:
        return False


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ctj-bench-auth-") as tmp:
        on = run(Path(tmp) / "on", authenticated=True)
        off = run(Path(tmp) / "off", authenticated=False)
    print("Spark job through spark_session(), master + 2 workers (best of 3)")
    print(
        f"  session start to executors ready: auth {on[0]:6.2f} s, no auth {off[0]:6.2f} s (ratio {on[0] / off[0]:.2f})"
    )
    print(
        f"  job (sum over 2M, a 97-key shuffle): auth {on[1]:6.2f} s, no auth {off[1]:6.2f} s (ratio {on[1] / off[1]:.2f})"
    )


if __name__ == "__main__":
    main()
