"""The Ray runtime: a Ray head (GCS, dashboard, client server) on the head, a raylet per worker node,
each a ``ray start --block`` supervised by the node agent."""

from __future__ import annotations

from .config import RayConfig, parse_ray_config

__all__ = ["RayConfig", "parse_ray_config"]
