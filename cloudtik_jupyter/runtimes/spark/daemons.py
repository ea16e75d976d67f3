"""The Spark daemons as node-agent services: master and history server on the head, a worker per worker.

Each runs in the foreground through ``bin/spark-class`` (which execs the JVM, so the agent supervises the
JVM's own PID) and binds only the node's address: ``SPARK_LOCAL_IP`` covers the web UIs, ``--host`` the RPC
endpoints. Ports are not secrets, so they go on the command line. The cluster's Spark key is in the private
properties file each daemon is given (auth.py): every daemon requires it of whoever connects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ...node.config import HealthCheck, ServiceSpec
from .classes import (
    DAEMON_JVM_FLAGS,
    HISTORY_CLASS,
    MASTER_CLASS,
    ROLE_CLASSES,
    SERVICE_NAMES,
    WORKER_CLASS,
)
from .config import SparkConfig
from .install import SparkInstall

__all__ = [
    "DAEMON_JVM_FLAGS",
    "HISTORY_CLASS",
    "MASTER_CLASS",
    "ROLE_CLASSES",
    "SERVICE_NAMES",
    "WORKER_CLASS",
]
HEALTH_TIMEOUT = 120.0  # a JVM start on a busy 2-core machine running several nodes
DEFAULT_WORKER_CORES = 1
DEFAULT_WORKER_MEMORY_MIB = 1024


@dataclass(frozen=True)
class JvmOptions:
    """How a daemon's JVM uses its class-data-sharing archive: read it, or write one at exit (setup)."""

    use_archive: Path | None = None
    dump_archive: Path | None = None

    def render(self) -> str:
        flags = list(DAEMON_JVM_FLAGS)
        if self.use_archive is not None:
            flags.append(f"-XX:SharedArchiveFile={_option_value(str(self.use_archive))}")
        if self.dump_archive is not None:
            flags.append(f"-XX:ArchiveClassesAtExit={_option_value(str(self.dump_archive))}")
        return " ".join(flags)


def _option_value(value: str) -> str:
    # Spark's launcher splits *_OPTS like a shell: quote a value with spaces.
    return f'"{value}"' if re.search(r"\s", value) else value


def master_url(config: SparkConfig, head_ip: str) -> str:
    return f"spark://{head_ip}:{config.master_port}"


def worker_resources(config: SparkConfig, resources: Mapping[str, float]) -> tuple[int, int]:
    """(cores, memory in MiB) a worker offers: the config's override, else the node's resources."""
    cores = config.worker_cores or max(1, int(resources.get("CPU", DEFAULT_WORKER_CORES)))
    memory = config.worker_memory
    if memory is None:
        node_bytes = resources.get("memory")
        memory = max(256, int(node_bytes) // 2**20) if node_bytes else DEFAULT_WORKER_MEMORY_MIB
    return cores, memory


def _env(install: SparkInstall, config: SparkConfig, ip: str, jvm: JvmOptions) -> dict[str, str]:
    return {
        "SPARK_HOME": str(install.spark_home),
        "JAVA_HOME": str(install.java_home),
        "SPARK_LOCAL_IP": ip,  # web UIs bind here (else 0.0.0.0)
        "SPARK_LOCAL_HOSTNAME": ip,  # URLs and worker ids name the address, not the machine's hostname
        "SPARK_PUBLIC_DNS": ip,
        "SPARK_DAEMON_MEMORY": f"{config.daemon_memory}m",
        "SPARK_DAEMON_JAVA_OPTS": jvm.render(),
    }


def _health(ip: str, port: int) -> HealthCheck:
    return HealthCheck(host=ip, port=port, timeout=HEALTH_TIMEOUT)


def master_service(
    install: SparkInstall, config: SparkConfig, ip: str, jvm: JvmOptions, *, conf: Path
) -> ServiceSpec:
    env = _env(install, config, ip, jvm)
    # The REST submission server (port 6066) accepts anyone's jobs without authentication: keep it off.
    env["SPARK_MASTER_OPTS"] = "-Dspark.master.rest.enabled=false"
    argv = [str(install.spark_class), MASTER_CLASS, "--host", ip, "--port", str(config.master_port)]
    argv += ["--webui-port", str(config.master_ui_port), "--properties-file", str(conf)]
    # Healthy once the UI is up: the master binds its RPC port first and turns ALIVE right after the UI.
    return ServiceSpec(
        name=SERVICE_NAMES["master"], argv=argv, env=env, health=_health(ip, config.master_ui_port)
    )


def worker_service(
    install: SparkInstall,
    config: SparkConfig,
    ip: str,
    head_ip: str,
    resources: tuple[int, int],
    work_dir: Path,
    jvm: JvmOptions,
    *,
    conf: Path,
) -> ServiceSpec:
    cores, memory = resources
    argv = [str(install.spark_class), WORKER_CLASS, "--host", ip]
    if config.worker_port is not None:
        argv += ["--port", str(config.worker_port)]
    argv += ["--webui-port", str(config.worker_ui_port), "--cores", str(cores), "--memory", f"{memory}m"]
    argv += ["--work-dir", str(work_dir), "--properties-file", str(conf), master_url(config, head_ip)]
    return ServiceSpec(
        name=SERVICE_NAMES["worker"],
        argv=argv,
        env=_env(install, config, ip, jvm),
        health=_health(ip, config.worker_ui_port),
        # The master's UI answers once it is ALIVE; a worker that registers earlier is told to come back
        # in 5-15 s.
        requires=HealthCheck(host=head_ip, port=config.master_ui_port),
    )


def event_log_location(config: SparkConfig, runtime_dir: Path) -> tuple[str, Path | None]:
    """Where drivers write event logs and the history server reads them: (URI, local dir to create)."""
    where = config.event_log_dir
    if where and "://" in where:
        return where, None  # e.g. s3a://bucket/events: nothing to create here
    local = Path(where).expanduser() if where else runtime_dir / "events"
    local = local if local.is_absolute() else runtime_dir / local
    return local.as_uri(), local


def history_service(
    install: SparkInstall,
    config: SparkConfig,
    ip: str,
    event_log: tuple[str, Path | None],
    jvm: JvmOptions,
    *,
    conf: Path,
) -> ServiceSpec:
    uri, local_dir = event_log
    env = _env(install, config, ip, jvm)
    env["SPARK_HISTORY_OPTS"] = " ".join(
        [
            f"-Dspark.history.fs.logDirectory={_option_value(uri)}",
            f"-Dspark.history.ui.port={config.history_ui_port}",
            "-Dspark.history.fs.update.interval=2s",  # a finished run shows up within seconds (default 10s)
        ]
    )
    argv = [str(install.spark_class), HISTORY_CLASS, "--properties-file", str(conf)]
    if local_dir is not None:
        # The history server refuses to start without its log directory; drivers add files to it later.
        argv = [
            "/bin/sh",
            "-c",
            'mkdir -p -- "$1" && shift && exec "$@"',
            "spark-history",
            str(local_dir),
            *argv,
        ]
    return ServiceSpec(
        name=SERVICE_NAMES["history"], argv=argv, env=env, health=_health(ip, config.history_ui_port)
    )
