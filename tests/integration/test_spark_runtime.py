"""The Spark runtime on real Spark processes: a master on one 127.x address, workers on two others.

The daemons are started exactly as the node agent would, from `SparkRuntime.services(...)` specs, after the
runtime's real setup command. Every process group they start (executors included) is stopped at teardown
and checked gone.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from cloudtik_jupyter.errors import ConfigError
from cloudtik_jupyter.node.config import ServiceSpec
from cloudtik_jupyter.records.node import NodeInfo
from cloudtik_jupyter.runtimes import get_runtime
from cloudtik_jupyter.runtimes.base import Runtime
from cloudtik_jupyter.runtimes.secret import ensure_secret
from cloudtik_jupyter.runtimes.spark import cds, install
from cloudtik_jupyter.runtimes.spark.auth import spark_secret
from cloudtik_jupyter.runtimes.spark.config import SparkConfig
from cloudtik_jupyter.runtimes.spark.runtime import SparkRuntime
from cloudtik_jupyter.runtimes.spark.session import spark_session, stop_spark
from cloudtik_jupyter.waiting import wait_for_sync
from tests.security.spark_probe import unauthenticated_rpc

pytestmark = pytest.mark.integration

RUNTIME = SparkRuntime()
START_TIMEOUT = 150.0
GIB = 2**30
# Two workers with different resources, to see each one's cores and memory reach the master.
WORKER_RESOURCES: list[dict[str, float]] = [{"CPU": 1, "memory": 0.75 * GIB}, {"CPU": 2, "memory": 1 * GIB}]
EXPECTED = [(1, 768), (2, 1024)]


def node_env() -> dict[str, str]:
    """What a node's commands see on `virtual`: this interpreter's bin first on PATH."""
    return {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


class Processes:
    """Services started as the agent would (own session each); owns every process group they ever had."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.groups: set[int] = set()

    def start(self, spec: ServiceSpec) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{spec.name}-{len(self.groups)}.log", "wb") as log:
            proc = subprocess.Popen(
                spec.argv,
                env={**node_env(), **spec.env},
                cwd=spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.groups.add(proc.pid)
        return proc

    def members(self) -> list[psutil.Process]:
        found = []
        for p in psutil.process_iter():
            try:
                if os.getpgid(p.pid) in self.groups and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except (ProcessLookupError, psutil.Error):
                continue
        return found

    def cleanup(self) -> None:
        for group in self.groups:
            try:
                os.killpg(group, signal.SIGTERM)
            except ProcessLookupError:
                continue
        try:
            wait_for_sync(lambda: not self.members(), timeout=30, what="Spark processes to stop")
        finally:
            left = self.members()
            for p in left:
                p.kill()
            assert not left, f"processes left behind: {[(p.pid, p.name()) for p in left]}"


@dataclass
class SparkCluster:
    config: SparkConfig
    head: NodeInfo
    workers: list[NodeInfo]
    processes: Processes
    daemons: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)  # by service name or ip
    worker_specs: dict[str, ServiceSpec] = field(default_factory=dict)  # by worker ip
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def master_url(self) -> str:
        return RUNTIME.master_url(self.config, self.head.ip)

    @property
    def worker_ips(self) -> list[str]:
        return [w.ip for w in self.workers]

    def master_state(self) -> dict[str, Any]:
        state: dict[str, Any] = http_json(f"http://{self.head.ip}:{self.config.master_ui_port}/json/")
        return state

    def master_alive(self) -> bool:
        try:
            return bool(self.master_state()["status"] == "ALIVE")
        except (OSError, ValueError):  # not answering yet, or an HTML page while its JSON view starts
            return False

    def alive_hosts(self) -> list[str]:
        try:
            workers = self.master_state()["workers"]
        except (OSError, ValueError):
            return []
        return sorted(w["host"] for w in workers if w["state"] == "ALIVE")

    def start_worker(self, ip: str) -> None:
        self.daemons[ip] = self.processes.start(self.worker_specs[ip])

    def wait_alive(self, hosts: list[str], what: str) -> float:
        start = time.monotonic()
        wait_for_sync(lambda: self.alive_hosts() == sorted(hosts), timeout=START_TIMEOUT, what=what)
        return time.monotonic() - start


def node(kind: str, node_id: str, ip: str, head_ip: str, root: Path, **resources: float) -> NodeInfo:
    return NodeInfo(
        cluster_name="spark-test",
        node_id=node_id,
        kind=kind,
        node_type=kind,
        ip=ip,
        head_ip=head_ip,
        runtime_dir=root / node_id / "runtime",
        resources=resources,
        secret_file=ensure_secret(root / "runtime_secret"),  # one per cluster, as the updater copies it
    )


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    root = tmp_path_factory.mktemp("spark")
    block = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
    head_ip = f"{block}.2"
    head = node("head", "head", head_ip, head_ip, root)
    workers = [
        node("worker", f"worker-{i}", f"{block}.{3 + i}", head_ip, root, **res)
        for i, res in enumerate(WORKER_RESOURCES)
    ]
    config = RUNTIME.parse_config({"executor_memory": "512m"})
    cluster = SparkCluster(config, head, workers, Processes(root))

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(cds.CACHE_ENV, str(root / "cds"))  # this module's own archives, made by setup below
        # The runtime's real setup commands, as the updater runs them on the head, then on a worker.
        for kind in ("head", "worker"):
            for command in RUNTIME.setup_commands(config, kind):
                started = time.monotonic()
                done = subprocess.run(["bash", "-c", command], env=node_env(), capture_output=True, text=True)
                assert done.returncode == 0, done.stderr
                cluster.timings[f"setup {kind}"] = time.monotonic() - started
        try:
            spawn = time.monotonic()
            for spec in RUNTIME.services(config, head):
                cluster.daemons[spec.name] = cluster.processes.start(spec)
            # Workers start once the master is ALIVE, as after the head's setup: a worker that registers
            # earlier (even with a master still electing itself) retries only 5-15 s later.
            wait_for_sync(cluster.master_alive, timeout=START_TIMEOUT, what="the master to be ALIVE")
            cluster.timings["spawn to master ALIVE"] = time.monotonic() - spawn
            for w in workers:
                (spec,) = RUNTIME.services(config, w)
                cluster.worker_specs[w.ip] = spec
                cluster.start_worker(w.ip)
            cluster.wait_alive(cluster.worker_ips, "2 alive workers")
            cluster.timings["spawn to 2 alive workers"] = time.monotonic() - spawn
            yield cluster
        finally:
            print(f"\nspark timings: { {k: round(v, 2) for k, v in cluster.timings.items()} }")
            cluster.processes.cleanup()


# -- the cluster ------------------------------------------------------------------------------------


def test_master_lists_exactly_the_alive_workers_with_their_resources(spark: SparkCluster) -> None:
    state = spark.master_state()
    assert state["status"] == "ALIVE" and state["url"] == spark.master_url
    alive = {w["host"]: w for w in state["workers"] if w["state"] == "ALIVE"}
    assert sorted(alive) == sorted(spark.worker_ips) and state["aliveworkers"] == 2
    for ip, (cores, memory) in zip(spark.worker_ips, EXPECTED, strict=True):
        assert (alive[ip]["cores"], alive[ip]["memory"]) == (cores, memory)
        assert alive[ip]["webuiaddress"] == f"http://{ip}:{spark.config.worker_ui_port}"


def test_links_answer_and_every_port_binds_the_node_address(spark: SparkCluster) -> None:
    links = {link.name: link for link in RUNTIME.links(spark.config, spark.head.ip)}
    assert links["Spark master"].url == spark.master_url and links["Spark master"].kind == "endpoint"
    for name in ("Spark master UI", "Spark history UI"):
        assert links[name].kind == "web"
        with urllib.request.urlopen(links[name].url, timeout=5) as r:
            assert r.status == 200
    owners = {spark.head.ip: [spark.daemons["spark-master"], spark.daemons["spark-history"]]}
    owners |= {ip: [spark.daemons[ip]] for ip in spark.worker_ips}
    for ip, procs in owners.items():
        for proc in procs:
            bound = {
                c.laddr.ip for c in psutil.Process(proc.pid).net_connections("tcp") if c.status == "LISTEN"
            }
            assert bound and {b.removeprefix("::ffff:") for b in bound} == {ip}, (proc.args, bound)


def test_daemons_map_the_class_data_sharing_archives_setup_made(spark: SparkCluster) -> None:
    found = install.find_spark()
    roles = {"spark-master": "master", "spark-history": "history"} | {ip: "worker" for ip in spark.worker_ips}
    for key, role in roles.items():
        archive = cds.archive_path(found, role)
        maps = Path(f"/proc/{spark.daemons[key].pid}/maps").read_text()
        assert archive.name in maps, f"{key} did not map {archive}"


# -- jobs -------------------------------------------------------------------------------------------


def test_session_job_is_correct_and_runs_on_the_workers_executors(spark: SparkCluster) -> None:
    from pyspark import SparkContext

    secret = spark_secret(spark.head.secret_file)  # type: ignore[arg-type]
    session = spark_session(spark.master_url, "session-test", executor_memory="512m", auth_secret=secret)
    driver = psutil.Process(SparkContext._gateway.proc.pid)  # type: ignore[union-attr]
    try:
        sc = session.sparkContext
        assert sc.master == spark.master_url
        app = sc.applicationId
        executors_url = f"{sc.uiWebUrl}/api/v1/applications/{app}/executors"

        def executor_hosts() -> list[str]:
            try:
                listed = http_json(executors_url)
            except OSError:  # the driver's UI answering slowly on a loaded machine: ask again
                return []
            return sorted(e["hostPort"].rsplit(":", 1)[0] for e in listed if e["id"] != "driver")

        wait_for_sync(
            lambda: executor_hosts() == sorted(spark.worker_ips), timeout=START_TIMEOUT, what="2 executors"
        )
        rdd = sc.parallelize(range(200_000), 12)
        assert rdd.map(lambda x: x * x).sum() == sum(x * x for x in range(200_000))
        row = session.range(1_000_000).selectExpr("sum(id) AS s").first()
        assert row is not None and row["s"] == 499_999_500_000

        # Each task's Python process descends from a worker's JVM, on that worker's address.
        workers = {spark.daemons[ip].pid: ip for ip in spark.worker_ips}
        ran_on = set()
        # A lambda travels by value (a module function would be imported by name on the executor).
        where = rdd.mapPartitions(lambda _: [(os.getpid(), os.environ.get("SPARK_LOCAL_IP"))]).collect()
        for pid, local_ip in where:
            (worker_ip,) = [workers[p.pid] for p in psutil.Process(pid).parents() if p.pid in workers]
            assert local_ip == worker_ip
            ran_on.add(worker_ip)
        assert ran_on == set(spark.worker_ips)
        stages = http_json(f"{sc.uiWebUrl}/api/v1/applications/{app}/stages")
        tasks = http_json(f"{sc.uiWebUrl}/api/v1/applications/{app}/stages/{stages[0]['stageId']}/0/taskList")
        assert {t["host"] for t in tasks} <= set(spark.worker_ips)
        # The key authenticated all of it, and no process (driver, daemons, executors) shows it in argv.
        assert sc.getConf().get("spark.authenticate") == "true"
        shown = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"]]
        assert not [c for c in shown if secret in " ".join(c)], "the Spark key is on a command line"
    finally:
        stop_spark(session)
    assert not driver.is_running() or driver.status() == psutil.STATUS_ZOMBIE, "the driver JVM is left"


def test_a_client_without_the_key_is_refused(spark: SparkCluster) -> None:
    """What anyone who reaches the master's (or a worker's) RPC port gets without the cluster's key:
    a refusal of the SASL handshake, not a master that runs their code."""
    ports = {spark.head.ip: spark.config.master_port}
    worker_ip = spark.worker_ips[0]
    listening = {
        c.laddr.port
        for c in psutil.Process(spark.daemons[worker_ip].pid).net_connections("tcp")
        if c.status == "LISTEN"
    }
    (worker_rpc,) = listening - {spark.config.worker_ui_port}
    ports[worker_ip] = worker_rpc
    for host, port in ports.items():
        failure = unauthenticated_rpc(host, port)
        assert "Expected SaslMessage" in failure, failure[:300]
    assert spark.master_state()["activeapps"] == []


JOB = textwrap.dedent(
    """
    import sys
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("submit-test").getOrCreate()
    total = spark.sparkContext.parallelize(range(1, 1001), 4).sum()
    open(sys.argv[1], "w").write(f"{total} {spark.sparkContext.master}")
    spark.stop()
    """
)


def test_submit_argv_runs_a_job_and_the_history_server_lists_it(spark: SparkCluster, tmp_path: Path) -> None:
    job, out = tmp_path / "job.py", tmp_path / "result.txt"
    job.write_text(JOB)
    argv = RUNTIME.submit_argv(
        spark.config, spark.head.ip, str(job), [str(out)], runtime_dir=spark.head.runtime_dir
    )
    started = time.monotonic()
    done = subprocess.run(argv, env=node_env(), capture_output=True, text=True, timeout=START_TIMEOUT)
    spark.timings["spark-submit"] = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert out.read_text() == f"500500 {spark.master_url}"

    history = f"http://{spark.head.ip}:{spark.config.history_ui_port}/api/v1/applications"
    # The history server may list the run from its in-progress log first; it then marks it completed.
    apps = wait_for_sync(
        lambda: [
            a for a in http_json(history) if a["name"] == "submit-test" and a["attempts"][0]["completed"]
        ],
        timeout=60,
        what="the history server to list the completed run",
    )
    assert len(apps) == 1


# -- failure and restart ----------------------------------------------------------------------------


def test_killed_worker_is_dropped_and_the_same_spec_brings_it_back(spark: SparkCluster) -> None:
    victim, survivor = spark.worker_ips
    spark.daemons[victim].kill()
    spark.daemons[victim].wait()
    spark.wait_alive([survivor], "the master to drop the killed worker")
    assert spark.master_state()["aliveworkers"] == 1
    spark.start_worker(victim)
    spark.timings["worker restart to alive"] = spark.wait_alive(spark.worker_ips, "the restarted worker")
    assert spark.master_state()["aliveworkers"] == 2


# -- config and specs (no processes) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "path", "words"),
    [
        ({"master_port": 70000}, "runtime.spark.master_port", "less than or equal"),
        ({"worker_memory": "lots"}, "runtime.spark.worker_memory", "'512m'"),
        ({"worker_memory": "1024"}, "runtime.spark.worker_memory", "needs a unit"),
        ({"worker_memry": "1g"}, "runtime.spark.worker_memry", "did you mean 'worker_memory'"),
        ({"history_ui_port": 8080}, "runtime.spark.history_ui_port", "master_ui_port"),
        ({"conf": {"executor.memory": "1g"}}, "runtime.spark.conf.executor.memory", "spark."),
        ({"conf": {"spark.x": [1]}}, "runtime.spark.conf.spark.x", "string"),
        ({"executor_memory": "2g", "worker_memory": "1g"}, "runtime.spark.executor_memory", "fit"),
        ({"worker_cores": 0}, "runtime.spark.worker_cores", "greater than"),
    ],
)
def test_config_errors_name_the_key(section: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        get_runtime("spark").parse_config(section)
    assert e.value.path == path and words in e.value.message, str(e.value)


def test_config_defaults_and_app_conf() -> None:
    runtime = get_runtime("spark")
    assert isinstance(runtime, Runtime)
    config = runtime.parse_config({"executor_memory": "1g", "conf": {"spark.sql.shuffle.partitions": 8}})
    assert isinstance(config, SparkConfig)
    assert (config.master_port, config.master_ui_port, config.history_ui_port) == (7077, 8080, 18080)
    assert config.app_conf() == {"spark.executor.memory": "1024m", "spark.sql.shuffle.partitions": "8"}


def test_specs_bind_the_node_and_keep_files_under_the_runtime_dir(tmp_path: Path) -> None:
    config = RUNTIME.parse_config({})
    head = node("head", "h", "127.9.9.2", "127.9.9.2", tmp_path)
    master, history = RUNTIME.services(config, head)
    assert master.health is not None and (master.health.host, master.health.port) == ("127.9.9.2", 8080)
    assert master.env["SPARK_LOCAL_IP"] == "127.9.9.2" and "--host" in master.argv
    assert str(head.runtime_dir / "events") in history.argv
    (worker,) = RUNTIME.services(config, node("worker", "w", "127.9.9.3", "127.9.9.2", tmp_path))
    argv = worker.argv
    assert argv[-1] == "spark://127.9.9.2:7077"
    assert argv[argv.index("--cores") + 1] == "1" and argv[argv.index("--memory") + 1] == "1024m"
    assert argv[argv.index("--work-dir") + 1] == str(tmp_path / "w" / "runtime" / "work")
    assert all("0.0.0.0" not in " ".join([*s.argv, *s.env.values()]) for s in (master, history, worker))
    assert RUNTIME.setup_commands(config, "worker") == [
        "python3 -m cloudtik_jupyter.runtimes.spark.prepare --roles worker"
    ]


def test_missing_java_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(install.SparkNotInstalled) as e:
        install.find_java_home()
    assert "openjdk-17-jre-headless" in str(e.value) and "no-jdk" in str(e.value)
