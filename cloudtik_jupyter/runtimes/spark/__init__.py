"""The Spark runtime: standalone master, workers and history server from the pyspark wheel.

``spark_session(master_url)`` connects a notebook to a cluster; `SparkRuntime` (in ``runtime``) is the
plugin the node agent and the controller use. pyspark itself is imported only when a session is made, and
this package's own modules only when used: the setup step every node runs (``prepare``) imports the
standard library and ``install`` alone.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import SparkConfig, parse_spark_config
    from .session import spark_session, stop_spark

__all__ = ["SparkConfig", "parse_spark_config", "spark_session", "stop_spark"]
_WHERE = {
    "SparkConfig": ".config",
    "parse_spark_config": ".config",
    "spark_session": ".session",
    "stop_spark": ".session",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)
