"""Per-resource status of an Azure workspace: present or missing, with the name or id as detail.

The lookups are independent, so they run concurrently (the management clients are thread-safe).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..base import ResourceStatus
from . import identity, network, storage
from . import naming as N
from .clients import AzureClients
from .naming import AzureNames
from .network import Vnet
from .roles import assignments

Check = Callable[[], list[ResourceStatus]]


def _of(name: str, kind: str, found: str | None, detail: str = "") -> ResourceStatus:
    return ResourceStatus(name, kind, bool(found), detail or (found or ""))


def _group(c: AzureClients, names: AzureNames) -> list[ResourceStatus]:
    group = network.find_group(c, names)
    shown = (
        f"{names.resource_group} (not the workspace's own)" if group and not names.owns(group.tags) else ""
    )
    return [_of(N.RESOURCE_GROUP, "resource-group", names.resource_group if group else None, shown)]


def _network(c: AzureClients, names: AzureNames, vnet: Vnet | None) -> list[ResourceStatus]:
    out = [
        _of(
            N.VIRTUAL_NETWORK,
            "virtual-network",
            vnet.name if vnet else None,
            f"{vnet.name} (shared)" if vnet and not vnet.owned else "",
        )
    ]
    subnets = network.find_subnets(c, names, vnet) if vnet else {}
    for role in N.SUBNETS:
        sub = subnets.get(role)
        out.append(
            _of(role, "subnet", sub.name if sub else None, f"{sub.name} {sub.address_prefix}" if sub else "")
        )
    return out


def _nsg_and_nat(c: AzureClients, names: AzureNames) -> list[ResourceStatus]:
    nsg = network.find_nsg(c, names)
    ip = network.find_public_ip(c, names.resource_group, names.nat_ip)
    nat = network.find_nat(c, names)
    sources = ",".join(network.ssh_sources(nsg)) if nsg else ""
    return [
        _of(
            N.NSG,
            "network-security-group",
            names.nsg if nsg else None,
            f"{names.nsg} ssh from {sources}" if nsg else "",
        ),
        _of(
            N.NAT_IP,
            "public-ip",
            names.nat_ip if ip else None,
            f"{names.nat_ip} {ip.ip_address}" if ip else "",
        ),
        _of(N.NAT_GATEWAY, "nat-gateway", names.nat if nat else None),
    ]


def _peering(c: AzureClients, names: AzureNames, vnet: Vnet | None) -> list[ResourceStatus]:
    found = network.find_peering(c, vnet, names.peering) if vnet else None
    detail = f"{found.remote_virtual_network.id} {found.peering_state}" if found else ""
    return [_of(N.PEERING, "vnet-peering", names.peering if found else None, detail)]


def _identities_and_roles(c: AzureClients, names: AzureNames, vnet: Vnet | None) -> list[ResourceStatus]:
    out = [
        _of(
            N.HEAD_IDENTITY,
            "managed-identity",
            names.identity("head") if identity.get_identity(c, names, "head") else None,
        ),
        _of(
            N.WORKER_IDENTITY,
            "managed-identity",
            names.identity("worker") if identity.get_identity(c, names, "worker") else None,
        ),
        _of(N.HEAD_ROLE, "role-definition", names.head_role_guid if identity.get_role(c, names) else None),
    ]
    wanted = assignments(names, names.head_role_guid, network.join_scopes(c, names, vnet))
    present = sum(1 for a in wanted if identity.get_assignment(c, names, a) is not None)
    done = present == len(wanted)
    out.append(
        _of(
            N.ROLE_ASSIGNMENTS,
            "role-assignment",
            f"{present}/{len(wanted)}" if done else None,
            f"{present}/{len(wanted)}",
        )
    )
    return out


def _storage(c: AzureClients, names: AzureNames) -> list[ResourceStatus]:
    account = storage.get_account(c, names)
    return [_of(N.STORAGE_ACCOUNT, "storage-account", names.storage_account if account else None)]


def workspace_status(
    c: AzureClients, names: AzureNames, mode: str, vnet: Vnet | None
) -> list[ResourceStatus]:
    checks: list[Check] = [
        lambda: _group(c, names),
        lambda: _network(c, names, vnet),
        lambda: _nsg_and_nat(c, names),
        *([lambda: _peering(c, names, vnet)] if mode == "peering" else []),
        lambda: _identities_and_roles(c, names, vnet),
        lambda: _storage(c, names),
    ]
    with ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="azure-status") as pool:
        results = [pool.submit(check) for check in checks]
        return [status for result in results for status in result.result()]
