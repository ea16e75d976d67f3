"""A Hive metastore on the head, shared by the Spark sessions of its cluster and of the other clusters of
the workspace that name it (``runtime.spark.metastore_from``).

The service is Hive 2.3's metastore from pyspark's own jars, run by the launcher in java/ (compiled at
setup, launcher.py) so its Thrift server binds the head's private address only. Its catalog is an embedded
Derby database in the head's runtime directory; table files go to the warehouse, a place every cluster
using the metastore reaches (on `virtual` a directory of the workspace's state). A Spark application of
the cluster gets the metastore's URI and the warehouse with its other properties (`catalog_conf`), looked
up when it starts: a provider whose head was replaced is found at its new address by the next session or
job.
"""

from __future__ import annotations

from pathlib import Path

from ... import paths
from ...node.config import HealthCheck, ServiceSpec
from .classes import DAEMON_JVM_FLAGS
from .config import SECTION, SparkConfig
from .install import SparkInstall
from .launcher import MAIN_CLASS, launcher_dir

KIND = "hive-metastore"  # what the registry calls it; also the agent's service name
PROTOCOL = "thrift"
WAREHOUSE_DIR = "warehouse"  # under the workspace's state on `virtual`
HEALTH_TIMEOUT = 180.0  # a JVM that creates its Derby schema on first start, on a busy 2-core machine


def metastore_uri(config: SparkConfig, head_ip: str) -> str | None:
    """The metastore this cluster's applications use: its own, the one `metastore_from` publishes (looked
    up now, so a missing one raises naming the key), or None."""
    if config.metastore_from:
        from ...discovery import lookup

        found = lookup(config.scope, config.metastore_from, KIND, where=f"{SECTION}.metastore_from")
        return found.url
    if config.metastore:
        return f"{PROTOCOL}://{head_ip}:{config.metastore_port}"
    return None


def warehouse_uri(config: SparkConfig) -> str | None:
    """Where managed tables' files go: the configured place, else the workspace's directory on `virtual`
    (the same for every cluster of the workspace), else None (`bind` requires one elsewhere)."""
    if config.warehouse_dir:
        where = config.warehouse_dir
        return where if "://" in where else f"file:{where}"
    if config.scope.provider.type == "virtual":
        return f"file:{paths.workspace_dir(config.scope.workspace) / WAREHOUSE_DIR}"
    return None


def catalog_conf(config: SparkConfig, head_ip: str) -> dict[str, str]:
    """Spark properties that put an application's catalog in the metastore (none without one)."""
    uri = metastore_uri(config, head_ip)
    if uri is None:
        return {}
    conf = {"spark.sql.catalogImplementation": "hive", "spark.hadoop.hive.metastore.uris": uri}
    if (warehouse := warehouse_uri(config)) is not None:
        conf["spark.sql.warehouse.dir"] = warehouse
    return conf


def metastore_service(install: SparkInstall, config: SparkConfig, ip: str, runtime_dir: Path) -> ServiceSpec:
    """The metastore's JVM on the head, bound to `ip`, its Derby catalog under `runtime_dir`."""
    home = runtime_dir / "metastore"
    warehouse = warehouse_uri(config)
    properties = {
        "javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true",
        "datanucleus.schema.autoCreateAll": "true",  # the schema is made on first start
        "hive.metastore.schema.verification": "false",
        "derby.system.home": str(home),
        "derby.stream.error.file": str(home / "derby.log"),
    }
    if warehouse is not None:
        properties["hive.metastore.warehouse.dir"] = warehouse
    classpath = f"{launcher_dir(install)}:{install.spark_home / 'jars'}/*"
    java = [str(install.java_home / "bin" / "java"), f"-Xmx{config.daemon_memory}m", *DAEMON_JVM_FLAGS]
    java += [f"-D{k}={v}" for k, v in properties.items()]
    java += ["-cp", classpath, MAIN_CLASS, ip, str(config.metastore_port)]
    # Derby needs its directory; a local warehouse is made too (the metastore makes tables' dirs in it).
    local = warehouse.removeprefix("file:") if warehouse and warehouse.startswith("file:/") else str(home)
    argv = ["/bin/sh", "-c", 'mkdir -p -- "$1" "$2" && shift 2 && exec "$@"', "hive-metastore", str(home), local]
    return ServiceSpec(
        name=KIND,
        argv=[*argv, *java],
        env={"JAVA_HOME": str(install.java_home)},
        health=HealthCheck(host=ip, port=config.metastore_port, timeout=HEALTH_TIMEOUT),
        chain="spark-metastore",  # beside the master, not after it
        stop_timeout=10.0,
    )
