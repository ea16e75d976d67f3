"""VPC peering with the user's VPC (same account and region), with routes on both sides."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import ProviderError
from . import naming as N
from .naming import WorkspaceNames
from .network import Vpc, ensure_route
from .polling import poll

_LIVE = ["initiating-request", "pending-acceptance", "provisioning", "active"]


def find_peering(ec2: Any, names: WorkspaceNames) -> Any | None:
    filters = [*names.filters(N.PEERING), {"Name": "status-code", "Values": _LIVE}]
    found = names.mine(
        ec2.describe_vpc_peering_connections(Filters=filters)["VpcPeeringConnections"], N.PEERING
    )
    live = [c for c in found if c["Status"]["Code"] in _LIVE]  # not every API honours the status filter
    return live[0] if live else None


def _status(ec2: Any, pcx_id: str) -> str:
    conns = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx_id])["VpcPeeringConnections"]
    return str(conns[0]["Status"]["Code"])


def _vpc_tables(ec2: Any, vpc_id: str) -> list[Any]:
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    return [t for t in tables if t["VpcId"] == vpc_id]


def peer_route_tables(ec2: Any, peer_vpc_id: str) -> list[str]:
    return [t["RouteTableId"] for t in _vpc_tables(ec2, peer_vpc_id)]


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
    for table in peer_route_tables(ec2, peer.id):
        ensure_route(ec2, table, vpc.cidr, VpcPeeringConnectionId=pcx_id)
    return pcx_id


def delete_peering(ec2: Any, names: WorkspaceNames, timeout: float) -> None:
    """Remove only our routes from the peer's tables (matched by connection id), then the peering."""
    found = find_peering(ec2, names)
    if found is None:
        return
    pcx_id = found["VpcPeeringConnectionId"]
    peer_id = found.get("AccepterVpcInfo", {}).get("VpcId")
    if peer_id:
        for table in _vpc_tables(ec2, peer_id):
            for route in table["Routes"]:
                if route.get("VpcPeeringConnectionId") == pcx_id and route.get("DestinationCidrBlock"):
                    ec2.delete_route(
                        RouteTableId=table["RouteTableId"], DestinationCidrBlock=route["DestinationCidrBlock"]
                    )
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx_id)
    poll(lambda: _status(ec2, pcx_id) == "deleted", timeout=timeout, what=f"peering {pcx_id} to be deleted")
