"""Resource group, virtual network, subnets, NSG, NAT gateway (with its public IP) and peering: find,
create what is missing, converge what drifted, delete only what the workspace owns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ...errors import ProviderError
from ..common.subnets import free_block
from . import naming as N
from .clients import AzureClients, finish, is_not_found
from .naming import AzureNames

T = TypeVar("T")
SSH_RULE = "cloudtik-ssh"


@dataclass(frozen=True)
class Vnet:
    id: str
    group: str
    name: str
    prefixes: tuple[str, ...]
    owned: bool  # False for a shared, existing network: only our subnets go in it, it is never deleted


def failed(resource: Any) -> bool:
    """A resource whose last PUT failed (ARM keeps it, provisioningState Failed): PUT it again."""
    state = getattr(resource, "provisioning_state", None)
    return str(getattr(state, "value", state) or "").lower() == "failed"


def get_or_none(call: Callable[[], T]) -> T | None:
    try:
        return call()
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise


def split_id(resource_id: str) -> tuple[str, str]:
    """(resource group, name) of a resource id."""
    parts = resource_id.strip("/").split("/")
    lower = [p.lower() for p in parts]
    return parts[lower.index("resourcegroups") + 1], parts[-1]


# -- resource group ---------------------------------------------------------------------------------


def find_group(c: AzureClients, names: AzureNames) -> Any | None:
    return get_or_none(lambda: c.resource.resource_groups.get(names.resource_group))


def ensure_group(c: AzureClients, names: AzureNames) -> None:
    from azure.mgmt.resource.resources.models import ResourceGroup

    if find_group(c, names) is None:
        group = ResourceGroup(location=c.location, tags=names.tags(N.RESOURCE_GROUP))
        c.resource.resource_groups.create_or_update(names.resource_group, group)


def delete_group(c: AzureClients, names: AzureNames) -> list[str]:
    """Only a group the workspace made, and only when nothing else is left in it."""
    group = find_group(c, names)
    if group is None or not names.owns(group.tags, N.RESOURCE_GROUP):
        return []
    others = [r.id for r in c.resource.resources.list_by_resource_group(names.resource_group)]
    if others:
        raise ProviderError(
            f"azure: resource group {names.resource_group} still holds resources the workspace did not make "
            f"({', '.join(others[:3])}); move or delete them, then delete the workspace again"
        )
    finish(c.resource.resource_groups.begin_delete(names.resource_group))
    return [names.resource_group]


# -- NSG, NAT -----------------------------------------------------------------------------------------


def find_nsg(c: AzureClients, names: AzureNames) -> Any | None:
    nsg = get_or_none(lambda: c.network.network_security_groups.get(names.resource_group, names.nsg))
    return nsg if nsg is not None and names.owns(nsg.tags) else None


def ssh_sources(nsg: Any) -> list[str]:
    for rule in nsg.security_rules or []:
        if rule.name == SSH_RULE:
            return sorted(rule.source_address_prefixes or [])
    return []


def ensure_nsg(c: AzureClients, names: AzureNames, sources: Sequence[str], mode: str, vnet: Vnet) -> str:
    """SSH only from `sources`; traffic within the network is Azure's default; `update` converges both.
    Its tags record the networking mode and the network (which may be a shared one elsewhere)."""
    from azure.mgmt.network.models import (
        NetworkSecurityGroup,
        NetworkSecurityGroupPropertiesFormat,
        SecurityRule,
        SecurityRulePropertiesFormat,
    )

    if not sources:
        raise ProviderError("azure: refusing an SSH rule without source address prefixes")
    found = find_nsg(c, names)
    tags = names.tags(N.NSG, {N.NETWORKING: mode, N.VNET: vnet.id})
    if (
        found is not None
        and ssh_sources(found) == sorted(sources)
        and found.tags == tags
        and not failed(found)
    ):
        return str(found.id)
    rule = SecurityRule(
        name=SSH_RULE,
        properties=SecurityRulePropertiesFormat(
            description="cloudtik: SSH from the allowed CIDRs only",
            protocol="Tcp",
            source_port_range="*",
            destination_port_range="22",
            source_address_prefixes=sorted(sources),
            destination_address_prefix="VirtualNetwork",
            access="Allow",
            priority=1000,
            direction="Inbound",
        ),
    )
    properties = NetworkSecurityGroupPropertiesFormat(security_rules=[rule])
    nsg = NetworkSecurityGroup(location=c.location, tags=tags, properties=properties)
    return str(
        finish(
            c.network.network_security_groups.begin_create_or_update(names.resource_group, names.nsg, nsg)
        ).id
    )


def delete_nsg(c: AzureClients, names: AzureNames) -> list[str]:
    if find_nsg(c, names) is None:
        return []
    finish(c.network.network_security_groups.begin_delete(names.resource_group, names.nsg))
    return [names.nsg]


def find_public_ip(c: AzureClients, group: str, name: str) -> Any | None:
    return get_or_none(lambda: c.network.public_ip_addresses.get(group, name))


def ensure_public_ip(c: AzureClients, group: str, name: str, tags: dict[str, str]) -> str:
    from azure.mgmt.network.models import PublicIPAddress, PublicIPAddressPropertiesFormat, PublicIPAddressSku

    found = find_public_ip(c, group, name)
    if found is not None and not failed(found):
        return str(found.id)
    ip = PublicIPAddress(
        location=c.location,
        tags=tags,
        sku=PublicIPAddressSku(name="Standard"),
        properties=PublicIPAddressPropertiesFormat(
            public_ip_allocation_method="Static", public_ip_address_version="IPv4"
        ),
    )
    return str(finish(c.network.public_ip_addresses.begin_create_or_update(group, name, ip)).id)


def find_nat(c: AzureClients, names: AzureNames) -> Any | None:
    nat = get_or_none(lambda: c.network.nat_gateways.get(names.resource_group, names.nat))
    return nat if nat is not None and names.owns(nat.tags) else None


def ensure_nat(c: AzureClients, names: AzureNames) -> str:
    """A NAT gateway (outbound for the private subnet) with its own static public IP."""
    from azure.mgmt.network.models import NatGateway, NatGatewayPropertiesFormat, NatGatewaySku, SubResource

    ip = ensure_public_ip(c, names.resource_group, names.nat_ip, names.tags(N.NAT_IP))
    found = find_nat(c, names)
    if found is not None and not failed(found):
        return str(found.id)
    nat = NatGateway(
        location=c.location,
        tags=names.tags(N.NAT_GATEWAY),
        sku=NatGatewaySku(name="Standard"),
        properties=NatGatewayPropertiesFormat(public_ip_addresses=[SubResource(id=ip)]),
    )
    return str(finish(c.network.nat_gateways.begin_create_or_update(names.resource_group, names.nat, nat)).id)


def delete_nat(c: AzureClients, names: AzureNames) -> list[str]:
    removed = []
    if find_nat(c, names) is not None:
        finish(c.network.nat_gateways.begin_delete(names.resource_group, names.nat))
        removed.append(names.nat)
    ip = find_public_ip(c, names.resource_group, names.nat_ip)
    if ip is not None and names.owns(ip.tags):
        finish(c.network.public_ip_addresses.begin_delete(names.resource_group, names.nat_ip))
        removed.append(names.nat_ip)
    return removed


# -- virtual network and subnets ----------------------------------------------------------------------


def describe_vnet(c: AzureClients, names: AzureNames, vnet_id: str) -> Vnet | None:
    group, name = split_id(vnet_id)
    vnet = get_or_none(lambda: c.network.virtual_networks.get(group, name))
    if vnet is None:
        return None
    prefixes = tuple(vnet.address_space.address_prefixes or [])
    return Vnet(str(vnet.id), group, name, prefixes, owned=names.owns(vnet.tags, N.VIRTUAL_NETWORK))


def vnet_ref(vnet_id: str) -> Vnet:
    """A network known by id only (nothing read): enough to address its subnets."""
    group, name = split_id(vnet_id)
    return Vnet(vnet_id, group, name, (), owned=False)


def ensure_vnet(c: AzureClients, names: AzureNames, cidr: str) -> Vnet:
    from azure.mgmt.network.models import AddressSpace, VirtualNetwork, VirtualNetworkPropertiesFormat

    found = describe_vnet(c, names, names.resource_id("Microsoft.Network/virtualNetworks", names.vnet))
    if found is not None:
        if cidr not in found.prefixes:
            raise ProviderError(
                f"workspace {names.workspace!r} already has network {found.name} with {', '.join(found.prefixes)}; "
                f"networking.vpc_cidr={cidr} can't change in place (delete the workspace and create it again)"
            )
        return found
    # Created once, never PUT again: a PUT of a network replaces its list of subnets.
    vnet = VirtualNetwork(
        location=c.location,
        tags=names.tags(N.VIRTUAL_NETWORK),
        properties=VirtualNetworkPropertiesFormat(address_space=AddressSpace(address_prefixes=[cidr])),
    )
    made = finish(c.network.virtual_networks.begin_create_or_update(names.resource_group, names.vnet, vnet))
    return Vnet(str(made.id), names.resource_group, names.vnet, (cidr,), owned=True)


def delete_vnet(c: AzureClients, names: AzureNames) -> list[str]:
    found = describe_vnet(c, names, names.resource_id("Microsoft.Network/virtualNetworks", names.vnet))
    if found is None or not found.owned:
        return []
    finish(c.network.virtual_networks.begin_delete(found.group, found.name))
    return [found.name]


def vnet_ranges(c: AzureClients, vnet: Vnet) -> list[str]:
    return [str(s.address_prefix) for s in c.network.subnets.list(vnet.group, vnet.name) if s.address_prefix]


def find_subnets(c: AzureClients, names: AzureNames, vnet: Vnet) -> dict[str, Any]:
    found = {}
    for role in N.SUBNETS:
        sub = get_or_none(lambda role=role: c.network.subnets.get(vnet.group, vnet.name, names.subnet(role)))  # type: ignore[misc]
        if sub is not None:
            found[role] = sub
    return found


def join_scopes(c: AzureClients, names: AzureNames, vnet: Vnet | None) -> tuple[str, ...]:
    """The workspace's subnets when its network is in another resource group (a shared one): the head
    needs its role there too, to put worker NICs in them."""
    if vnet is None or vnet.group.lower() == names.resource_group.lower():
        return ()
    return tuple(sorted(str(s.id) for s in find_subnets(c, names, vnet).values()))


def ensure_subnets(c: AzureClients, names: AzureNames, vnet: Vnet, nsg: str, nat: str) -> dict[str, str]:
    """A public and a private /24 of the network; both behind the NSG, the private one behind the NAT."""
    from azure.mgmt.network.models import NetworkSecurityGroup, Subnet, SubnetPropertiesFormat, SubResource

    found = find_subnets(c, names, vnet)
    out = {}
    for role in N.SUBNETS:
        current = found.get(role)
        want_nat = role == N.PRIVATE_SUBNET
        if current is not None:
            ok_nsg = (
                current.network_security_group and current.network_security_group.id.lower() == nsg.lower()
            )
            ok_nat = bool(current.nat_gateway) == want_nat
            if ok_nsg and ok_nat and not failed(current):
                out[role] = str(current.id)
                continue
        prefix = (
            current.address_prefix
            if current is not None
            else free_block(vnet.prefixes[0], vnet_ranges(c, vnet))
        )
        subnet = Subnet(
            properties=SubnetPropertiesFormat(
                address_prefix=prefix,
                network_security_group=NetworkSecurityGroup(id=nsg),
                nat_gateway=SubResource(id=nat) if want_nat else None,
            )
        )
        made = finish(
            c.network.subnets.begin_create_or_update(vnet.group, vnet.name, names.subnet(role), subnet)
        )
        out[role] = str(made.id)
    return out


def delete_subnets(c: AzureClients, names: AzureNames, vnet: Vnet | None) -> list[str]:
    if vnet is None:
        return []
    found = find_subnets(c, names, vnet)
    for role in found:
        finish(c.network.subnets.begin_delete(vnet.group, vnet.name, names.subnet(role)))
    return [f"{vnet.name}/{names.subnet(role)}" for role in found]


# -- peering ------------------------------------------------------------------------------------------


def find_peering(c: AzureClients, vnet: Vnet, name: str) -> Any | None:
    return get_or_none(lambda: c.network.virtual_network_peerings.get(vnet.group, vnet.name, name))


def ensure_peering(c: AzureClients, names: AzureNames, ours: Vnet, peer: Vnet) -> None:
    """Peer both ways (a peering connects only when both sides have one)."""
    from azure.mgmt.network.models import (
        SubResource,
        VirtualNetworkPeering,
        VirtualNetworkPeeringPropertiesFormat,
    )

    for local, remote in ((ours, peer), (peer, ours)):
        found = find_peering(c, local, names.peering)
        if found is not None:
            if found.remote_virtual_network.id.lower() != remote.id.lower():
                raise ProviderError(
                    f"azure: {local.name} is peered with {found.remote_virtual_network.id}, not {remote.id}"
                )
            continue
        peering = VirtualNetworkPeering(
            properties=VirtualNetworkPeeringPropertiesFormat(
                remote_virtual_network=SubResource(id=remote.id),
                allow_virtual_network_access=True,
                allow_forwarded_traffic=False,
            )
        )
        finish(
            c.network.virtual_network_peerings.begin_create_or_update(
                local.group, local.name, names.peering, peering
            )
        )


def delete_peering(c: AzureClients, names: AzureNames, vnets: Sequence[Vnet | None]) -> list[str]:
    removed = []
    for vnet in vnets:
        if vnet is not None and find_peering(c, vnet, names.peering) is not None:
            finish(c.network.virtual_network_peerings.begin_delete(vnet.group, vnet.name, names.peering))
            removed.append(f"{vnet.name}/{names.peering}")
    return removed
