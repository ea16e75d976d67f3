"""The Spark runtime: standalone master, workers and history server from the pyspark wheel.

``spark_session(master_url)`` connects a notebook to a cluster; `SparkRuntime` (in ``runtime``) is the
plugin the node agent and the controller use. pyspark itself is imported only when a session is made.
"""

from __future__ import annotations

from .config import SparkConfig, parse_spark_config
from .session import spark_session, stop_spark

__all__ = ["SparkConfig", "parse_spark_config", "spark_session", "stop_spark"]
