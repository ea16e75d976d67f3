"""The Hive metastore of the Spark runtime: its config keys, the service on the head, the catalog properties
a cluster's applications get (its own metastore or another cluster's, looked up in the workspace), and the
launcher Janino compiles from the Java source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudtik_jupyter.config import load_config
from cloudtik_jupyter.discovery.registry import publish, withdraw
from cloudtik_jupyter.errors import CloudtikError, ConfigError
from cloudtik_jupyter.records.node import NodeInfo
from cloudtik_jupyter.runtimes import enabled_runtimes
from cloudtik_jupyter.runtimes.secret import ensure_secret
from cloudtik_jupyter.runtimes.spark import launcher
from cloudtik_jupyter.runtimes.spark.install import find_spark

HEAD, WORKER, PROVIDER_HEAD = "127.60.0.1", "127.60.0.2", "127.61.0.1"


def cluster(name: str, spark: dict[str, Any], types: tuple[str, ...] = ("spark",), **extra: Any) -> Any:
    return load_config(
        {
            "from": "virtual-small",
            "cluster_name": name,
            "available_node_types": {"worker": {"min_workers": 1, "resources": {"CPU": 1, "memory": 2**30}}},
            "runtime": {"types": list(types), "spark": spark, **extra},
        }
    )


def spark_of(config: Any) -> tuple[Any, Any]:
    return next((r, c) for r, c in enabled_runtimes(config) if r.name == "spark")


def node(kind: str, tmp_path: Path) -> NodeInfo:
    secret = ensure_secret(tmp_path / "runtime_secret")
    ip = HEAD if kind == "head" else WORKER
    return NodeInfo("c", "n1", kind, kind, ip, HEAD, tmp_path / "runtime", {}, secret_file=secret)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLOUDTIK_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize(
    ("spark", "path", "words"),
    [
        ({"metastore": True, "metastore_from": "lab"}, "runtime.spark.metastore_from", "runs none"),
        ({"metastore": True, "metastore_port": 7077}, "runtime.spark.metastore_port", "master_port"),
        ({"metastore_from": "Lab/../x"}, "runtime.spark.metastore_from", "should match"),
        ({"metastore_form": "lab"}, "runtime.spark.metastore_form", "did you mean 'metastore_from'"),
        ({"metastore": True, "warehouse_dir": "warehouse"}, "runtime.spark.warehouse_dir", "should match"),
        ({"metastore": "sometimes"}, "runtime.spark.metastore", "boolean"),
    ],
)
def test_config_errors_name_the_key(spark: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ConfigError) as e:
        cluster("c", spark)
    assert e.value.path == path and words in e.value.message, str(e.value)


def test_a_metastore_port_another_runtime_binds_is_refused() -> None:
    with pytest.raises(ConfigError) as e:
        cluster("c", {"metastore": True, "metastore_port": 5000}, ("spark", "mlflow"))
    assert "port 5000 is already used by runtime.spark.metastore_port" in str(e.value)


def test_a_metastore_on_a_cloud_needs_a_warehouse_every_cluster_reaches() -> None:
    base = {
        "cluster_name": "c",
        "provider": {"type": "aws", "region": "us-west-2"},
        "head_node_type": "head",
        "available_node_types": {"head": {}},
    }
    with pytest.raises(ConfigError) as e:
        load_config({**base, "runtime": {"types": ["spark"], "spark": {"metastore": True}}})
    assert e.value.path == "runtime.spark.warehouse_dir" and "aws" in e.value.message
    spark = {"metastore": True, "warehouse_dir": "s3a://bucket/warehouse"}
    _, bound = spark_of(load_config({**base, "runtime": {"types": ["spark"], "spark": spark}}))
    assert bound.warehouse_dir == "s3a://bucket/warehouse"


def test_the_head_runs_the_metastore_on_its_address_with_its_catalog_on_its_disk(tmp_path: Path, home: Path) -> None:
    runtime, spark = spark_of(cluster("lab", {"metastore": True}))
    head = {s.name: s for s in runtime.services(spark, node("head", tmp_path))}
    assert set(head) == {"spark-master", "spark-history", "hive-metastore"}
    metastore = head["hive-metastore"]
    assert metastore.argv[-3:] == [launcher.MAIN_CLASS, HEAD, "9083"]  # its launcher binds this address only
    assert metastore.health is not None and (metastore.health.host, metastore.health.port) == (HEAD, 9083)
    derby = f"-Djavax.jdo.option.ConnectionURL=jdbc:derby:;databaseName={tmp_path / 'runtime' / 'metastore'}"
    assert any(a.startswith(derby) for a in metastore.argv)
    warehouse = home / "workspaces" / "default" / "warehouse"
    assert f"-Dhive.metastore.warehouse.dir=file:{warehouse}" in metastore.argv
    assert metastore.chain != head["spark-master"].chain  # starts beside the master, not after it
    assert "hive-metastore" not in {s.name for s in runtime.services(spark, node("worker", tmp_path))}
    assert runtime.setup_commands(spark, "head")[0].endswith("--metastore")
    assert "--metastore" not in runtime.setup_commands(spark, "worker")[0]
    assert runtime.ports(spark, "head")["metastore_port"] == 9083
    assert [(e.kind, e.port, e.protocol) for e in runtime.published(spark, HEAD)][-1] == ("hive-metastore", 9083, "thrift")


def test_applications_get_the_catalog_of_their_own_metastore(home: Path) -> None:
    runtime, spark = spark_of(cluster("lab", {"metastore": True, "conf": {"spark.sql.shuffle.partitions": 4}}))
    assert runtime.session_conf(spark, HEAD) == {
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.hive.metastore.uris": f"thrift://{HEAD}:9083",
        "spark.sql.warehouse.dir": f"file:{home / 'workspaces' / 'default' / 'warehouse'}",
        "spark.sql.shuffle.partitions": "4",
    }
    argv = runtime.submit_argv(spark, HEAD, "job.py", [])
    assert f"spark.hadoop.hive.metastore.uris=thrift://{HEAD}:9083" in argv
    plain_runtime, plain = spark_of(cluster("plain", {}))
    assert plain_runtime.session_conf(plain, HEAD) == {}  # no metastore: Spark's in-memory catalog
    assert "Hive metastore" not in {link.name for link in plain_runtime.links(plain, HEAD)}


def test_a_consumer_looks_the_metastore_up_at_each_use_and_runs_none(tmp_path: Path) -> None:
    runtime, spark = spark_of(cluster("trainer", {"metastore_from": "lab"}))
    assert runtime.consumes(spark) == ["lab"]
    # Nothing published: the head's setup fails naming the key; links leave it out.
    with pytest.raises(CloudtikError, match=r"runtime\.spark\.metastore_from: cluster 'lab' publishes no services"):
        runtime.services(spark, node("head", tmp_path))
    assert "Hive metastore" not in {link.name for link in runtime.links(spark, HEAD)}
    # A cluster that publishes other services but no metastore.
    provider = cluster("lab", {})
    publish(provider, PROVIDER_HEAD)
    with pytest.raises(CloudtikError, match=r"metastore_from: cluster 'lab' publishes no hive-metastore \(it has: spark-master\)"):
        runtime.session_conf(spark, HEAD)

    provider = cluster("lab", {"metastore": True})
    publish(provider, PROVIDER_HEAD)
    head = {s.name: s for s in runtime.services(spark, node("head", tmp_path))}
    assert "hive-metastore" not in head and runtime.ports(spark, "head").get("metastore_port") is None
    assert [e.kind for e in runtime.published(spark, HEAD)] == ["spark-master"]
    _, provider_spark = spark_of(provider)
    mine = runtime.session_conf(spark, HEAD)
    assert mine["spark.hadoop.hive.metastore.uris"] == f"thrift://{PROVIDER_HEAD}:9083"
    theirs = runtime.session_conf(provider_spark, PROVIDER_HEAD)
    assert mine["spark.sql.warehouse.dir"] == theirs["spark.sql.warehouse.dir"]  # the workspace's warehouse

    publish(provider, "127.61.0.9")  # the provider's head was replaced
    assert runtime.session_conf(spark, HEAD)["spark.hadoop.hive.metastore.uris"] == "thrift://127.61.0.9:9083"
    assert {link.name: link.url for link in runtime.links(spark, HEAD)}["Hive metastore"] == "thrift://127.61.0.9:9083"
    # The consumer's daemons carry no metastore address: a moved provider restarts none of them.
    assert head == {s.name: s for s in runtime.services(spark, node("head", tmp_path))}
    withdraw(provider)


def test_the_launcher_compiles_once_with_janino_into_a_cache_keyed_by_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install = find_spark()
    made = launcher.build_launcher(install, tmp_path)
    assert (made / "cloudtik" / "MetastoreLauncher.class").is_file()
    assert launcher.launcher_ready(install, tmp_path)
    assert launcher.build_launcher(install, tmp_path) == made  # cached: not compiled again
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [made.name]  # no leftovers

    edited = tmp_path / "Edited.java"
    edited.write_text(launcher.SOURCE.read_text() + "\n// edited\n")
    monkeypatch.setattr(launcher, "SOURCE", edited)
    assert launcher.launcher_dir(install, tmp_path) != made and not launcher.launcher_ready(install, tmp_path)

    broken = tmp_path / "Broken.java"
    broken.write_text("package cloudtik; public class MetastoreLauncher { void f() { nope(); } }\n")
    monkeypatch.setattr(launcher, "SOURCE", broken)
    with pytest.raises(CloudtikError, match="compiling the Hive metastore launcher failed"):
        launcher.build_launcher(install, tmp_path)
    assert not launcher.launcher_ready(install, tmp_path)


# A provider's life seen by a consumer: up with a metastore (at some address), up without one, down.
_EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("up"), st.integers(min_value=1, max_value=250)),
        st.tuples(st.just("up-without-metastore"), st.integers(min_value=1, max_value=250)),
        st.tuples(st.just("down"), st.just(0)),
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=_EVENTS)
def test_a_consumer_always_uses_where_the_provider_is_now_or_says_why_not(
    tmp_path: Path, events: list[tuple[str, int]]
) -> None:
    """Invariants over any sequence: each use resolves the last publication (never a stale address); a
    provider without a metastore or down gives one error naming the key; the consumer's own services never
    change (nothing of it restarts when the provider moves)."""
    runtime, spark = spark_of(cluster("trainer", {"metastore_from": "lab"}))
    with_metastore, without = cluster("lab", {"metastore": True}), cluster("lab", {})
    services = [s.model_dump() for s in runtime.services(spark, node("worker", tmp_path))]
    withdraw(with_metastore)
    current: str | None = None  # the metastore the consumer must use now; None: none published
    for kind, last in events:
        if kind == "down":
            withdraw(with_metastore)
            current = None
        else:
            address = f"127.61.0.{last}"
            publish(with_metastore if kind == "up" else without, address)
            current = f"thrift://{address}:9083" if kind == "up" else None
        if current is None:
            with pytest.raises(CloudtikError, match=r"^runtime\.spark\.metastore_from: cluster 'lab' publishes no "):
                runtime.session_conf(spark, HEAD)
            assert "Hive metastore" not in {link.name for link in runtime.links(spark, HEAD)}
        else:
            assert runtime.session_conf(spark, HEAD)["spark.hadoop.hive.metastore.uris"] == current
            assert {link.name: link.url for link in runtime.links(spark, HEAD)}["Hive metastore"] == current
        assert [s.model_dump() for s in runtime.services(spark, node("worker", tmp_path))] == services
    withdraw(with_metastore)
