"""`VirtualNodeProvider`: the NodeProvider whose nodes are local process trees on their own 127.x address.

Reads (listing, tags, addresses) go straight to the node records in the state dir, so they are fast and
work from any process, including the head's controller. Creating and terminating go through the
hypervisor, which owns the node processes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ... import paths
from ...config.schema import VirtualProviderConfig
from ...errors import ProviderError
from .. import tags as T
from ..base import ListedNode, NodeAddress, NodeId, NodeSpec
from . import addresses, state
from .client import HypervisorClient
from .protocol import CreateRequest
from .workspace import recorded_block


class VirtualNodeProvider:
    """Cloud API channel for one cluster on the embedded `virtual` provider."""

    def __init__(
        self,
        provider_config: VirtualProviderConfig | None = None,
        cluster_name: str = "",
        *,
        workspace_name: str = "default",
        home: Path | None = None,
    ) -> None:
        if not cluster_name:
            raise ProviderError("a virtual node provider needs a cluster name")
        config = provider_config or VirtualProviderConfig()
        self.cluster_name = cluster_name
        self.workspace_name = workspace_name
        self.home = (home or paths.home()).expanduser().absolute()
        # The cluster's own block; else its workspace's (recorded by `workspace create`); else the default.
        recorded = recorded_block(self.home, workspace_name)
        self.address_block = (
            addresses.parse_address_block(config.address_block)
            if config.address_block
            else addresses.parse_address_block(recorded)
            if recorded
            else addresses.default_address_block(self.home)
        )
        self.hypervisor = HypervisorClient(self.home)

    def _ours(self, record: state.NodeRecord) -> bool:
        return record.cluster == self.cluster_name and record.workspace == self.workspace_name

    def _record(self, node_id: NodeId) -> state.NodeRecord:
        record = state.read_record(self.home, node_id)
        if record is None or not self._ours(record):
            raise ProviderError(f"no virtual node {node_id} in cluster {self.cluster_name}")
        return record

    def list_nodes(self, tags: Mapping[str, str]) -> list[ListedNode]:
        """Live nodes of this cluster carrying all `tags`, oldest first (one read of the state dir)."""
        records = [r for r in state.list_records(self.home) if self._ours(r) and r.has_tags(tags)]
        live = [r for r in records if state.is_alive(r)]
        ordered = sorted(live, key=lambda r: (r.launched_at, r.node_id))
        return [ListedNode(r.node_id, dict(r.tags), _address(r)) for r in ordered]

    def non_terminated_nodes(self, tags: Mapping[str, str]) -> list[NodeId]:
        return [n.node_id for n in self.list_nodes(tags)]

    def create_nodes(self, spec: NodeSpec, tags: Mapping[str, str], count: int) -> list[NodeId]:
        if count <= 0:
            return []
        if not spec.ssh_public_key.strip():
            raise ProviderError(
                "NodeSpec.ssh_public_key is required: a virtual node accepts only the cluster's key"
            )
        request = CreateRequest(
            cluster=self.cluster_name,
            workspace=self.workspace_name,
            tags={**{str(k): str(v) for k, v in tags.items()}, T.CLUSTER: self.cluster_name},
            ssh_user=spec.ssh_user,
            ssh_public_key=spec.ssh_public_key.strip(),
            count=count,
            address_block=str(self.address_block),
        )
        return self.hypervisor.create(request)

    def terminate_nodes(self, ids: Sequence[NodeId]) -> None:
        """Kill each node's whole process tree and forget it; unknown or already gone ids are skipped."""
        mine = []
        for node_id in ids:
            if not state.NODE_ID_PATTERN.match(node_id):
                continue
            record = state.read_record(self.home, node_id)
            if record is None and state.node_dir(self.home, node_id).exists():
                mine.append(node_id)  # half-created: let the hypervisor clean it up
            elif record is not None and self._ours(record):
                mine.append(node_id)
        if mine:
            self.hypervisor.terminate(mine)

    def node_tags(self, node_id: NodeId) -> dict[str, str]:
        return dict(self._record(node_id).tags)

    def set_node_tags(self, node_id: NodeId, tags: Mapping[str, str]) -> None:
        self._record(node_id)
        state.update_tags(self.home, node_id, tags)

    def address(self, node_id: NodeId) -> NodeAddress:
        return _address(self._record(node_id))


def _address(record: state.NodeRecord) -> NodeAddress:
    return NodeAddress(
        internal_ip=record.ip,
        external_ip=record.ip if record.kind == T.KIND_HEAD else None,
        ssh_port=record.port,
        host_key=record.host_key,
    )
