"""NAT gateway (with its elastic IP) and the S3 gateway endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from ...errors import ProviderError
from . import naming as N
from .naming import WorkspaceNames
from .network import DEPENDENCY_CODES
from .polling import poll, retry_while

_LIVE_NAT = ["pending", "available"]


def find_eips(ec2: Any, names: WorkspaceNames) -> list[Any]:
    found = names.mine(ec2.describe_addresses(Filters=names.filters(N.NAT_EIP))["Addresses"], N.NAT_EIP)
    return sorted(found, key=lambda a: a["AllocationId"])


def find_eip(ec2: Any, names: WorkspaceNames) -> Any | None:
    addresses = find_eips(ec2, names)
    return addresses[0] if addresses else None


def ensure_eip(ec2: Any, names: WorkspaceNames) -> str:
    found = find_eip(ec2, names)
    if found is not None:
        return str(found["AllocationId"])
    spec = names.tag_spec("elastic-ip", N.NAT_EIP)
    return str(ec2.allocate_address(Domain="vpc", TagSpecifications=spec)["AllocationId"])


def release_eips(ec2: Any, names: WorkspaceNames, timeout: float) -> list[str]:
    removed = []
    for found in find_eips(ec2, names):
        alloc = str(found["AllocationId"])
        retry_while(
            DEPENDENCY_CODES,
            partial(ec2.release_address, AllocationId=alloc),
            timeout=timeout,
            what=f"releasing {alloc}",
        )
        removed.append(alloc)
    return removed


def find_nats(ec2: Any, names: WorkspaceNames) -> list[Any]:
    filters = [*names.filters(N.NAT_GATEWAY), {"Name": "state", "Values": _LIVE_NAT}]
    found = names.mine(ec2.describe_nat_gateways(Filters=filters)["NatGateways"], N.NAT_GATEWAY)
    return sorted((n for n in found if n["State"] in _LIVE_NAT), key=lambda n: n["NatGatewayId"])


def find_nat(ec2: Any, names: WorkspaceNames) -> Any | None:
    nats = find_nats(ec2, names)
    return nats[0] if nats else None


def _nat_state(ec2: Any, nat_id: str) -> str:
    return str(ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]["State"])


def ensure_nat(ec2: Any, names: WorkspaceNames, subnet_id: str, allocation_id: str, timeout: float) -> str:
    """A NAT gateway in the public subnet, waited for until available (minutes on AWS)."""
    found = find_nat(ec2, names)
    if found is None:
        found = ec2.create_nat_gateway(
            SubnetId=subnet_id,
            AllocationId=allocation_id,
            TagSpecifications=names.tag_spec("natgateway", N.NAT_GATEWAY),
        )["NatGateway"]
    nat_id = str(found["NatGatewayId"])

    def available() -> bool:
        state = _nat_state(ec2, nat_id)
        if state == "failed":
            raise ProviderError(f"aws: NAT gateway {nat_id} failed to start; re-run to create a new one")
        return state == "available"

    poll(available, timeout=timeout, what=f"NAT gateway {nat_id} to become available")
    return nat_id


def delete_nats(ec2: Any, names: WorkspaceNames, timeout: float) -> list[str]:
    """Delete the NATs and wait until they are gone: their elastic IPs can be released only then."""
    removed = [str(n["NatGatewayId"]) for n in find_nats(ec2, names)]
    for nat_id in removed:
        ec2.delete_nat_gateway(NatGatewayId=nat_id)
    for nat_id in removed:
        poll(
            partial(lambda nat: _nat_state(ec2, nat) == "deleted", nat_id),
            timeout=timeout,
            what=f"NAT gateway {nat_id} to be deleted",
        )
    return removed


def find_s3_endpoints(ec2: Any, names: WorkspaceNames) -> list[Any]:
    endpoints = names.mine(
        ec2.describe_vpc_endpoints(Filters=names.filters(N.S3_ENDPOINT))["VpcEndpoints"], N.S3_ENDPOINT
    )
    live = [e for e in endpoints if e.get("State", "").lower() not in ("deleted", "deleting", "failed")]
    return sorted(live, key=lambda e: e["VpcEndpointId"])


def find_s3_endpoint(ec2: Any, names: WorkspaceNames) -> Any | None:
    live = find_s3_endpoints(ec2, names)
    return live[0] if live else None


def ensure_s3_endpoint(
    ec2: Any, names: WorkspaceNames, region: str, vpc_id: str, route_tables: Sequence[str]
) -> str:
    """S3 traffic stays inside AWS (and off the NAT's bill) through a gateway endpoint on our route tables."""
    found = find_s3_endpoint(ec2, names)
    if found is None:
        found = ec2.create_vpc_endpoint(
            VpcId=vpc_id,
            ServiceName=f"com.amazonaws.{region}.s3",
            VpcEndpointType="Gateway",
            RouteTableIds=list(route_tables),
            TagSpecifications=names.tag_spec("vpc-endpoint", N.S3_ENDPOINT),
        )["VpcEndpoint"]
    missing = sorted(set(route_tables) - set(found.get("RouteTableIds", [])))
    if missing:
        ec2.modify_vpc_endpoint(VpcEndpointId=found["VpcEndpointId"], AddRouteTableIds=missing)
    return str(found["VpcEndpointId"])


def delete_s3_endpoints(ec2: Any, names: WorkspaceNames) -> list[str]:
    removed = [str(e["VpcEndpointId"]) for e in find_s3_endpoints(ec2, names)]
    if removed:
        ec2.delete_vpc_endpoints(VpcEndpointIds=removed)
    return removed
