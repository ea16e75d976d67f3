"""Azure NodeProvider: a cluster's VMs, each with its NIC in the workspace's subnet (and a public IP for a
public head), its OS disk, and the workspace's head or worker identity.

Node ids are VM names; provider tags are VM tags, merged through the Tags API (one atomic request). The
cluster's SSH keys reach the VM through its OS profile (public keys; password login is disabled).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from ...errors import ProviderError
from .. import tags as T
from ..base import ListedNode, NodeAddress, NodeId, NodeSpec
from ..common.bootstrap import DEFAULT_USER, public_keys
from ..common.node_config import parse_node_config
from . import naming as N
from . import network, vms
from .clients import AzureClients, azure_errors, make_clients
from .naming import AzureNames, default_resource_group

if TYPE_CHECKING:
    from ...config.schema import AzureProviderConfig


class ImageReference(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    publisher: str
    offer: str
    sku: str
    version: str = "latest"


class AzureNodeConfig(BaseModel):
    """``node_config`` of an Azure node type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    imageReference: ImageReference
    vmSize: str = "Standard_D4s_v5"
    osDiskSizeGB: int = Field(default=100, ge=30)
    osDiskType: str = "StandardSSD_LRS"


@dataclass(frozen=True)
class WorkspaceNetwork:
    mode: str
    public_subnet: str  # subnet ids
    private_subnet: str
    head_identity: str  # identity ids
    worker_identity: str


def resolve_network(c: AzureClients, names: AzureNames) -> WorkspaceNetwork:
    """The workspace's network, or a `ProviderError` saying how to create it."""
    nsg = network.find_nsg(c, names)
    vnet_id = (nsg.tags or {}).get(N.VNET) if nsg is not None else None
    # By its id alone: the head may read its subnets in a shared network, not the network itself.
    vnet = network.vnet_ref(vnet_id) if vnet_id else None
    subnets = network.find_subnets(c, names, vnet) if vnet is not None else {}
    if nsg is None or any(role not in subnets for role in N.SUBNETS):
        raise ProviderError(
            f"workspace {names.workspace!r} is missing or incomplete in resource group {names.resource_group} "
            f"(run `cloudtik workspace create` with its config)"
        )
    return WorkspaceNetwork(
        mode=str(nsg.tags.get(N.NETWORKING, "public")),
        public_subnet=str(subnets[N.PUBLIC_SUBNET].id),
        private_subnet=str(subnets[N.PRIVATE_SUBNET].id),
        head_identity=names.identity_id("head"),
        worker_identity=names.identity_id("worker"),
    )


class AzureNodeProvider:
    """Cloud API channel for one cluster in one workspace. Every method is safe to retry."""

    def __init__(
        self,
        provider_config: AzureProviderConfig,
        cluster_name: str,
        *,
        workspace_name: str = "default",
        clients: AzureClients | None = None,
    ) -> None:
        self.provider_config = provider_config
        self.cluster_name = cluster_name
        self.workspace_name = workspace_name
        group = provider_config.resource_group or default_resource_group(workspace_name)
        self.names = AzureNames(workspace_name, provider_config.subscription_id, group)
        self._clients = clients
        self._network: WorkspaceNetwork | None = None
        self._lock = threading.Lock()  # callers run provider methods in threads
        self._tags: dict[NodeId, dict[str, str]] = {}
        self._addresses: dict[NodeId, NodeAddress] = {}

    @property
    def clients(self) -> AzureClients:
        if self._clients is None:
            pc = self.provider_config
            self._clients = make_clients(pc.subscription_id, pc.location, endpoint_url=pc.endpoint_url)
        return self._clients

    @property
    def group(self) -> str:
        return self.names.resource_group

    @property
    def network(self) -> WorkspaceNetwork:
        if self._network is None:
            with azure_errors(f"looking up workspace {self.workspace_name!r}"):
                self._network = resolve_network(self.clients, self.names)
        return self._network

    def _cluster_tags(self) -> dict[str, str]:
        return {T.CLUSTER: self.cluster_name, T.WORKSPACE: self.workspace_name}

    # -- listing ----------------------------------------------------------------------------------

    def list_nodes(self, tags: Mapping[str, str]) -> list[ListedNode]:
        """One VM list; addresses not yet known here add one NIC list and, when one of those NICs has a
        public IP, one public-IP list (Azure's VM list carries no addresses). Never a call per node."""
        with azure_errors(f"listing nodes of cluster {self.cluster_name!r}"):
            found = vms.tagged_vms(self.clients, self.group, {**tags, **self._cluster_tags()})
            live = sorted(
                (vm for vm in found if vm.provisioning_state not in ("Deleting", "Failed")),
                key=lambda vm: str(vm.name),
            )
            addresses = self._addresses_of([str(vm.name) for vm in live])
        with self._lock:
            for vm in live:
                self._tags[vm.name] = dict(vm.tags or {})
        return [ListedNode(vm.name, dict(vm.tags or {}), addresses[vm.name]) for vm in live]

    def non_terminated_nodes(self, tags: Mapping[str, str]) -> list[NodeId]:
        return [n.node_id for n in self.list_nodes(tags)]

    def _addresses_of(self, names: Sequence[str]) -> dict[str, NodeAddress]:
        """Addresses of VMs `names`: remembered ones (a NIC keeps its private IP, a head's public IP is
        static), the rest read for all of them at once."""
        with self._lock:
            known = {n: self._addresses[n] for n in names if n in self._addresses}
        missing = [n for n in names if n not in known]
        if not missing:
            return known
        c = self.clients
        nics = {str(nic.name): nic for nic in c.network.network_interfaces.list(self.group)}
        configs = {
            n: nics[vms.nic_name(n)].ip_configurations[0]
            for n in missing
            if vms.nic_name(n) in nics and nics[vms.nic_name(n)].ip_configurations
        }
        public: dict[str, Any] = {}
        if any(config.public_ip_address is not None for config in configs.values()):
            public = {str(ip.name): ip for ip in c.network.public_ip_addresses.list(self.group)}
        for n in missing:
            config = configs.get(n)
            if config is None or not config.private_ip_address:
                known[n] = NodeAddress(internal_ip="")  # NIC not there yet: the next listing reads it
                continue
            ip = public.get(vms.ip_name(n)) if config.public_ip_address is not None else None
            external = str(ip.ip_address) if ip is not None and ip.ip_address else None
            known[n] = NodeAddress(internal_ip=str(config.private_ip_address), external_ip=external)
            if config.public_ip_address is None or external:
                with self._lock:
                    self._addresses[n] = known[n]
        return known

    # -- launching --------------------------------------------------------------------------------

    def _nic(self, subnet: str, public_ip: str | None, tags: dict[str, str]) -> Any:
        from azure.mgmt.network import models as n

        ip = None
        if public_ip:
            ip = n.PublicIPAddress(
                id=public_ip, properties=n.PublicIPAddressPropertiesFormat(delete_option="Delete")
            )
        config = n.NetworkInterfaceIPConfiguration(
            name="primary",
            properties=n.NetworkInterfaceIPConfigurationPropertiesFormat(
                subnet=n.Subnet(id=subnet),
                private_ip_allocation_method="Dynamic",
                primary=True,
                public_ip_address=ip,
            ),
        )
        properties = n.NetworkInterfacePropertiesFormat(ip_configurations=[config])
        return n.NetworkInterface(location=self.clients.location, tags=tags, properties=properties)

    def _vm(self, vm: str, spec: NodeSpec, nic: str, tags: dict[str, str], head: bool) -> Any:
        from azure.mgmt.compute import models as m

        node = parse_node_config(AzureNodeConfig, spec)
        user = spec.ssh_user or DEFAULT_USER
        path = f"/home/{user}/.ssh/authorized_keys"  # Azure accepts no other path
        keys = [m.SshPublicKey(path=path, key_data=k) for k in public_keys(spec.ssh_public_key)]
        identity = self.network.head_identity if head else self.network.worker_identity
        image = node.imageReference
        spot = self.provider_config.use_spot and not head  # a reclaimed head would take the cluster with it
        properties = m.VirtualMachineProperties(
            hardware_profile=m.HardwareProfile(vm_size=node.vmSize),
            storage_profile=m.StorageProfile(
                image_reference=m.ImageReference(
                    publisher=image.publisher, offer=image.offer, sku=image.sku, version=image.version
                ),
                os_disk=m.OSDisk(
                    name=vms.disk_name(vm),
                    create_option="FromImage",
                    delete_option="Delete",
                    disk_size_gb=node.osDiskSizeGB,
                    managed_disk=m.ManagedDiskParameters(storage_account_type=node.osDiskType),
                ),
            ),
            os_profile=m.OSProfile(
                computer_name=vm,
                admin_username=user,
                linux_configuration=m.LinuxConfiguration(
                    disable_password_authentication=True, ssh=m.SshConfiguration(public_keys=keys)
                ),
            ),
            network_profile=m.NetworkProfile(
                network_interfaces=[
                    m.NetworkInterfaceReference(
                        id=nic,
                        properties=m.NetworkInterfaceReferenceProperties(
                            primary=True, delete_option="Delete"
                        ),
                    )
                ]
            ),
            priority="Spot" if spot else None,
            eviction_policy="Delete" if spot else None,
            billing_profile=m.BillingProfile(max_price=-1) if spot else None,
        )
        return m.VirtualMachine(
            location=self.clients.location,
            tags=tags,
            identity=m.VirtualMachineIdentity(
                type="UserAssigned", user_assigned_identities={identity: m.UserAssignedIdentitiesValue()}
            ),
            properties=properties,
        )

    def create_nodes(self, spec: NodeSpec, tags: Mapping[str, str], count: int) -> list[NodeId]:
        parse_node_config(AzureNodeConfig, spec)  # bad input creates nothing
        kind = tags.get(T.NODE_KIND, T.KIND_WORKER)
        head = kind == T.KIND_HEAD
        all_tags = {**tags, **self._cluster_tags(), T.NODE_KIND: kind, T.NODE_TYPE: spec.node_type}
        c, group = self.clients, self.group
        public = head and self.network.mode == "public"
        names = [f"{self.cluster_name}-{kind}-{secrets.token_hex(4)}" for _ in range(count)]
        with azure_errors(f"launching {count} {kind} node(s) of cluster {self.cluster_name!r}"):
            try:
                self._launch(spec, names, all_tags, head, public)
            except Exception:
                # A VM refused after its NIC (and IP) were made would leave them behind: take them away.
                vms.delete_vms(c, group, names, names if public else [])
                raise
        with self._lock:
            for n in names:
                self._tags[n] = dict(all_tags)
        return names

    def _launch(
        self, spec: NodeSpec, names: list[str], tags: dict[str, str], head: bool, public: bool
    ) -> None:
        """Public IPs (a public head only), then NICs, then VMs: each stage in parallel across nodes."""
        c, net, group = self.clients, self.network, self.group
        ips: dict[str, str | None] = {n: None for n in names}
        if public:
            for n in names:
                ips[n] = network.ensure_public_ip(c, group, vms.ip_name(n), tags)
        subnet = net.public_subnet if public else net.private_subnet
        pollers = [
            c.network.network_interfaces.begin_create_or_update(
                group, vms.nic_name(n), self._nic(subnet, ips[n], tags)
            )
            for n in names
        ]
        nics = [p.result().id for p in pollers]
        pollers = [
            c.compute.virtual_machines.begin_create_or_update(group, n, self._vm(n, spec, nic, tags, head))
            for n, nic in zip(names, nics, strict=True)
        ]
        for p in pollers:
            p.result()

    # -- terminating and tags -----------------------------------------------------------------------

    def terminate_nodes(self, ids: Sequence[NodeId]) -> None:
        """Delete the VMs with their NICs, disks and IPs (a repeated call is a no-op, not an error)."""
        with azure_errors(f"terminating nodes of cluster {self.cluster_name!r}"):
            present = {vm.name: vm for vm in vms.tagged_vms(self.clients, self.group, {})}
            ours = self._cluster_tags().items()
            # A VM already gone may have left its NIC, disk or IP behind (named after it): those go too.
            doomed = [
                i
                for i in ids
                if (i in present and ours <= dict(present[i].tags or {}).items())
                or (i not in present and i.startswith(f"{self.cluster_name}-"))
            ]
            # Only a head has a public IP (workers never do): kind by tag, or by name once the VM is gone.
            head_name = f"{self.cluster_name}-{T.KIND_HEAD}-"
            heads = [
                i
                for i in doomed
                if (i in present and (present[i].tags or {}).get(T.NODE_KIND) == T.KIND_HEAD)
                or (i not in present and i.startswith(head_name))
            ]
            vms.delete_vms(self.clients, self.group, doomed, heads)
        with self._lock:
            for node_id in ids:
                self._tags.pop(node_id, None)
                self._addresses.pop(node_id, None)

    def node_tags(self, node_id: NodeId) -> dict[str, str]:
        with self._lock:
            cached = self._tags.get(node_id)
        if cached is not None:
            return dict(cached)
        with azure_errors(f"describing {node_id}"):
            vm = self.clients.compute.virtual_machines.get(self.group, node_id)
        with self._lock:
            self._tags[node_id] = dict(vm.tags or {})
            return dict(self._tags[node_id])

    def set_node_tags(self, node_id: NodeId, tags: Mapping[str, str]) -> None:
        from azure.mgmt.resource.resources.models import Tags, TagsPatchResource

        scope = self.names.resource_id("Microsoft.Compute/virtualMachines", node_id)
        patch = TagsPatchResource(operation="Merge", properties=Tags(tags=dict(tags)))
        with azure_errors(f"tagging {node_id}"):
            merged = self.clients.resource.tags.begin_update_at_scope(scope, patch).result()
        with self._lock:
            self._tags[node_id] = dict(merged.properties.tags or {})

    def address(self, node_id: NodeId) -> NodeAddress:
        with self._lock:
            cached = self._addresses.get(node_id)
        if cached is not None:
            return cached
        c = self.clients
        with azure_errors(f"reading the addresses of {node_id}"):
            nic = c.network.network_interfaces.get(self.group, vms.nic_name(node_id))
            config = nic.ip_configurations[0]
            external = None
            if config.public_ip_address is not None:
                external = network.find_public_ip(c, self.group, vms.ip_name(node_id))
        address = NodeAddress(
            internal_ip=str(config.private_ip_address),
            external_ip=str(external.ip_address) if external else None,
        )
        with self._lock:
            self._addresses[node_id] = address
        return address
