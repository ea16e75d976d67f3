"""VPC peering with the user's VPC (same account and region), with routes on both sides.

The client's VPC is not the workspace's: `create` refuses (before anything is made) when one of its
route tables already routes the workspace's block somewhere else, adds only new routes to the peering,
and records on the peering connection which tables it added them to; `delete` removes exactly those
routes, which leaves the client's tables as they were.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import partial
from typing import Any

from ...errors import ProviderError
from . import naming as N
from .naming import WorkspaceNames, tag_dict
from .network import Vpc, ensure_route
from .polling import poll

_LIVE = ["initiating-request", "pending-acceptance", "provisioning", "active"]
ROUTES_TAG = "cloudtik-peer-routes"  # + "-N": the client's route tables we added a route to
_PER_TAG = 10  # route table ids per tag value (values are limited to 256 characters)


def _all(ec2: Any, names: WorkspaceNames, live: bool) -> list[Any]:
    filters = names.filters(N.PEERING)
    if live:
        filters = [*filters, {"Name": "status-code", "Values": _LIVE}]
    found = names.mine(
        ec2.describe_vpc_peering_connections(Filters=filters)["VpcPeeringConnections"], N.PEERING
    )
    if live:  # not every API honours the status filter
        found = [c for c in found if c["Status"]["Code"] in _LIVE]
    return sorted(found, key=lambda c: c["VpcPeeringConnectionId"])


def find_peerings(ec2: Any, names: WorkspaceNames) -> list[Any]:
    return _all(ec2, names, live=True)


def find_peering(ec2: Any, names: WorkspaceNames) -> Any | None:
    live = find_peerings(ec2, names)
    return live[0] if live else None


def _status(ec2: Any, pcx_id: str) -> str:
    conns = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx_id])["VpcPeeringConnections"]
    return str(conns[0]["Status"]["Code"])


def _vpc_tables(ec2: Any, vpc_id: str) -> list[Any]:
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    return [t for t in tables if t["VpcId"] == vpc_id]


def peer_route_tables(ec2: Any, peer_vpc_id: str) -> list[str]:
    return [t["RouteTableId"] for t in _vpc_tables(ec2, peer_vpc_id)]


def _target(route: Any) -> str:
    for key in ("VpcPeeringConnectionId", "GatewayId", "NatGatewayId", "TransitGatewayId", "InstanceId"):
        if route.get(key):
            return str(route[key])
    return str(route.get("NetworkInterfaceId") or "?")


def foreign_routes(ec2: Any, names: WorkspaceNames, peer_vpc_id: str, cidr: str) -> list[str]:
    """Routes of the client's VPC that already send (part of) `cidr` somewhere that is not one of the
    workspace's peerings: adding ours would hijack them. The default route (0.0.0.0/0) is not one."""
    ours = {c["VpcPeeringConnectionId"] for c in _all(ec2, names, live=False)}
    block = ipaddress.ip_network(cidr)
    found = []
    for table in _vpc_tables(ec2, peer_vpc_id):
        for route in table["Routes"]:
            dest = route.get("DestinationCidrBlock")
            if not dest or ipaddress.ip_network(dest).prefixlen == 0 or route.get("GatewayId") == "local":
                continue
            if ipaddress.ip_network(dest).overlaps(block) and route.get("VpcPeeringConnectionId") not in ours:
                found.append(f"{table['RouteTableId']}: {dest} -> {_target(route)}")
    return found


def recorded_tables(pcx: Any) -> list[str]:
    tags = tag_dict(pcx.get("Tags"))
    return sorted({t for k, v in tags.items() if k.startswith(ROUTES_TAG) for t in v.split()})


def _record(ec2: Any, pcx_id: str, tables: Sequence[str]) -> None:
    ids = sorted(set(tables))
    chunks = [ids[i : i + _PER_TAG] for i in range(0, len(ids), _PER_TAG)]
    ec2.create_tags(
        Resources=[pcx_id],
        Tags=[{"Key": f"{ROUTES_TAG}-{i}", "Value": " ".join(chunk)} for i, chunk in enumerate(chunks)],
    )


def _add_peer_route(ec2: Any, names: WorkspaceNames, table: Any, cidr: str, pcx_id: str) -> None:
    """Our route in a table of the client's VPC: only ever new, or one of our own peerings' routes."""
    ours = {c["VpcPeeringConnectionId"] for c in _all(ec2, names, live=False)}
    current = next((r for r in table["Routes"] if r.get("DestinationCidrBlock") == cidr), None)
    if current is None:
        ec2.create_route(
            RouteTableId=table["RouteTableId"], DestinationCidrBlock=cidr, VpcPeeringConnectionId=pcx_id
        )
    elif current.get("VpcPeeringConnectionId") == pcx_id:
        return
    elif current.get("VpcPeeringConnectionId") in ours:  # one of ours from before: re-pointed, still ours
        ec2.replace_route(
            RouteTableId=table["RouteTableId"], DestinationCidrBlock=cidr, VpcPeeringConnectionId=pcx_id
        )
    else:
        raise ProviderError(
            f"aws: route table {table['RouteTableId']} of the peer VPC now routes {cidr} to "
            f"{_target(current)}; cloudtik does not replace routes it does not own"
        )


def ensure_peering(
    ec2: Any, names: WorkspaceNames, vpc: Vpc, peer: Vpc, our_tables: Sequence[str], timeout: float
) -> str:
    """Request, accept, then route: our tables -> peer CIDR, every peer table -> our CIDR."""
    found = find_peering(ec2, names)
    if found is None:
        found = ec2.create_vpc_peering_connection(
            VpcId=vpc.id,
            PeerVpcId=peer.id,
            TagSpecifications=names.tag_spec("vpc-peering-connection", N.PEERING),
        )["VpcPeeringConnection"]
    pcx_id = str(found["VpcPeeringConnectionId"])
    accepter = found.get("AccepterVpcInfo", {}).get("VpcId")
    if accepter and accepter != peer.id:
        raise ProviderError(
            f"workspace {names.workspace!r} is peered with {accepter}, not {peer.id}; delete and re-create it"
        )
    # The request turns to pending-acceptance asynchronously on AWS.
    status = poll(
        lambda: (s := _status(ec2, pcx_id)) != "initiating-request" and s,
        timeout=timeout,
        what=f"peering {pcx_id} to be requested",
    )
    if status == "pending-acceptance":
        ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx_id)
    poll(lambda: _status(ec2, pcx_id) == "active", timeout=timeout, what=f"peering {pcx_id} to become active")
    for table in our_tables:
        ensure_route(ec2, table, peer.cidr, VpcPeeringConnectionId=pcx_id)
    tables = _vpc_tables(ec2, peer.id)
    # Recorded before the routes exist: a route whose answer is lost is still found and removed.
    _record(ec2, pcx_id, [*recorded_tables(found), *(t["RouteTableId"] for t in tables)])
    for table in tables:
        _add_peer_route(ec2, names, table, vpc.cidr, pcx_id)
    return pcx_id


def delete_peerings(ec2: Any, names: WorkspaceNames, timeout: float) -> list[str]:
    """Remove our routes from the client's tables (those recorded, pointing at our peering), then the
    peerings; the client's tables are left as they were before `create`."""
    removed = []
    for found in find_peerings(ec2, names):
        pcx_id = str(found["VpcPeeringConnectionId"])
        peer_id = found.get("AccepterVpcInfo", {}).get("VpcId")
        for table in _vpc_tables(ec2, peer_id) if peer_id else []:
            for route in table["Routes"]:
                dest = route.get("DestinationCidrBlock")
                if dest and route.get("VpcPeeringConnectionId") == pcx_id:  # only ours point there
                    ec2.delete_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock=dest)
                    removed.append(f"route {dest} in {table['RouteTableId']}")
        ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx_id)
        poll(
            partial(lambda pcx: _status(ec2, pcx) == "deleted", pcx_id),
            timeout=timeout,
            what=f"peering {pcx_id} to be deleted",
        )
        removed.append(pcx_id)
    return removed
