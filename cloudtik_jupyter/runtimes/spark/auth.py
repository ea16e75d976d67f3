"""Spark's RPC authentication (``spark.authenticate``) with a per-cluster key.

The master, workers, history server and ``spark-submit`` on a node read it from a properties file in a
private dir (0700, the file 0600) given as ``--properties-file``: the path is on argv, the key never is,
nor in the agent's service specs. (Not ``SPARK_CONF_DIR``: Spark puts that directory on the JVM's class
path, and a non-empty directory there disables the daemons' class-data-sharing archives.) Executors get it from their worker through the environment (Spark's own mechanism).
A notebook's `spark_session()` hands it to the driver JVM over py4j after that JVM has started, so it is not
on the driver's command line either. A client without the key is refused by every daemon.
"""

from __future__ import annotations

from pathlib import Path

from ...paths import ensure_private_dir, write_private
from ..secret import derive

CONF_DIR = "spark-conf"  # under the node's runtime dir
PROPERTIES = "auth.properties"
SECRET_CONF = "spark.authenticate.secret"


def spark_secret(secret_file: Path) -> str:
    return derive(secret_file, "spark")


def auth_conf(secret: str) -> dict[str, str]:
    return {"spark.authenticate": "true", SECRET_CONF: secret}


def properties_file(runtime_dir: Path) -> Path:
    return runtime_dir / CONF_DIR / PROPERTIES


def write_properties(runtime_dir: Path, secret_file: Path) -> Path:
    """The node's private Spark properties file with the cluster's key; returns its path."""
    path = properties_file(runtime_dir)
    ensure_private_dir(path.parent)
    lines = "".join(f"{k} {v}\n" for k, v in auth_conf(spark_secret(secret_file)).items())
    write_private(path, "# Written by cloudtik_jupyter; keep it 0600.\n" + lines)
    return path
