"""Dask, MLflow and Spark (with a Hive metastore) combined on ONE virtual cluster (shared by this module's
tests), and service discovery: a second cluster of the workspace consumes the first one's MLflow tracking
server and Hive metastore by name.

Order matters: the last test replaces the provider cluster's head.
"""

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

from cloudtik_jupyter import paths
from cloudtik_jupyter.api import Cluster
from cloudtik_jupyter.providers.virtual import state
from cloudtik_jupyter.runtimes.spark.session import stop_spark
from cloudtik_jupyter.waiting import wait_for_sync
from tests.cli_process import cli
from tests.virtual_nodes import teardown_virtual

ROOT = Path(__file__).resolve().parents[2]
FAST = {"controller_interval": 0.5, "heartbeat_interval": 0.5, "heartbeat_timeout": 5.0}
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
WORKER_MEMORY = 768 * 2**20
SAVE_TABLE = (  # a Spark job: saves a table named by its argument (amounts sum to 150), lists the tables
    "import sys\n"
    "from pyspark.sql import SparkSession\n"
    "spark = SparkSession.builder.getOrCreate()\n"
    "rows = [(i, i * 10) for i in range(6)]\n"
    "spark.createDataFrame(rows, 'id INT, amount INT').write.saveAsTable(sys.argv[1])\n"
    "print('TABLES', sorted(t.name for t in spark.catalog.listTables()))\n"
    "spark.stop()\n"
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("rt") / "home"
    paths.ensure_private_dir(home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLOUDTIK_HOME", str(home))
        mp.setenv("CLOUDTIK_VIRTUAL_IDLE_EXIT", "600")
        for key, value in QUIET.items():
            mp.setenv(key, value)
        try:
            yield home
        finally:
            teardown_virtual(home)


@pytest.fixture(scope="module")
def lab(home: Path) -> Iterator[Cluster]:
    """Spark (with a Hive metastore), Dask and MLflow on one head and two workers (2 CPUs, 768 MiB each)."""
    cluster = Cluster(
        {
            "from": "virtual-small",
            "cluster_name": "lab",
            "available_node_types": {
                "worker": {"min_workers": 2, "max_workers": 2, "resources": {"CPU": 2, "memory": WORKER_MEMORY}}
            },
            "runtime": {
                "types": ["spark", "dask", "mlflow"],
                "spark": {"history_server": False, "executor_memory": "512m", "metastore": True},
            },
            "head": FAST,
        }
    )
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


def dask_workers(cluster: Cluster) -> dict[str, Any]:
    client = cluster.dask_client()
    try:
        return dict(client.scheduler_info(n_workers=-1)["workers"])
    finally:
        client.close()


def mlflow_runs(uri: str) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(experiments)) if experiments else []


def agent_services(cluster: Cluster, node: str) -> dict[str, int]:
    (reply,) = cluster.exec(
        "python3 -m cloudtik_jupyter.node.agent ctl ~/.cloudtik/node/agent status", node=node, check=True
    )
    return {s[0]: s[1] for s in json.loads(reply.stdout)["services"]}


def test_links_ports_and_dask_workers_sized_from_node_resources(lab: Cluster) -> None:
    info = lab.info()
    links = {link.name: link.url for link in info.links}
    head = info.head_ip
    assert links["Dask scheduler"] == f"tcp://{head}:8786"
    assert links["Dask dashboard"] == f"http://{head}:8787/status"
    assert links["MLflow UI"] == links["MLflow tracking"] == lab.mlflow_tracking_uri() == f"http://{head}:5000"
    assert links["Spark master"] == f"spark://{head}:7077"
    assert links["Hive metastore"] == f"thrift://{head}:9083"
    with urllib.request.urlopen(links["Dask dashboard"], timeout=10) as r:  # the dashboard answers
        assert r.status == 200

    workers = wait_for_sync(
        lambda: len(w := dask_workers(lab)) == 2 and w, timeout=60, what="2 Dask workers"
    )
    assert sorted(w["host"] for w in workers.values()) == sorted(info.worker_ips)
    assert all(w["nthreads"] == 2 and w["memory_limit"] == WORKER_MEMORY for w in workers.values())

    # Every runtime daemon binds the node's private address, none the wildcard.
    ips = {head, *info.worker_ips}
    wildcard = [
        c
        for c in psutil.net_connections("inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.ip in ("0.0.0.0", "::") and c.pid and _on_nodes(c.pid, ips)
    ]
    assert not wildcard, wildcard


def _on_nodes(pid: int, ips: set[str]) -> bool:
    try:
        env = psutil.Process(pid).environ()
    except psutil.Error:
        return False
    return env.get("CLOUDTIK_NODE_IP") in ips


def test_cli_submit_dask_job_logs_mlflow_runs_from_the_workers(lab: Cluster, home: Path, tmp_path: Path) -> None:
    job = tmp_path / "search.py"
    job.write_text(
        "import os, socket\n"
        "from distributed import Client\n"
        "client = Client()  # DASK_SCHEDULER_ADDRESS, set by cloudtik submit\n"
        "def trial(lr):\n"
        "    import mlflow, os\n"
        "    with mlflow.start_run(run_name=f'lr-{lr}'):\n"
        "        mlflow.log_param('lr', lr)\n"
        "        mlflow.log_param('node', os.environ['CLOUDTIK_NODE_IP'])\n"
        "        mlflow.log_metric('loss', (lr - 0.3) ** 2)\n"
        "    return lr\n"
        "print('TRIALS', sorted(client.gather(client.map(trial, [0.1, 0.3, 0.5, 0.7]))))\n"
    )
    result = cli(home, "submit", "--runtime", "dask", "lab", str(job))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "TRIALS [0.1, 0.3, 0.5, 0.7]" in result.stdout
    runs = [r for r in mlflow_runs(lab.mlflow_tracking_uri()) if r.info.run_name.startswith("lr-")]
    assert sorted(r.data.params["lr"] for r in runs) == ["0.1", "0.3", "0.5", "0.7"]
    assert {r.data.params["node"] for r in runs} <= set(lab.worker_ips())

    # A second submission of the same job: the same cluster, more runs (nothing left over from the first).
    again = cli(home, "submit", "--runtime", "dask", "lab", str(job))
    assert again.returncode == 0, again.stderr
    assert len([r for r in mlflow_runs(lab.mlflow_tracking_uri()) if r.info.run_name.startswith("lr-")]) == 8


def test_spark_executor_on_a_worker_logs_to_the_same_tracking_server(lab: Cluster, tmp_path: Path) -> None:
    job = tmp_path / "spark_mlflow.py"
    job.write_text(
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.appName('mlflow').getOrCreate()\n"
        "def log(_):\n"
        "    import mlflow, os\n"
        "    with mlflow.start_run(run_name='spark-task'):\n"
        "        mlflow.log_param('node', os.environ['CLOUDTIK_NODE_IP'])\n"
        "    return [1]\n"
        "print('LOGGED', spark.sparkContext.parallelize([0], 1).mapPartitions(log).sum())\n"
        "spark.stop()\n"
    )
    lines: list[str] = []
    status = lab.submit(job, runtime="spark", on_output=lambda _n, _s, line: lines.append(line))
    assert status == 0, "\n".join(lines[-30:])
    (run,) = [r for r in mlflow_runs(lab.mlflow_tracking_uri()) if r.info.run_name == "spark-task"]
    assert run.data.params["node"] in lab.worker_ips()


def test_a_table_a_cli_job_saves_is_in_the_metastore_and_the_workspace_warehouse(
    lab: Cluster, home: Path, tmp_path: Path
) -> None:
    job = tmp_path / "save.py"
    job.write_text(SAVE_TABLE)
    result = cli(home, "submit", "--runtime", "spark", "lab", str(job), "sales")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "TABLES ['sales']" in result.stdout
    assert list((home / "workspaces" / "default" / "warehouse" / "sales").glob("*.parquet"))


def test_killed_services_are_restarted_and_reported_in_heartbeats(lab: Cluster) -> None:
    head = lab.status().head
    assert head is not None
    worker = lab.status().workers[0]
    before = agent_services(lab, head.node_id)
    os.kill(before["mlflow-server"], signal.SIGKILL)
    os.kill(before["hive-metastore"], signal.SIGKILL)
    dask_pid = agent_services(lab, worker.node_id)["dask-worker"]
    os.kill(dask_pid, signal.SIGKILL)

    async def health() -> dict[str, Any]:
        store = await lab._ctx.store(await lab._ctx.head())  # type: ignore[arg-type]
        return {n: {p.name: (p.status.value, p.restarts) for p in ps} for n, ps in (await store.all_processes()).items()}

    def restarted() -> bool:
        rows = lab._sync(health())
        on_head = rows[head.node_id]
        return (
            on_head["mlflow-server"] == on_head["hive-metastore"] == ("running", 1)
            and rows[worker.node_id]["dask-worker"] == ("running", 1)
        )

    wait_for_sync(
        restarted, timeout=180, what="mlflow-server, hive-metastore and dask-worker restarted and reported running"
    )
    wait_for_sync(lambda: len(dask_workers(lab)) == 2, timeout=60, what="the restarted Dask worker to rejoin")
    assert mlflow_runs(lab.mlflow_tracking_uri())  # the same database after the restart


def test_lost_worker_node_is_replaced_and_its_dask_worker_joins(lab: Cluster, home: Path) -> None:
    victim = lab.status().workers[0]
    record = state.read_record(home, victim.node_id)
    assert record is not None
    root = psutil.Process(record.pid)
    for proc in [root, *root.children(recursive=True)]:
        proc.send_signal(signal.SIGKILL)

    def replaced() -> bool:
        hosts = {w["host"] for w in dask_workers(lab).values()}
        return victim.internal_ip not in hosts and len(hosts) == 2 and hosts == set(lab.worker_ips())

    wait_for_sync(replaced, timeout=150, what="the replacement worker's Dask worker to join the scheduler")


def test_workspace_lists_published_services_and_another_cluster_consumes_them(
    lab: Cluster, home: Path, tmp_path: Path
) -> None:
    shown = cli(home, "workspace", "info", "default")
    assert shown.returncode == 0, shown.stderr
    head = lab.info().head_ip
    assert f"lab           mlflow-tracking   mlflow-tracking   http://{head}:5000" in shown.stdout
    assert f"dask-scheduler    dask-scheduler    tcp://{head}:8786" in shown.stdout
    assert f"hive-metastore    hive-metastore    thrift://{head}:9083" in shown.stdout

    # The consumer runs Dask: its workers are long-lived processes that got the tracking URI when they
    # started, the case a lookup at each use (submit, the notebook helpers) does not cover. It runs Spark
    # on lab's Hive metastore too (its worker's 768 MiB take one 512 MiB executor).
    consumer = Cluster(
        {
            "from": "virtual-small",
            "cluster_name": "trainer",
            "available_node_types": {
                "worker": {"min_workers": 1, "max_workers": 1, "resources": {"CPU": 1, "memory": WORKER_MEMORY}}
            },
            "runtime": {
                "types": ["dask", "mlflow", "spark"],
                "mlflow": {"from_cluster": "lab"},
                "spark": {"metastore_from": "lab", "history_server": False, "executor_memory": "512m"},
            },
            "head": {**FAST, "discovery_interval": 0.5},
        }
    ).up()

    def log_from_a_dask_worker() -> None:
        import mlflow

        with mlflow.start_run(run_name="from-trainer-worker"):
            mlflow.log_metric("accuracy", 0.8)

    try:
        assert consumer.mlflow_tracking_uri() == lab.mlflow_tracking_uri()
        assert _worker_tracking_uris(consumer) == {lab.mlflow_tracking_uri()}
        trainer = [d for d in _published() if d.cluster == "trainer"]
        # No tracking server, no metastore of its own.
        assert sorted(s.kind for d in trainer for s in d.services) == ["dask-scheduler", "spark-master"]
        assert _links(consumer)["Hive metastore"] == _links(lab)["Hive metastore"]

        # A notebook session on the consumer (what `%%cloudtik sql` uses) lists and reads lab's table,
        # saved before lab's metastore was killed and restarted.
        session = consumer.spark_session("reader")
        try:
            assert [r.tableName for r in session.sql("show tables").collect()] == ["sales"]
            assert session.table("sales").agg({"amount": "sum"}).first()[0] == 150
        finally:
            stop_spark(session)
        job = tmp_path / "log.py"
        job.write_text(
            "import mlflow\n"
            "with mlflow.start_run(run_name='from-trainer'):\n"
            "    mlflow.log_metric('accuracy', 0.9)\n"
        )
        result = cli(home, "submit", "--runtime", "mlflow", "trainer", str(job))
        assert result.returncode == 0, result.stdout + result.stderr
        assert any(r.info.run_name == "from-trainer" for r in mlflow_runs(lab.mlflow_tracking_uri()))

        # The provider's head is replaced (lost, then `up` again): the consumer finds the new server.
        old = lab.status().head
        assert old is not None
        record = state.read_record(home, old.node_id)
        assert record is not None
        root = psutil.Process(record.pid)
        for proc in [root, *root.children(recursive=True)]:
            proc.send_signal(signal.SIGKILL)
        wait_for_sync(lambda: lab.status().head is None, timeout=30, what="the old head to be gone")
        lab.up()
        new_uri = lab.mlflow_tracking_uri()
        assert new_uri != f"http://{old.internal_ip}:5000"
        assert consumer.mlflow_tracking_uri() == new_uri
        assert _links(consumer)["Hive metastore"] == _links(lab)["Hive metastore"] == f"thrift://{lab.info().head_ip}:9083"
        # The new head's metastore is a new catalog (Derby on the head's disk): a table saved there now is
        # listed and read by the consumer's next job, which looks the metastore up when it is submitted.
        (tmp_path / "save.py").write_text(SAVE_TABLE)
        saved = cli(home, "submit", "--runtime", "spark", "lab", str(tmp_path / "save.py"), "after")
        assert saved.returncode == 0, saved.stdout[-3000:] + saved.stderr[-3000:]
        read = tmp_path / "read.py"
        read.write_text(
            "from pyspark.sql import SparkSession\n"
            "spark = SparkSession.builder.getOrCreate()\n"
            "print('TABLES', sorted(t.name for t in spark.catalog.listTables()))\n"
            "print('SUM', spark.table('after').agg({'amount': 'sum'}).first()[0])\n"
            "spark.stop()\n"
        )
        result = cli(home, "submit", "--runtime", "spark", "trainer", str(read))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "TABLES ['after']" in result.stdout and "SUM 150" in result.stdout
        result = cli(home, "submit", "--runtime", "mlflow", "trainer", str(job))
        assert result.returncode == 0, result.stdout + result.stderr
        assert any(r.info.run_name == "from-trainer" for r in mlflow_runs(new_uri))

        # Nobody touched the consumer: its nodes' agents saw the new address and restarted its Dask
        # services with it; a task on its workers logs to the new server.
        wait_for_sync(
            lambda: _worker_tracking_uris(consumer) == {new_uri},
            timeout=120,
            what="the consumer's Dask workers to use the provider's new tracking server",
        )
        client = consumer.dask_client(timeout=30)
        try:
            client.submit(log_from_a_dask_worker, pure=False).result(timeout=120)
        finally:
            client.close()
        assert any(r.info.run_name == "from-trainer-worker" for r in mlflow_runs(new_uri))
    finally:
        consumer.down()
    assert not any(d.cluster == "trainer" for d in _published())


def _links(cluster: Cluster) -> dict[str, str]:
    return {link.name: link.url for link in cluster.info().links}


def _worker_tracking_uris(cluster: Cluster) -> set[str]:
    """MLFLOW_TRACKING_URI as the cluster's Dask workers see it; empty while its scheduler restarts."""
    try:
        client = cluster.dask_client(timeout=10)
    except Exception:  # the scheduler is being restarted: ask again
        return set()
    try:
        return set(client.run(lambda: os.environ.get("MLFLOW_TRACKING_URI"), wait=True).values())
    except Exception:
        return set()
    finally:
        client.close()


def _published() -> list[Any]:
    from cloudtik_jupyter.api.workspace import Workspace

    return Workspace("default").services()


@pytest.mark.parametrize(
    ("runtime", "key"),
    [("{types: [mlflow], mlflow: {from_cluster: ghost}}", "runtime.mlflow.from_cluster"),
     ("{types: [spark], spark: {metastore_from: ghost, history_server: false}}", "runtime.spark.metastore_from")],
)
def test_consumer_of_a_cluster_that_publishes_nothing_fails_setup_with_the_key(
    home: Path, runtime: str, key: str
) -> None:
    result = cli(home, "up", "-y", str(_write(home.parent / "orphan.yaml", runtime)))
    assert result.returncode == 1
    assert f"{key}: cluster 'ghost' publishes no services" in result.stderr
    cli(home, "down", "-y", "orphan")


def _write(path: Path, runtime: str) -> Path:
    path.write_text(
        "from: virtual-small\n"
        "cluster_name: orphan\n"
        "available_node_types: {worker: {min_workers: 0}}\n"
        f"runtime: {runtime}\n"
    )
    return path
