"""The two provider contracts: the Cloud API channel for nodes and for workspaces.

A new cloud is a new folder under ``providers/`` implementing these; nothing outside it changes.
Provider methods are synchronous (cloud SDKs are) and safe to retry; async callers use
``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

NodeId = str


@dataclass(frozen=True)
class NodeSpec:
    """What to launch: a node type from the config and its provider-specific ``node_config``."""

    node_type: str
    node_config: Mapping[str, Any] = field(default_factory=dict)
    ssh_user: str = ""
    ssh_public_key: str = ""  # the cluster's key, the only one the node's SSH server accepts


@dataclass(frozen=True)
class NodeAddress:
    """How to reach a node. Clients reach `external_ip` (head) or jump via the head to `internal_ip`."""

    internal_ip: str
    external_ip: str | None = None
    ssh_port: int = 22
    host_key: str | None = None  # OpenSSH public host key, when the Cloud API can vouch for it


@runtime_checkable
class NodeProvider(Protocol):
    """Cloud API channel for one cluster. Every method is safe to retry."""

    cluster_name: str

    def non_terminated_nodes(self, tags: Mapping[str, str]) -> list[NodeId]: ...  # carrying all `tags`

    def create_nodes(self, spec: NodeSpec, tags: Mapping[str, str], count: int) -> list[NodeId]: ...

    def terminate_nodes(self, ids: Sequence[NodeId]) -> None: ...  # idempotent

    def node_tags(self, node_id: NodeId) -> dict[str, str]: ...

    def set_node_tags(self, node_id: NodeId, tags: Mapping[str, str]) -> None: ...  # merged

    def address(self, node_id: NodeId) -> NodeAddress: ...


@dataclass(frozen=True)
class ResourceStatus:
    name: str
    kind: str
    present: bool
    detail: str = ""


@runtime_checkable
class WorkspaceProvider(Protocol):
    """Cloud API channel for a workspace's shared resources. `create` and `delete` converge on re-run."""

    workspace_name: str

    def create(self) -> None: ...

    def delete(self) -> None: ...

    def status(self) -> list[ResourceStatus]: ...

    def info(self) -> dict[str, str]: ...
