"""The two provider contracts: the Cloud API channel for nodes and for workspaces.

A new cloud is a new folder under ``providers/`` implementing these; nothing outside it changes.
Provider methods are synchronous (cloud SDKs are) and safe to retry; async callers use
``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from . import tags as T

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


@dataclass(frozen=True, slots=True)
class ListedNode:
    """A node as one provider listing saw it: id, tags and addresses in one snapshot.

    Built from the listing call alone (DescribeInstances, instances.aggregatedList, the VM list), so
    reading a cluster costs one call whatever its size, never one per node.
    """

    node_id: NodeId
    tags: Mapping[str, str]  # read-only view of a mapping the provider made for this record
    address: NodeAddress

    def __post_init__(self) -> None:
        if not isinstance(self.tags, MappingProxyType):
            object.__setattr__(self, "tags", MappingProxyType(self.tags))

    @property
    def kind(self) -> str:
        return self.tags.get(T.NODE_KIND, "")

    @property
    def node_type(self) -> str:
        return self.tags.get(T.NODE_TYPE, "")

    @property
    def status(self) -> str:
        return self.tags.get(T.NODE_STATUS, "")

    @property
    def seq(self) -> int:
        try:
            return int(self.tags.get(T.NODE_SEQ, "0"))
        except ValueError:
            return 0


@runtime_checkable
class NodeProvider(Protocol):
    """Cloud API channel for one cluster. Every method is safe to retry."""

    cluster_name: str

    def list_nodes(self, tags: Mapping[str, str]) -> list[ListedNode]: ...  # carrying all `tags`: ONE call

    def non_terminated_nodes(self, tags: Mapping[str, str]) -> list[NodeId]: ...  # ids of `list_nodes`

    def create_nodes(self, spec: NodeSpec, tags: Mapping[str, str], count: int) -> list[NodeId]: ...

    def terminate_nodes(self, ids: Sequence[NodeId]) -> None: ...  # idempotent

    def node_tags(self, node_id: NodeId) -> dict[str, str]: ...  # one node; listings use `list_nodes`

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
