"""VPC, internet gateway, subnets, route tables: find by tag, create what is missing, delete what we own."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from ...errors import ProviderError
from . import naming as N
from .naming import WorkspaceNames, tag_dict
from .polling import retry_while

# AWS error codes meaning "something still depends on it; try again shortly". (Not AuthFailure: it
# means the credentials are refused, which no wait fixes.)
DEPENDENCY_CODES = ("DependencyViolation", "InvalidIPAddress.InUse")


@dataclass(frozen=True)
class Vpc:
    id: str
    cidr: str
    owned: bool  # False for a shared, existing VPC: never modified beyond our own subnets, never deleted


@dataclass(frozen=True)
class Subnet:
    id: str
    role: str
    cidr: str
    zone: str


@dataclass(frozen=True)
class RouteTable:
    id: str
    role: str


def find_vpcs(ec2: Any, names: WorkspaceNames) -> list[Vpc]:
    """Every VPC tagged as the workspace's (more than one only after an out-of-band duplicate)."""
    vpcs = names.mine(ec2.describe_vpcs(Filters=names.filters(N.VPC))["Vpcs"], N.VPC)
    return [Vpc(v["VpcId"], v["CidrBlock"], owned=True) for v in sorted(vpcs, key=lambda v: v["VpcId"])]


def find_vpc(ec2: Any, names: WorkspaceNames) -> Vpc | None:
    vpcs = find_vpcs(ec2, names)
    return vpcs[0] if vpcs else None


def describe_vpc(ec2: Any, vpc_id: str) -> Vpc | None:
    """An existing VPC by id (a shared or peer VPC), or None when it does not exist."""
    from .clients import error_code, is_client_error

    try:
        vpcs = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
    except Exception as exc:
        if is_client_error(exc) and error_code(exc).startswith("InvalidVpcID"):
            return None
        raise
    if not vpcs:
        return None
    owned = tag_dict(vpcs[0].get("Tags")).get(N.RESOURCE) == N.VPC
    return Vpc(vpcs[0]["VpcId"], vpcs[0]["CidrBlock"], owned=owned)


def ensure_vpc(ec2: Any, names: WorkspaceNames, cidr: str) -> Vpc:
    vpc = find_vpc(ec2, names)
    if vpc is None:
        created = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=names.tag_spec("vpc", N.VPC))["Vpc"]
        vpc = Vpc(created["VpcId"], created["CidrBlock"], owned=True)
    elif vpc.cidr != cidr:
        raise ProviderError(
            f"workspace {names.workspace!r} already has VPC {vpc.id} with CIDR {vpc.cidr}; "
            f"networking.vpc_cidr={cidr} can't change in place (delete the workspace and create it again)"
        )
    # Instances get DNS names (idempotent, so simply re-applied on every run).
    ec2.modify_vpc_attribute(VpcId=vpc.id, EnableDnsHostnames={"Value": True})
    return vpc


def delete_vpcs(ec2: Any, names: WorkspaceNames, timeout: float) -> list[str]:
    removed = []
    for vpc in find_vpcs(ec2, names):
        retry_while(
            DEPENDENCY_CODES,
            partial(ec2.delete_vpc, VpcId=vpc.id),
            timeout=timeout,
            what=f"deleting {vpc.id}",
        )
        removed.append(vpc.id)
    return removed


# -- internet gateway ---------------------------------------------------------------------------


def attached_gateway(ec2: Any, vpc_id: str) -> str | None:
    gws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])
    attached = [
        g for g in gws["InternetGateways"] if any(a["VpcId"] == vpc_id for a in g.get("Attachments", []))
    ]
    return str(attached[0]["InternetGatewayId"]) if attached else None


def ensure_internet_gateway(ec2: Any, names: WorkspaceNames, vpc: Vpc) -> str:
    """Our tagged gateway attached to the VPC; in a shared VPC, the gateway it already has."""
    existing = attached_gateway(ec2, vpc.id)
    if existing:
        return existing
    gws = find_owned_gateways(ec2, names)
    if gws:
        gw_id = str(gws[0]["InternetGatewayId"])
    else:
        spec = names.tag_spec("internet-gateway", N.INTERNET_GATEWAY)
        gw_id = ec2.create_internet_gateway(TagSpecifications=spec)["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=gw_id, VpcId=vpc.id)
    return gw_id


def find_owned_gateways(ec2: Any, names: WorkspaceNames) -> list[Any]:
    found = ec2.describe_internet_gateways(Filters=names.filters(N.INTERNET_GATEWAY))["InternetGateways"]
    return names.mine(found, N.INTERNET_GATEWAY)


def delete_internet_gateways(ec2: Any, names: WorkspaceNames, timeout: float) -> list[str]:
    removed = []
    for gw in find_owned_gateways(ec2, names):
        gw_id = gw["InternetGatewayId"]
        for att in gw.get("Attachments", []):
            # Detaching fails while public addresses are mapped in the VPC (they go with the NAT/instances).
            retry_while(
                DEPENDENCY_CODES,
                partial(ec2.detach_internet_gateway, InternetGatewayId=gw_id, VpcId=att["VpcId"]),
                timeout=timeout,
                what=f"detaching {gw_id}",
            )
        ec2.delete_internet_gateway(InternetGatewayId=gw_id)
        removed.append(str(gw_id))
    return removed


# -- subnets ------------------------------------------------------------------------------------


_SUBNET_ROLES = (N.PUBLIC_SUBNET, *N.PRIVATE_SUBNETS)


def all_subnets(ec2: Any, names: WorkspaceNames) -> list[Subnet]:
    """Every subnet tagged as one of the workspace's, duplicates included."""
    found = []
    for s in names.mine(ec2.describe_subnets(Filters=names.filters())["Subnets"]):
        role = tag_dict(s.get("Tags")).get(N.RESOURCE, "")
        if role in _SUBNET_ROLES:
            found.append(Subnet(s["SubnetId"], role, s["CidrBlock"], s["AvailabilityZone"]))
    return sorted(found, key=lambda s: s.id)


def find_subnets(ec2: Any, names: WorkspaceNames) -> dict[str, Subnet]:
    """One subnet per role (the first by id, if a role was ever duplicated)."""
    found: dict[str, Subnet] = {}
    for subnet in all_subnets(ec2, names):
        found.setdefault(subnet.role, subnet)
    return found


def _free_block(vpc_cidr: str, taken: Sequence[str]) -> str:
    """The first /24 of the VPC not overlapping any existing subnet (matters in a shared VPC)."""
    used = [ipaddress.ip_network(c) for c in taken]
    for block in ipaddress.ip_network(vpc_cidr).subnets(new_prefix=24):
        if not any(block.overlaps(u) for u in used):
            return str(block)
    raise ProviderError(f"no free /24 left in VPC CIDR {vpc_cidr} for the workspace's subnets")


def ensure_subnets(ec2: Any, names: WorkspaceNames, vpc: Vpc, zones: Sequence[str]) -> dict[str, Subnet]:
    """One public subnet and two private ones, the private ones across the first two zones."""
    found = find_subnets(ec2, names)
    wanted = {N.PUBLIC_SUBNET: zones[0], N.PRIVATE_SUBNETS[0]: zones[0], N.PRIVATE_SUBNETS[1]: zones[-1]}
    for role, zone in wanted.items():
        if role in found:
            continue
        taken = [
            s["CidrBlock"]
            for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc.id]}])["Subnets"]
            if s["VpcId"] == vpc.id
        ]
        created = ec2.create_subnet(
            VpcId=vpc.id,
            CidrBlock=_free_block(vpc.cidr, taken),
            AvailabilityZone=zone,
            TagSpecifications=names.tag_spec("subnet", role),
        )["Subnet"]
        found[role] = Subnet(created["SubnetId"], role, created["CidrBlock"], zone)
    return found


def delete_subnets(ec2: Any, names: WorkspaceNames, timeout: float) -> list[str]:
    removed = []
    for subnet in all_subnets(ec2, names):
        # Network interfaces of just-terminated instances linger briefly.
        retry_while(
            DEPENDENCY_CODES,
            partial(ec2.delete_subnet, SubnetId=subnet.id),
            timeout=timeout,
            what=f"deleting {subnet.id}",
        )
        removed.append(subnet.id)
    return removed


# -- route tables -------------------------------------------------------------------------------


def route_tables_of(ec2: Any, names: WorkspaceNames, role: str) -> list[Any]:
    """Every route table tagged with `role`, duplicates included."""
    tables = names.mine(ec2.describe_route_tables(Filters=names.filters(role))["RouteTables"], role)
    return sorted(tables, key=lambda t: t["RouteTableId"])


def find_route_tables(ec2: Any, names: WorkspaceNames) -> dict[str, Any]:
    tables = names.mine(ec2.describe_route_tables(Filters=names.filters())["RouteTables"])
    found: dict[str, Any] = {}
    for t in sorted(tables, key=lambda t: t["RouteTableId"]):
        found.setdefault(tag_dict(t.get("Tags")).get(N.RESOURCE, ""), t)
    return found


def ensure_route_table(ec2: Any, names: WorkspaceNames, vpc: Vpc, role: str) -> RouteTable:
    table = find_route_tables(ec2, names).get(role)
    if table is None:
        table = ec2.create_route_table(VpcId=vpc.id, TagSpecifications=names.tag_spec("route-table", role))[
            "RouteTable"
        ]
    return RouteTable(table["RouteTableId"], role)


def ensure_route(ec2: Any, table_id: str, destination: str, **target: str) -> None:
    """`destination` routed to `target` (GatewayId=, NatGatewayId= or VpcPeeringConnectionId=)."""
    ((key, value),) = target.items()
    routes = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]["Routes"]
    current = next((r for r in routes if r.get("DestinationCidrBlock") == destination), None)
    if current is None:
        ec2.create_route(RouteTableId=table_id, DestinationCidrBlock=destination, **target)
    elif current.get(key) != value or current.get("State") == "blackhole":
        ec2.replace_route(RouteTableId=table_id, DestinationCidrBlock=destination, **target)


def ensure_associations(ec2: Any, table_id: str, subnet_ids: Sequence[str]) -> None:
    for subnet_id in subnet_ids:
        tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])
        assoc = next(
            (a for t in tables["RouteTables"] for a in t["Associations"] if a.get("SubnetId") == subnet_id),
            None,
        )
        if assoc is None:
            ec2.associate_route_table(RouteTableId=table_id, SubnetId=subnet_id)
        elif assoc["RouteTableId"] != table_id:
            ec2.replace_route_table_association(
                AssociationId=assoc["RouteTableAssociationId"], RouteTableId=table_id
            )


def delete_route_tables(ec2: Any, names: WorkspaceNames, role: str) -> list[str]:
    removed = []
    for table in route_tables_of(ec2, names, role):
        for assoc in table.get("Associations", []):
            if not assoc.get("Main"):
                ec2.disassociate_route_table(AssociationId=assoc["RouteTableAssociationId"])
        ec2.delete_route_table(RouteTableId=table["RouteTableId"])
        removed.append(str(table["RouteTableId"]))
    return removed


def routes_of(ec2: Any, table_id: str) -> dict[str, str]:
    """destination -> target id, for status and tests."""
    routes = ec2.describe_route_tables(RouteTableIds=[table_id])["RouteTables"][0]["Routes"]
    out: dict[str, str] = {}
    for r in routes:
        dest = r.get("DestinationCidrBlock") or r.get("DestinationPrefixListId", "")
        target = r.get("GatewayId") or r.get("NatGatewayId") or r.get("VpcPeeringConnectionId") or ""
        out[dest] = target
    return out
