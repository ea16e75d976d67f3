"""What a node is: its kind, its setup status, and what a runtime knows of the node it configures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

KIND_HEAD = "head"
KIND_WORKER = "worker"


class NodeStatus(str, Enum):
    """Where a node's setup stands (kept in its provider tags)."""

    PENDING = "pending"
    WAITING_FOR_SSH = "waiting-for-ssh"
    SETTING_UP = "setting-up"
    UP_TO_DATE = "up-to-date"
    UPDATE_FAILED = "update-failed"


@dataclass(frozen=True)
class NodeInfo:
    """What a runtime needs to know about the node it configures."""

    cluster_name: str
    node_id: str
    kind: str  # "head" | "worker"
    node_type: str
    ip: str  # the node's private address; bind services here
    head_ip: str
    runtime_dir: Path  # the runtime's own directory on this node (work dirs, logs, event logs)
    resources: Mapping[str, float] = field(default_factory=dict)  # e.g. {"CPU": 2, "memory": 4 * 2**30}
    # The cluster's runtime secret on this node (runtimes/secret.py): runtimes derive their keys from it.
    secret_file: Path | None = None
