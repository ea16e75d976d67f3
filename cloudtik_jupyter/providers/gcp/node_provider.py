"""GCP NodeProvider: a cluster's Compute Engine instances, in its workspace's subnetworks, with its
workspace's service accounts and network tag (what the firewall rules apply to).

Node ids are instance names; provider tags are instance labels. The head goes to the public subnetwork
with an external IP (private in the peering and shared-vpc modes), workers to the private one. The
cluster's SSH keys reach the node through instance metadata (public keys, not secrets).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from ...errors import ProviderError
from .. import tags as T
from ..base import ListedNode, NodeAddress, NodeId, NodeSpec
from ..common.bootstrap import DEFAULT_USER, public_keys
from ..common.node_config import parse_node_config
from ..common.polling import poll
from .clients import SCOPES, GcpClients, gcp_errors, is_conflict, is_not_found, make_clients
from .lookup import WorkspaceNetwork, labelled_instances, resolve_network, zone_of
from .naming import GcpNames, check_labels
from .operations import wait, wait_all

if TYPE_CHECKING:
    from ...config.schema import GcpProviderConfig


class GcpNodeConfig(BaseModel):
    """``node_config`` of a GCP node type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sourceImage: str  # e.g. projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts
    machineType: str = "n2-standard-4"
    diskSizeGb: int = Field(default=100, ge=10)
    diskType: str = "pd-balanced"


class GcpNodeProvider:
    """Cloud API channel for one cluster in one workspace. Every method is safe to retry."""

    def __init__(
        self,
        provider_config: GcpProviderConfig,
        cluster_name: str,
        *,
        workspace_name: str = "default",
        clients: GcpClients | None = None,
        timeout: float = 600.0,
    ) -> None:
        self.provider_config = provider_config
        self.cluster_name = cluster_name
        self.workspace_name = workspace_name
        self.timeout = timeout
        self._clients = clients
        self._network: WorkspaceNetwork | None = None
        self._zone: str | None = provider_config.availability_zone
        self._lock = threading.Lock()  # callers run provider methods in threads
        self._cache: dict[NodeId, Any] = {}  # last description seen of each instance

    @property
    def clients(self) -> GcpClients:
        if self._clients is None:
            pc = self.provider_config
            self._clients = make_clients(pc.project_id, pc.region, endpoint_url=pc.endpoint_url)
        return self._clients

    @property
    def network(self) -> WorkspaceNetwork:
        if self._network is None:
            names = GcpNames(self.workspace_name, self.provider_config.project_id)
            with gcp_errors(f"looking up workspace {self.workspace_name!r}"):
                self._network = resolve_network(self.clients, names)
        return self._network

    @property
    def zone(self) -> str:
        """The configured zone, or the region's first."""
        if self._zone is None:
            c = self.clients
            with gcp_errors(f"looking up the zones of {c.region}"):
                region = c.regions.get(project=c.project, region=c.region)
            self._zone = sorted(z.rsplit("/", 1)[-1] for z in region.zones)[0]
        return self._zone

    def _remember(self, instances: Sequence[Any]) -> None:
        with self._lock:
            for i in instances:
                self._cache[i.name] = i

    def _zone_of(self, node_id: NodeId) -> str:
        with self._lock:
            cached = self._cache.get(node_id)
        return zone_of(cached) if cached is not None else self.zone

    def _get(self, node_id: NodeId) -> Any:
        c = self.clients
        with gcp_errors(f"describing {node_id}"):
            instance = c.instances.get(project=c.project, zone=self._zone_of(node_id), instance=node_id)
        self._remember([instance])
        return instance

    # -- listing ----------------------------------------------------------------------------------

    def list_nodes(self, tags: Mapping[str, str]) -> list[ListedNode]:
        """One instances.aggregatedList (label filter server-side; pages only past 500 nodes), oldest first."""
        wanted = {**tags, T.CLUSTER: self.cluster_name, T.WORKSPACE: self.workspace_name}
        with gcp_errors(f"listing nodes of cluster {self.cluster_name!r}"):
            instances = labelled_instances(self.clients, wanted)
        self._remember(instances)
        ordered = sorted(instances, key=lambda i: (i.creation_timestamp, i.name))
        return [ListedNode(i.name, dict(i.labels), _address(i)) for i in ordered]

    def non_terminated_nodes(self, tags: Mapping[str, str]) -> list[NodeId]:
        return [n.node_id for n in self.list_nodes(tags)]

    # -- launching --------------------------------------------------------------------------------

    def _instance(self, name: str, spec: NodeSpec, labels: dict[str, str], kind: str) -> Any:
        from google.cloud import compute_v1

        node = parse_node_config(GcpNodeConfig, spec)
        net, zone = self.network, self.zone
        head = kind == T.KIND_HEAD
        public = head and net.mode == "public"
        user = spec.ssh_user or DEFAULT_USER
        keys = "\n".join(f"{user}:{key}" for key in public_keys(spec.ssh_public_key))
        access = [compute_v1.AccessConfig(name="External NAT", type_="ONE_TO_ONE_NAT")] if public else []
        scheduling = compute_v1.Scheduling(automatic_restart=True, on_host_maintenance="MIGRATE")
        if self.provider_config.use_preemptible and not head:  # a reclaimed head would take the cluster
            scheduling = compute_v1.Scheduling(
                provisioning_model="SPOT",
                instance_termination_action="DELETE",
                automatic_restart=False,
                on_host_maintenance="TERMINATE",
            )
        return compute_v1.Instance(
            name=name,
            description=f"cloudtik cluster {self.cluster_name} ({kind})",
            machine_type=f"zones/{zone}/machineTypes/{node.machineType}",
            labels=labels,
            tags=compute_v1.Tags(items=[net.network_tag]),
            metadata=compute_v1.Metadata(
                items=[
                    *([compute_v1.Items(key="ssh-keys", value=keys)] if keys else []),  # a value is required
                    compute_v1.Items(key="block-project-ssh-keys", value="TRUE"),  # only the cluster's keys
                ]
            ),
            disks=[
                compute_v1.AttachedDisk(
                    boot=True,
                    auto_delete=True,
                    type_="PERSISTENT",
                    initialize_params=compute_v1.AttachedDiskInitializeParams(
                        source_image=node.sourceImage,
                        disk_size_gb=node.diskSizeGb,
                        disk_type=f"zones/{zone}/diskTypes/{node.diskType}",
                        labels=labels,
                    ),
                )
            ],
            network_interfaces=[
                compute_v1.NetworkInterface(
                    subnetwork=net.public_subnet if public else net.private_subnet, access_configs=access
                )
            ],
            service_accounts=[
                compute_v1.ServiceAccount(
                    email=net.head_account if head else net.worker_account, scopes=list(SCOPES)
                )
            ],
            scheduling=scheduling,
        )

    def create_nodes(self, spec: NodeSpec, tags: Mapping[str, str], count: int) -> list[NodeId]:
        kind = tags.get(T.NODE_KIND, T.KIND_WORKER)
        labels = check_labels(
            {
                **tags,
                T.CLUSTER: self.cluster_name,
                T.WORKSPACE: self.workspace_name,
                T.NODE_KIND: kind,
                T.NODE_TYPE: spec.node_type,
            }
        )
        c = self.clients
        ws = GcpNames(self.workspace_name, self.provider_config.project_id)
        names = [ws.instance_name(self.cluster_name, kind, secrets.token_hex(4)) for _ in range(count)]
        with gcp_errors(f"launching {count} {kind} node(s) of cluster {self.cluster_name!r}"):
            ops = [
                c.instances.insert_unary(
                    project=c.project, zone=self.zone, instance_resource=self._instance(n, spec, labels, kind)
                )
                for n in names
            ]
            wait_all(c, ops, timeout=self.timeout, what=f"launching {', '.join(names)}")
            for name in names:
                self._get(name)
        return names

    # -- terminating and tags -----------------------------------------------------------------------

    def terminate_nodes(self, ids: Sequence[NodeId]) -> None:
        """Delete those of `ids` still alive and of this cluster (a repeated call is a no-op)."""
        c = self.clients
        ours = {T.CLUSTER: self.cluster_name, T.WORKSPACE: self.workspace_name}
        with gcp_errors(f"terminating nodes of cluster {self.cluster_name!r}"):
            live = {i.name: i for i in labelled_instances(c, ours)}
            ops = []
            for node_id in ids:
                if node_id not in live:
                    continue
                try:
                    ops.append(
                        c.instances.delete_unary(
                            project=c.project, zone=zone_of(live[node_id]), instance=node_id
                        )
                    )
                except Exception as exc:
                    if not is_not_found(exc):
                        raise
            wait_all(c, ops, timeout=self.timeout, what=f"deleting {len(ops)} node(s)")
        with self._lock:
            for node_id in ids:
                self._cache.pop(node_id, None)

    def node_tags(self, node_id: NodeId) -> dict[str, str]:
        with self._lock:
            cached = self._cache.get(node_id)
        return dict((cached or self._get(node_id)).labels)

    def set_node_tags(self, node_id: NodeId, tags: Mapping[str, str]) -> None:
        """Merge `tags` into the labels, guarded by the label fingerprint (re-read on a concurrent change)."""
        from google.cloud import compute_v1

        c = self.clients
        wanted = check_labels(dict(tags))

        def attempt() -> bool:
            current = self._get(node_id)
            request = compute_v1.InstancesSetLabelsRequest(
                labels={**dict(current.labels), **wanted}, label_fingerprint=current.label_fingerprint
            )
            try:
                op = c.instances.set_labels_unary(
                    project=c.project,
                    zone=zone_of(current),
                    instance=node_id,
                    instances_set_labels_request_resource=request,
                )
            except Exception as exc:
                if is_conflict(exc):
                    return False
                raise
            wait(c, op, timeout=self.timeout, what=f"labelling {node_id}")
            return True

        with gcp_errors(f"tagging {node_id}"):
            poll(attempt, timeout=self.timeout, what=f"labels of {node_id} to settle")
            self._get(node_id)

    def address(self, node_id: NodeId) -> NodeAddress:
        with self._lock:
            cached = self._cache.get(node_id)
        if cached is None or not cached.network_interfaces or not cached.network_interfaces[0].network_i_p:
            cached = self._get(node_id)
        if not cached.network_interfaces:
            raise ProviderError(f"gcp: instance {node_id} has no network interface")
        return _address(cached)


def _address(instance: Any) -> NodeAddress:
    """The first interface's addresses (empty while an instance has none yet: the next listing will)."""
    if not instance.network_interfaces:
        return NodeAddress(internal_ip="")
    nic = instance.network_interfaces[0]
    external = nic.access_configs[0].nat_i_p if nic.access_configs else None
    return NodeAddress(internal_ip=nic.network_i_p, external_ip=external or None)
