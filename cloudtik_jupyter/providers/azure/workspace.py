"""Azure WorkspaceProvider: the resource group, network, NSG, NAT, identities, roles and storage account a
team's clusters share.

`create` runs named steps that each look before they act, so an interrupted run converges when re-run;
`delete` undoes them in reverse order and touches only what the workspace owns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import ConfigError
from .. import tags as T
from ..base import ResourceStatus
from ..common.guard import refuse_busy_delete, refuse_data_delete
from ..common.lock import LockRecord, hold_cloud_lock
from ..common.steps import StepHooks, Steps
from ..common.subnets import overlaps
from . import identity, network, storage, vms
from . import naming as N
from .clients import AzureClients, azure_errors, make_clients
from .lock import ResourceGroupLock
from .naming import AzureNames, default_resource_group
from .network import Vnet
from .roles import assignments, head_role

if TYPE_CHECKING:
    from ...config.schema import AzureProviderConfig
    from ...config.workspace import NetworkingConfig, WorkspaceConfig


@dataclass(frozen=True)
class Inputs:
    """What `create` checked before touching anything (bad input creates nothing)."""

    shared: Vnet | None
    peer: Vnet | None


class AzureWorkspaceProvider:
    def __init__(
        self,
        provider_config: AzureProviderConfig,
        workspace_name: str,
        config: WorkspaceConfig | None = None,
        *,
        clients: AzureClients | None = None,
        progress: Callable[[str], None] | None = None,
        hooks: StepHooks | None = None,
        timeout: float = 600.0,
    ) -> None:
        self.provider_config = provider_config
        self.workspace_name = workspace_name
        self.config = config
        group = provider_config.resource_group or default_resource_group(workspace_name)
        self.names = AzureNames(workspace_name, provider_config.subscription_id, group)
        self.timeout = timeout
        self.hooks = hooks
        self._clients = clients
        self._progress = progress or (lambda message: None)

    @property
    def clients(self) -> AzureClients:
        if self._clients is None:
            pc = self.provider_config
            self._clients = make_clients(pc.subscription_id, pc.location, endpoint_url=pc.endpoint_url)
        return self._clients

    # -- create -----------------------------------------------------------------------------------

    def _networking(self) -> NetworkingConfig:
        if self.config is None:
            raise ConfigError("networking", "creating or updating a workspace needs its config (networking)")
        return self.config.networking

    def _existing(self, key: str, vnet_id: str) -> Vnet:
        if "/resourcegroups/" not in vnet_id.lower():
            raise ConfigError(key, f"{vnet_id!r} is not a virtual network's resource id")
        found = network.describe_vnet(self.clients, self.names, vnet_id)
        if found is None:
            raise ConfigError(key, f"no virtual network {vnet_id}")
        return found

    def _check_inputs(self, net: NetworkingConfig) -> Inputs:
        shared = peer = None
        if net.mode == "shared-vpc":
            shared = self._existing("networking.vpc_id", str(net.vpc_id))
        if net.mode == "peering":
            peer = self._existing("networking.peer_vpc_id", str(net.peer_vpc_id))
            clash = [p for p in peer.prefixes if overlaps(p, net.vpc_cidr)]
            if clash:
                raise ConfigError(
                    "networking.vpc_cidr",
                    f"{net.vpc_cidr} overlaps the peer network's {clash[0]}; choose another block",
                )
        return Inputs(shared, peer)

    def create(self) -> None:
        """Create what is missing, converge what exists (also how `update` applies a changed config)."""
        cfg = self._networking()
        c, names, t = self.clients, self.names, self.timeout
        step = Steps(self._progress, self.hooks, verb="creating")
        with azure_errors(f"creating workspace {self.workspace_name!r}"):
            inputs = self._check_inputs(cfg)
            step("resource group", lambda: network.ensure_group(c, names))
            vnet = inputs.shared or step(
                "virtual network", lambda: network.ensure_vnet(c, names, cfg.vpc_cidr)
            )
            ssh_from = {
                *cfg.allowed_ssh_cidrs,
                *(inputs.peer.prefixes if inputs.peer else ()),
                *(vnet.prefixes if inputs.shared else ()),
            }
            nsg = step(
                "network security group",
                lambda: network.ensure_nsg(c, names, sorted(ssh_from), cfg.mode, vnet),
            )
            nat = step("NAT gateway", lambda: network.ensure_nat(c, names))
            step("subnets", lambda: network.ensure_subnets(c, names, vnet, nsg, nat))
            joins = network.join_scopes(c, names, vnet)
            if inputs.peer is not None:
                peer = inputs.peer
                step("peering", lambda: network.ensure_peering(c, names, vnet, peer))
            principals = {
                "head": step("head identity", lambda: identity.ensure_identity(c, names, "head")),
                "worker": step("worker identity", lambda: identity.ensure_identity(c, names, "worker")),
            }
            step("head role", lambda: identity.ensure_role(c, names, head_role(self.workspace_name, joins)))
            step("storage account", lambda: storage.ensure_account(c, names))

            def assign() -> None:
                for a in assignments(names, names.head_role_guid, joins):
                    identity.ensure_assignment(c, names, a, principals[a.identity], t)

            step("role assignments", assign)

    # -- delete -----------------------------------------------------------------------------------

    def _vnet(self) -> Vnet | None:
        """The network our subnets are in: ours, the shared one named in the config, or the NSG's record."""
        c, names = self.clients, self.names
        if self.config is not None and self.config.networking.vpc_id:
            return network.describe_vnet(c, names, self.config.networking.vpc_id)
        nsg = network.find_nsg(c, names)
        recorded = (nsg.tags or {}).get(N.VNET) if nsg is not None else None
        ours = names.resource_id("Microsoft.Network/virtualNetworks", names.vnet)
        return network.describe_vnet(c, names, recorded or ours)

    @contextmanager
    def lock(self, record: LockRecord) -> Iterator[LockRecord]:
        """The workspace's lock in the cloud (tags on its resource group) during a create or delete."""
        lock = ResourceGroupLock(self.clients, self.names)
        with (
            azure_errors(f"locking workspace {self.workspace_name!r}"),
            hold_cloud_lock(lock, self.workspace_name, record) as held,
        ):
            yield held

    def delete(self, force: bool = False) -> list[str]:
        """Delete in reverse order; returns what was removed. Refuses while VMs run in the workspace or
        its storage holds data, unless `force` (then VMs are deleted and the storage account with its
        data)."""
        c, names = self.clients, self.names
        step = Steps(self._progress, self.hooks, verb="deleting")
        with azure_errors(f"deleting workspace {self.workspace_name!r}"):
            found = vms.workspace_vms(c, names.resource_group, self.workspace_name)
            refuse_busy_delete(self.workspace_name, len(found), self.cluster_names(), force)
            holds = storage.get_account(c, names) is not None and bool(storage.data_containers(c, names))
            refuse_data_delete(self.workspace_name, f"storage account {names.storage_account}", holds, force)
            if found:
                step.remove(
                    "instances", lambda: vms.delete_vms(c, names.resource_group, [vm.name for vm in found])
                )

            joins = network.join_scopes(c, names, self._vnet())

            def unassign() -> list[str]:
                return [
                    r
                    for a in reversed(assignments(names, names.head_role_guid, joins))
                    for r in identity.delete_assignment(c, names, a)
                ]

            step.remove("role assignments", unassign)
            step.remove("storage account", lambda: storage.delete_account(c, names))
            step.remove("head role", lambda: identity.delete_role(c, names))
            step.remove("worker identity", lambda: identity.delete_identity(c, names, "worker"))
            step.remove("head identity", lambda: identity.delete_identity(c, names, "head"))
            vnet = self._vnet()
            peer_id = self.config.networking.peer_vpc_id if self.config is not None else None
            peer = network.describe_vnet(c, names, peer_id) if peer_id else None
            step.remove("peering", lambda: network.delete_peering(c, names, [vnet, peer]))
            step.remove("subnets", lambda: network.delete_subnets(c, names, vnet))
            step.remove("virtual network", lambda: network.delete_vnet(c, names))
            step.remove("NAT gateway", lambda: network.delete_nat(c, names))
            step.remove("network security group", lambda: network.delete_nsg(c, names))
            step.remove("resource group", lambda: network.delete_group(c, names))
        return step.removed

    def cluster_names(self) -> set[str]:
        found = vms.workspace_vms(self.clients, self.names.resource_group, self.workspace_name)
        return {(vm.tags or {}).get(T.CLUSTER, "") for vm in found} - {""}

    # -- status and info ----------------------------------------------------------------------------

    def _mode(self) -> str:
        if self.config is not None:
            return self.config.networking.mode
        nsg = network.find_nsg(self.clients, self.names)
        return str((nsg.tags or {}).get(N.NETWORKING, "public")) if nsg is not None else "public"

    def status(self) -> list[ResourceStatus]:
        from .status import workspace_status

        with azure_errors(f"reading workspace {self.workspace_name!r}"):
            return workspace_status(self.clients, self.names, self._mode(), self._vnet())

    def info(self) -> dict[str, str]:
        c, names = self.clients, self.names
        with azure_errors(f"reading workspace {self.workspace_name!r}"):
            out = {
                "provider": "azure",
                "subscription": c.subscription_id,
                "location": c.location,
                "resource_group": names.resource_group,
                "networking": self._mode(),
            }
            vnet = self._vnet()
            if vnet is not None:
                out["virtual_network"] = vnet.id
                for role, sub in network.find_subnets(c, names, vnet).items():
                    out[role.replace("-", "_")] = str(sub.id)
            out["head_identity"] = names.identity_id("head")
            out["worker_identity"] = names.identity_id("worker")
            out["storage_account"] = names.storage_account
            clusters = sorted(self.cluster_names())
            out["clusters"] = ",".join(clusters) if clusters else "-"
            return out
