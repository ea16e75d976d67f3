"""A SparkSession in this process (a notebook, a script) whose executors run on the cluster's workers.

The driver runs here, so the workers must be able to reach this machine: true on `virtual` (every node is a
127.x address of this host) or when the client shares a network with the cluster.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from ...errors import ConfigError
from .auth import auth_conf

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def driver_address(master_url: str) -> str:
    """The local address this machine uses to reach the master: where the workers can reach the driver."""
    parsed = urlparse(master_url)
    if parsed.scheme != "spark" or not parsed.hostname:
        raise ConfigError("master_url", f"expected spark://HOST:PORT, got {master_url!r}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((parsed.hostname, parsed.port or 7077))  # UDP: picks a route, sends nothing
        return str(s.getsockname()[0])


def conf_key(name: str) -> str:
    """``executor_memory`` -> ``spark.executor.memory``; a full ``spark.*`` key is kept as is."""
    return name if name.startswith("spark.") else "spark." + name.replace("_", ".")


@contextlib.contextmanager
def _gateway_env(values: Mapping[str, str]) -> Iterator[None]:
    """Environment for the driver JVM pyspark starts inside `getOrCreate` (it copies os.environ)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def spark_session(
    master_url: str,
    app_name: str = "cloudtik",
    *,
    driver_host: str | None = None,
    event_log_dir: str | None = None,
    python: str | None = None,
    conf: Mapping[str, str] | None = None,
    auth_secret: str | None = None,
    **options: str | int | float | bool,
) -> SparkSession:
    """Connect a SparkSession to the cluster at `master_url` (``spark://head:7077``).

    `options` are Spark properties by short name (``executor_memory="512m"``, ``sql_shuffle_partitions=8``);
    `conf` takes full ``spark.*`` keys. `python` is the executors' interpreter (default: this one, as on
    `virtual`, where nodes run the client's interpreter). `event_log_dir` (a URI the driver can write, e.g.
    the head's event directory on `virtual`) makes the run visible in the history server. `auth_secret` is
    the cluster's Spark key (`Cluster.spark_session` passes it): it reaches the driver JVM over py4j, never
    its command line.
    An active session on another master is stopped first; one on the same master is reused.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    from .install import find_java_home

    host = driver_host or driver_address(master_url)
    settings: dict[str, str] = {
        "spark.driver.host": host,
        "spark.driver.bindAddress": host,
        "spark.pyspark.python": python or sys.executable,
        "spark.ui.showConsoleProgress": "false",  # progress bars would flood a notebook cell's output
    }
    if event_log_dir:
        settings |= {"spark.eventLog.enabled": "true", "spark.eventLog.dir": event_log_dir}
    settings |= dict(conf or {})
    for name, value in options.items():
        settings[conf_key(name)] = str(value).lower() if isinstance(value, bool) else str(value)

    active = SparkSession.getActiveSession()
    if active is not None and active.sparkContext.master != master_url:
        active.stop()
    # SPARK_LOCAL_IP keeps the driver's UI on `host` rather than 0.0.0.0.
    with _gateway_env({"JAVA_HOME": str(find_java_home()), "SPARK_LOCAL_IP": host}):
        if SparkContext._gateway is None:
            # pyspark starts the driver JVM with every setting it is given as `--conf k=v` arguments:
            # start it with the public ones, so the key only ever travels over py4j.
            SparkContext._ensure_initialized(
                conf=SparkConf(loadDefaults=False).setAll(list(settings.items()))
            )
        builder = SparkSession.builder.master(master_url).appName(app_name)
        for key, value in {**settings, **(auth_conf(auth_secret) if auth_secret else {})}.items():
            builder = builder.config(key, value)
        return builder.getOrCreate()


def stop_spark(session: SparkSession, timeout: float = 30.0) -> None:
    """Stop `session` and the driver JVM pyspark started in this process.

    `session.stop()` alone leaves that JVM running for the life of the process (pyspark reuses it); this
    ends it, so a kernel or test that is done with Spark holds no Java process. A later `spark_session`
    starts a fresh one.
    """
    from pyspark import SparkContext

    session.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    proc = getattr(gateway, "proc", None)
    with contextlib.suppress(Exception):  # the JVM may already be gone
        gateway.shutdown()
    SparkContext._gateway = None
    SparkContext._jvm = None
    if proc is None:
        return
    with contextlib.suppress(OSError):
        proc.stdin.close()  # the driver JVM exits when its stdin closes
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
