"""VPC network, subnetworks, firewall rules, Cloud Router + NAT and peering: find, create what is missing,
converge what drifted, delete only what the workspace owns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ...errors import ProviderError
from ..common.subnets import free_block
from . import naming as N
from .clients import GcpClients, is_not_found
from .naming import GcpNames
from .operations import wait

T = TypeVar("T")
SSH_PORT = "22"


@dataclass(frozen=True)
class Network:
    name: str
    link: str
    owned: bool  # False for a shared, existing network: only our subnetworks go in it, it is never deleted


@dataclass(frozen=True)
class Subnet:
    role: str
    name: str
    link: str
    cidr: str


def get_or_none(call: Callable[[], T]) -> T | None:
    try:
        return call()
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise


def network_link(c: GcpClients, name: str) -> str:
    return f"projects/{c.project}/global/networks/{name}"


def find_network(c: GcpClients, names: GcpNames, name: str | None = None) -> Network | None:
    """Our network (by name and description), or the named existing one."""
    net = get_or_none(lambda: c.networks.get(project=c.project, network=name or names.network))
    if net is None:
        return None
    return Network(net.name, net.self_link, owned=names.owns(net.description))


def ensure_network(c: GcpClients, names: GcpNames, timeout: float) -> Network:
    from google.cloud import compute_v1

    found = find_network(c, names)
    if found is not None:
        if not found.owned:
            raise ProviderError(
                f"gcp: network {names.network} exists but is not workspace {names.workspace}'s"
            )
        return found
    body = compute_v1.Network(
        name=names.network,
        description=names.description(N.NETWORK),
        auto_create_subnetworks=False,
        routing_config=compute_v1.NetworkRoutingConfig(routing_mode="REGIONAL"),
    )
    op = c.networks.insert_unary(project=c.project, network_resource=body)
    wait(c, op, timeout=timeout, what=f"creating network {names.network}")
    return Network(names.network, network_link(c, names.network), owned=True)


def delete_network(c: GcpClients, names: GcpNames, timeout: float) -> list[str]:
    found = find_network(c, names)
    if found is None or not found.owned:
        return []
    op = c.networks.delete_unary(project=c.project, network=found.name)
    wait(c, op, timeout=timeout, what=f"deleting network {found.name}")
    return [found.name]


def network_ranges(c: GcpClients, network_link_or_name: str) -> list[str]:
    """CIDRs of every subnetwork of a network in our region (to plan around, or to peer with)."""
    wanted = network_link_or_name.rsplit("/", 1)[-1]
    subs = c.subnetworks.list(project=c.project, region=c.region)
    return [s.ip_cidr_range for s in subs if s.network.rsplit("/", 1)[-1] == wanted]


# -- subnetworks ------------------------------------------------------------------------------------


def find_subnets(c: GcpClients, names: GcpNames) -> dict[str, Subnet]:
    found: dict[str, Subnet] = {}
    for role in N.SUBNETS:
        sub = get_or_none(
            lambda role=role: c.subnetworks.get(  # type: ignore[misc]
                project=c.project, region=c.region, subnetwork=names.subnet(role)
            )
        )
        if sub is not None and names.owns(sub.description):
            found[role] = Subnet(role, sub.name, sub.self_link, sub.ip_cidr_range)
    return found


def ensure_subnets(
    c: GcpClients, names: GcpNames, net: Network, block: str, avoid: Sequence[str], timeout: float
) -> dict[str, Subnet]:
    """A public and a private /24 from `block`, clear of the network's (and a peer's) other ranges.
    The private one reaches Google APIs (the bucket) without the NAT."""
    from google.cloud import compute_v1

    found = find_subnets(c, names)
    for role in N.SUBNETS:
        if role in found:
            continue
        cidr = free_block(block, [*network_ranges(c, net.name), *avoid])
        body = compute_v1.Subnetwork(
            name=names.subnet(role),
            description=names.description(role),
            network=net.link,
            ip_cidr_range=cidr,
            private_ip_google_access=role == N.PRIVATE_SUBNET,
        )
        op = c.subnetworks.insert_unary(project=c.project, region=c.region, subnetwork_resource=body)
        wait(c, op, timeout=timeout, what=f"creating subnetwork {body.name}")
        link = f"projects/{c.project}/regions/{c.region}/subnetworks/{body.name}"
        found[role] = Subnet(role, body.name, link, cidr)
    return found


def delete_subnets(c: GcpClients, names: GcpNames, timeout: float) -> list[str]:
    removed = []
    for sub in find_subnets(c, names).values():
        op = c.subnetworks.delete_unary(project=c.project, region=c.region, subnetwork=sub.name)
        wait(c, op, timeout=timeout, what=f"deleting subnetwork {sub.name}")
        removed.append(sub.name)
    return removed


# -- firewall ---------------------------------------------------------------------------------------


def find_firewall(c: GcpClients, names: GcpNames, name: str) -> Any | None:
    rule = get_or_none(lambda: c.firewalls.get(project=c.project, firewall=name))
    return rule if rule is not None and names.owns(rule.description) else None


def _ssh_rule(names: GcpNames, net: Network, sources: Sequence[str], mode: str) -> Any:
    from google.cloud import compute_v1

    return compute_v1.Firewall(
        name=names.ssh_firewall,
        description=names.description(N.SSH_FIREWALL, mode),
        network=net.link,
        direction="INGRESS",
        priority=1000,
        allowed=[compute_v1.Allowed(I_p_protocol="tcp", ports=[SSH_PORT])],
        source_ranges=sorted(sources),
        target_tags=[names.network_tag],
    )


def _internal_rule(names: GcpNames, net: Network, mode: str) -> Any:
    from google.cloud import compute_v1

    return compute_v1.Firewall(
        name=names.internal_firewall,
        description=names.description(N.INTERNAL_FIREWALL, mode),
        network=net.link,
        direction="INGRESS",
        priority=1000,
        allowed=[compute_v1.Allowed(I_p_protocol="all")],
        source_tags=[names.network_tag],
        target_tags=[names.network_tag],
    )


def ensure_firewalls(
    c: GcpClients, names: GcpNames, net: Network, ssh_sources: Sequence[str], mode: str, timeout: float
) -> None:
    """SSH only from `ssh_sources`, everything between workspace instances; `update` converges both."""
    if not ssh_sources:  # GCP would read "no sources" as 0.0.0.0/0
        raise ProviderError("gcp: refusing an SSH firewall rule without source ranges")
    for want in (_ssh_rule(names, net, ssh_sources, mode), _internal_rule(names, net, mode)):
        have = find_firewall(c, names, want.name)
        if have is None:
            op = c.firewalls.insert_unary(project=c.project, firewall_resource=want)
        elif sorted(have.source_ranges) != sorted(want.source_ranges) or have.description != want.description:
            op = c.firewalls.patch_unary(project=c.project, firewall=want.name, firewall_resource=want)
        else:
            continue
        wait(c, op, timeout=timeout, what=f"applying firewall rule {want.name}")


def delete_firewalls(c: GcpClients, names: GcpNames, timeout: float) -> list[str]:
    removed = []
    for name in (names.internal_firewall, names.ssh_firewall):
        if find_firewall(c, names, name) is not None:
            op = c.firewalls.delete_unary(project=c.project, firewall=name)
            wait(c, op, timeout=timeout, what=f"deleting firewall rule {name}")
            removed.append(name)
    return removed


# -- Cloud Router and NAT ---------------------------------------------------------------------------


def find_router(c: GcpClients, names: GcpNames) -> Any | None:
    router = get_or_none(lambda: c.routers.get(project=c.project, region=c.region, router=names.router))
    return router if router is not None and names.owns(router.description) else None


def _nat(names: GcpNames, private: Subnet) -> Any:
    from google.cloud import compute_v1

    return compute_v1.RouterNat(
        name=names.nat,
        nat_ip_allocate_option="AUTO_ONLY",
        source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
        subnetworks=[
            compute_v1.RouterNatSubnetworkToNat(name=private.link, source_ip_ranges_to_nat=["ALL_IP_RANGES"])
        ],
    )


def has_nat(router: Any, names: GcpNames) -> bool:
    return router is not None and any(n.name == names.nat for n in router.nats)


def ensure_router_nat(c: GcpClients, names: GcpNames, net: Network, private: Subnet, timeout: float) -> None:
    """A Cloud Router with a NAT for the private subnetwork only (the head's subnet has its own IP)."""
    from google.cloud import compute_v1

    router = find_router(c, names)
    if router is None:
        body = compute_v1.Router(
            name=names.router,
            description=names.description(N.ROUTER),
            network=net.link,
            nats=[_nat(names, private)],
        )
        op = c.routers.insert_unary(project=c.project, region=c.region, router_resource=body)
    elif not has_nat(router, names):
        patch = compute_v1.Router(nats=[*router.nats, _nat(names, private)])
        op = c.routers.patch_unary(
            project=c.project, region=c.region, router=names.router, router_resource=patch
        )
    else:
        return
    wait(c, op, timeout=timeout, what=f"creating Cloud NAT {names.nat}")


def delete_router(c: GcpClients, names: GcpNames, timeout: float) -> list[str]:
    if find_router(c, names) is None:
        return []
    op = c.routers.delete_unary(project=c.project, region=c.region, router=names.router)
    wait(c, op, timeout=timeout, what=f"deleting router {names.router}")
    return [f"{names.router} (with {names.nat})"]


# -- peering ----------------------------------------------------------------------------------------


def peerings_of(c: GcpClients, network: str) -> dict[str, str]:
    """peering name -> peer network link, on `network`."""
    net = get_or_none(lambda: c.networks.get(project=c.project, network=network))
    return {p.name: p.network for p in net.peerings} if net is not None else {}


def ensure_peering(c: GcpClients, names: GcpNames, ours: Network, peer: Network, timeout: float) -> None:
    """Peer both ways (GCP activates a peering only when both sides have one)."""
    from google.cloud import compute_v1

    for local, remote in ((ours, peer), (peer, ours)):
        existing = peerings_of(c, local.name).get(names.peering)
        if existing is not None:
            if existing.rsplit("/", 1)[-1] != remote.name:
                raise ProviderError(f"gcp: {local.name} is peered with {existing}, not {remote.name}")
            continue
        body = compute_v1.NetworksAddPeeringRequest(
            network_peering=compute_v1.NetworkPeering(
                name=names.peering, network=remote.link, exchange_subnet_routes=True
            )
        )
        op = c.networks.add_peering_unary(
            project=c.project, network=local.name, networks_add_peering_request_resource=body
        )
        wait(c, op, timeout=timeout, what=f"peering {local.name} with {remote.name}")


def delete_peering(c: GcpClients, names: GcpNames, peer_name: str | None, timeout: float) -> list[str]:
    """Remove our named peering from our network and from the peer (found from our side if not given)."""
    from google.cloud import compute_v1

    ours = peerings_of(c, names.network)
    peer = peer_name or (ours[names.peering].rsplit("/", 1)[-1] if names.peering in ours else None)
    removed = []
    for network in (names.network, peer):
        if network and names.peering in peerings_of(c, network):
            body = compute_v1.NetworksRemovePeeringRequest(name=names.peering)
            op = c.networks.remove_peering_unary(
                project=c.project, network=network, networks_remove_peering_request_resource=body
            )
            wait(c, op, timeout=timeout, what=f"removing peering {names.peering} from {network}")
            removed.append(f"{names.peering} on {network}")
    return removed
