"""The MLflow runtime: a tracking server on the head (SQLite backend on the head's disk, artifacts proxied
to the workspace's bucket or a local directory), or the tracking server another cluster publishes."""

from __future__ import annotations

from .config import MlflowConfig, parse_mlflow_config

__all__ = ["MlflowConfig", "parse_mlflow_config"]
