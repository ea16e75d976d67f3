"""`SparkRuntime`: Spark standalone from the pyspark wheel, as a cluster runtime plugin."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ...errors import CloudtikError, ConfigError
from ...node.config import ServiceSpec
from ...providers import tags as T
from ...records.cluster import ServiceLink
from ...records.node import NodeInfo
from ..base import PublishedEndpoint
from . import daemons
from .auth import properties_file, write_properties
from .config import SparkConfig, parse_spark_config
from .prepare import MODULE as PREPARE_MODULE

if TYPE_CHECKING:
    from ...config.schema import ClusterConfig


def _spark(config: BaseModel) -> SparkConfig:
    if not isinstance(config, SparkConfig):
        raise TypeError(
            f"expected the SparkConfig from SparkRuntime.parse_config, got {type(config).__name__}"
        )
    return config


class SparkRuntime:
    """Master + history server on the head, one worker per worker node, links to their UIs."""

    name = "spark"

    def parse_config(self, section: Mapping[str, Any]) -> SparkConfig:
        return parse_spark_config(section)

    def bind(self, config: BaseModel, cluster: ClusterConfig) -> SparkConfig:
        """The section, knowing the workspace whose registry `metastore_from` is found in."""
        from ...discovery import DiscoveryScope

        spark = _spark(config)
        if spark.metastore and not spark.warehouse_dir and cluster.provider.type != "virtual":
            raise ConfigError(
                "runtime.spark.warehouse_dir",
                f"a metastore on {cluster.provider.type} needs a warehouse every node of every cluster using "
                "it reaches (a URI Spark's jars can write, or a shared filesystem's absolute path)",
            )
        bound = spark.model_copy()
        bound._scope = DiscoveryScope.of(cluster)
        return bound

    def roles(self, config: BaseModel, kind: str) -> list[str]:
        """The daemons a node of this kind runs."""
        if kind != T.KIND_HEAD:
            return ["worker"]
        return ["master", "history"] if _spark(config).history_server else ["master"]

    def setup_commands(self, config: BaseModel, kind: str) -> list[str]:
        spark = _spark(config)
        # The head prepares the workers' archive too: where nodes share a machine (virtual) the workers
        # then find it made; elsewhere they make their own.
        roles = self.roles(spark, kind) + (["worker"] if kind == T.KIND_HEAD else [])
        command = f"python3 -m {PREPARE_MODULE} --roles {','.join(roles)}"
        if kind == T.KIND_HEAD and spark.metastore:
            command += " --metastore"
        return [command if spark.class_data_sharing else f"{command} --no-cds"]

    def services(self, config: BaseModel, node: NodeInfo) -> list[ServiceSpec]:
        """Evaluated on the node itself: it resolves that node's pyspark and JDK."""
        from .cds import jvm_options
        from .install import find_spark

        spark = _spark(config)
        if node.secret_file is None:
            raise CloudtikError("Spark runs authenticated: the node's runtime secret file is not known")
        if spark.metastore_from and node.kind == T.KIND_HEAD:
            from .metastore import metastore_uri

            metastore_uri(spark, node.head_ip)  # set up only where it is published: else fail, naming the key
        conf = write_properties(node.runtime_dir, node.secret_file)
        install = find_spark()
        if node.kind == T.KIND_HEAD:
            master_jvm = jvm_options(install, spark, "master")
            specs = [daemons.master_service(install, spark, node.ip, master_jvm, conf=conf)]
            if spark.history_server:
                event_log = daemons.event_log_location(spark, node.runtime_dir)
                jvm = jvm_options(install, spark, "history")
                specs.append(daemons.history_service(install, spark, node.ip, event_log, jvm, conf=conf))
            if spark.metastore:
                from .metastore import metastore_service

                specs.append(metastore_service(install, spark, node.ip, node.runtime_dir))
            return specs
        return [
            daemons.worker_service(
                install,
                spark,
                node.ip,
                node.head_ip,
                daemons.worker_resources(spark, node.resources),
                node.runtime_dir / "work",
                jvm_options(install, spark, "worker"),
                conf=conf,
            )
        ]

    def busy(self, config: BaseModel, node: NodeInfo) -> bool | None:
        """A worker is busy while it runs executors (a live application holds cores on it)."""
        if node.kind == T.KIND_HEAD:
            return None
        spark = _spark(config)
        with urllib.request.urlopen(f"http://{node.ip}:{spark.worker_ui_port}/json/", timeout=4) as reply:
            state = json.load(reply)
        return int(state.get("coresused", 0)) > 0 or bool(state.get("executors"))

    def master_url(self, config: BaseModel, head_ip: str) -> str:
        return daemons.master_url(_spark(config), head_ip)

    def links(self, config: BaseModel, head_ip: str) -> list[ServiceLink]:
        spark = _spark(config)
        links = [ServiceLink("Spark master UI", f"http://{head_ip}:{spark.master_ui_port}", "web")]
        if spark.history_server:
            links.append(ServiceLink("Spark history UI", f"http://{head_ip}:{spark.history_ui_port}", "web"))
        links.append(ServiceLink("Spark master", daemons.master_url(spark, head_ip), "endpoint"))
        if spark.uses_metastore:
            from .metastore import metastore_uri

            try:
                uri = metastore_uri(spark, head_ip)
            except CloudtikError:
                uri = None  # the provider cluster is down: nothing to link to
            if uri is not None:
                links.append(ServiceLink("Hive metastore", uri, "endpoint"))
        return links

    def worker_links(self, config: BaseModel, worker_ip: str) -> list[ServiceLink]:
        return [ServiceLink("Spark worker UI", f"http://{worker_ip}:{_spark(config).worker_ui_port}", "web")]

    def environment(self, config: BaseModel, head_ip: str) -> dict[str, str]:
        return {}

    def ports(self, config: BaseModel, kind: str) -> dict[str, int]:
        spark = _spark(config)
        if kind == T.KIND_HEAD:
            ports = {"master_port": spark.master_port, "master_ui_port": spark.master_ui_port}
            ports |= {"history_ui_port": spark.history_ui_port} if spark.history_server else {}
            return ports | ({"metastore_port": spark.metastore_port} if spark.metastore else {})
        worker = {"worker_ui_port": spark.worker_ui_port}
        return worker | ({"worker_port": spark.worker_port} if spark.worker_port else {})

    def published(self, config: BaseModel, head_ip: str) -> list[PublishedEndpoint]:
        from .metastore import KIND as METASTORE
        from .metastore import PROTOCOL

        spark = _spark(config)
        published = [PublishedEndpoint("spark-master", "spark-master", spark.master_port, "spark")]
        if spark.metastore:
            published.append(PublishedEndpoint(METASTORE, METASTORE, spark.metastore_port, PROTOCOL))
        return published

    def consumes(self, config: BaseModel) -> list[str]:
        spark = _spark(config)
        return [spark.metastore_from] if spark.metastore_from else []

    def session_conf(self, config: BaseModel, head_ip: str) -> dict[str, str]:
        """Properties every application of the cluster starts with: the config's, and the metastore's
        (looked up now: a provider cluster whose head was replaced is found at its new address)."""
        from .metastore import catalog_conf

        spark = _spark(config)
        return {**catalog_conf(spark, head_ip), **spark.app_conf()}

    def submit_argv(
        self,
        config: BaseModel,
        head_ip: str,
        job: str,
        args: Sequence[str],
        *,
        runtime_dir: Path | None = None,
    ) -> list[str]:
        """spark-submit on the head (in client mode: the driver runs there, bound to the head's address).

        `runtime_dir` is the head's: the cluster's Spark key is in its private conf dir (written when the
        head's services were), and the application's event log goes where the history server reads.
        """
        spark = _spark(config)
        conf = {"spark.driver.host": head_ip, "spark.driver.bindAddress": head_ip}
        if runtime_dir is not None and spark.history_server:
            uri, _ = daemons.event_log_location(spark, runtime_dir)
            conf |= {"spark.eventLog.enabled": "true", "spark.eventLog.dir": uri}
        conf |= self.session_conf(spark, head_ip)
        # SPARK_LOCAL_IP keeps the driver's own UI off 0.0.0.0; the properties file holds the key (auth.py).
        argv = [
            "env",
            f"SPARK_LOCAL_IP={head_ip}",
            "spark-submit",
            "--master",
            daemons.master_url(spark, head_ip),
        ]
        if runtime_dir is not None:
            argv += ["--properties-file", str(properties_file(runtime_dir))]
        for key, value in conf.items():
            argv += ["--conf", f"{key}={value}"]
        return [*argv, job, *args]
