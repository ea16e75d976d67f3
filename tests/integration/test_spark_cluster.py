"""Spark through the whole product: a virtual cluster with the Spark runtime, real Spark processes."""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from cloudtik_jupyter.api import Cluster
from cloudtik_jupyter.providers.virtual import state
from cloudtik_jupyter.state.records import NodeHealth
from cloudtik_jupyter.waiting import wait_for_sync

FAST = {"controller_interval": 0.5, "heartbeat_interval": 0.5, "heartbeat_timeout": 5.0}


def master_json(ui: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{ui}/json/", timeout=5) as response:
        return json.load(response)


def alive_workers(ui: str) -> list[dict[str, Any]]:
    try:
        return [w for w in master_json(ui)["workers"] if w["state"] == "ALIVE"]
    except (OSError, ValueError):  # not answering yet, or an HTML page while its JSON view starts
        return []


def runtime_busy(cluster: Cluster) -> list[bool | None]:
    """What the workers' agents last reported from the runtime's `busy` hook."""

    async def read() -> dict[str, NodeHealth]:
        head = await cluster._ctx.head()
        assert head is not None
        return await (await cluster._ctx.store(head)).all_health()

    workers = cluster.status().workers
    health = cluster._sync(read())
    return [health[w.node_id].activity.runtime_busy if w.node_id in health else None for w in workers]


@pytest.fixture
def spark_cluster(cloudtik_home: Path) -> Iterator[Cluster]:
    cluster = Cluster(
        {
            "from": "virtual-spark",
            "cluster_name": "sparky",
            "available_node_types": {"worker": {"min_workers": 2, "max_workers": 2}},
            "head": FAST,
        }
    )
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


def test_spark_cluster_end_to_end(spark_cluster: Cluster, cloudtik_home: Path, tmp_path: Path) -> None:
    cluster = spark_cluster
    info = cluster.info()
    links = {link.name: link for link in info.links}
    ui = links["Spark master UI"].url
    assert links["Spark master"].url == f"spark://{info.head_ip}:7077"
    assert "Spark history UI" in links

    # The master lists exactly the cluster's workers, with the configured cores and memory.
    workers = wait_for_sync(
        lambda: len(alive_workers(ui)) == 2 and alive_workers(ui), timeout=90, what="2 alive Spark workers"
    )
    assert sorted(w["host"] for w in workers) == sorted(info.worker_ips)
    assert all(w["cores"] == 1 and w["memory"] == 1024 for w in workers)

    # A job submitted with `cloudtik submit`'s API: correct result, run on the workers' executors.
    job = tmp_path / "count.py"
    job.write_text(
        ""
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.appName('count').getOrCreate()\n"
        "rdd = spark.sparkContext.parallelize(range(1, 100_001), 4)\n"
        "print('SUM', rdd.sum())\n"
        "spark.stop()\n"
    )
    lines: list[str] = []
    status = cluster.submit(job, on_output=lambda _n, _s, line: lines.append(line))
    assert status == 0, "\n".join(lines[-30:])
    assert "SUM 5000050000" in lines

    # Executors of a notebook-style session run on the worker nodes.
    session = cluster.spark_session(executor_memory="512m")
    try:
        sc = session.sparkContext
        ips = sorted(
            set(
                sc.parallelize(range(8), 8)
                .map(lambda _: __import__("os").environ.get("SPARK_LOCAL_IP", ""))
                .collect()
            )
        )
        assert set(ips) <= set(info.worker_ips) and ips, ips
        assert session.range(1000).selectExpr("sum(id)").collect()[0][0] == 499500
        # While the session holds executors on the workers, Spark's busy hook keeps them from idle release.
        wait_for_sync(lambda: runtime_busy(cluster) == [True, True], timeout=30, what="workers reported busy")
    finally:
        from cloudtik_jupyter.runtimes.spark.session import stop_spark

        stop_spark(session)
    wait_for_sync(lambda: runtime_busy(cluster) == [False, False], timeout=30, what="workers reported idle")

    # A killed Spark worker process: its node's agent restarts it and the master shows it alive again.
    worker_node = cluster.status().workers[0]
    (reply,) = cluster.exec(
        "python3 -m cloudtik_jupyter.node.agent ctl ~/.cloudtik/node/agent status",
        node=worker_node.node_id,
        check=True,
    )
    spark_worker = next(s for s in json.loads(reply.stdout)["services"] if s[0] == "spark-worker")
    os.kill(spark_worker[1], signal.SIGKILL)
    wait_for_sync(
        lambda: (
            len(alive_workers(ui)) == 2 and {w["id"] for w in alive_workers(ui)} != {w["id"] for w in workers}
        ),
        timeout=90,
        what="the restarted Spark worker to register again",
    )

    # A killed worker node: the controller replaces it and the replacement registers with the master.
    record = state.read_record(cloudtik_home, worker_node.node_id)
    assert record is not None
    root = psutil.Process(record.pid)
    for proc in [root, *root.children(recursive=True)]:
        proc.send_signal(signal.SIGKILL)

    def replaced() -> bool:
        ips = set(cluster.worker_ips())
        hosts = {w["host"] for w in alive_workers(ui)}
        return worker_node.internal_ip not in hosts and len(hosts) == 2 and hosts == ips

    wait_for_sync(replaced, timeout=120, what="the replacement worker node to register with the master")
