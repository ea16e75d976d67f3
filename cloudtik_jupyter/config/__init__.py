"""Cluster config: typed schema, ``from:`` templates, validation errors that name the key path."""

from __future__ import annotations

from .hashing import config_hash
from .issues import ConfigIssue, ConfigValidationError
from .loader import deep_merge, dump_config, load_config, load_config_text, shipped_templates
from .schema import ClusterConfig, NodeTypeConfig

__all__ = [
    "ClusterConfig",
    "ConfigIssue",
    "ConfigValidationError",
    "NodeTypeConfig",
    "config_hash",
    "deep_merge",
    "dump_config",
    "load_config",
    "load_config_text",
    "shipped_templates",
]
