"""Per-resource status of an AWS workspace: present or missing, with the id or state as detail.

The lookups are independent, so they run concurrently (boto3 clients are thread-safe): `status` costs
about one round trip per kind of resource on AWS, not the sum of all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..base import ResourceStatus
from . import gateways, identity, network, peering, storage
from . import naming as N
from .firewall import find_security_group
from .naming import WorkspaceNames, tag_dict

if TYPE_CHECKING:
    from .workspace import AwsWorkspaceProvider

Check = Callable[[], list[ResourceStatus]]


def _of(name: str, kind: str, found: str | None, detail: str = "") -> ResourceStatus:
    return ResourceStatus(name, kind, bool(found), detail or (found or ""))


def _vpc_and_gateway(ec2: Any, names: WorkspaceNames, shared_id: str | None) -> list[ResourceStatus]:
    vpc = network.find_vpc(ec2, names)
    if vpc is None and shared_id:
        vpc = network.describe_vpc(ec2, shared_id)
    gw = next((g["InternetGatewayId"] for g in network.find_owned_gateways(ec2, names)), None)
    shared_gw = network.attached_gateway(ec2, vpc.id) if vpc and not gw else None
    return [
        _of(N.VPC, "vpc", vpc.id if vpc else None, f"{vpc.id} (shared)" if vpc and not vpc.owned else ""),
        _of(
            N.INTERNET_GATEWAY,
            "internet-gateway",
            gw or shared_gw,
            f"{shared_gw} (shared)" if shared_gw else "",
        ),
    ]


def _subnets(ec2: Any, names: WorkspaceNames) -> list[ResourceStatus]:
    subnets = network.find_subnets(ec2, names)
    out = []
    for role in (N.PUBLIC_SUBNET, *N.PRIVATE_SUBNETS):
        s = subnets.get(role)
        out.append(_of(role, "subnet", s.id if s else None, f"{s.id} {s.cidr} {s.zone}" if s else ""))
    return out


def _route_tables(ec2: Any, names: WorkspaceNames) -> list[ResourceStatus]:
    tables = network.find_route_tables(ec2, names)
    return [
        _of(role, "route-table", (tables.get(role) or {}).get("RouteTableId"))
        for role in (N.PUBLIC_ROUTE_TABLE, N.PRIVATE_ROUTE_TABLE)
    ]


def _nat(ec2: Any, names: WorkspaceNames) -> list[ResourceStatus]:
    eip = gateways.find_eip(ec2, names)
    nat = gateways.find_nat(ec2, names)
    ready = nat is not None and nat["State"] == "available"
    return [
        _of(
            N.NAT_EIP,
            "elastic-ip",
            eip["AllocationId"] if eip else None,
            eip.get("PublicIp", "") if eip else "",
        ),
        ResourceStatus(
            N.NAT_GATEWAY, "nat-gateway", ready, f"{nat['NatGatewayId']} {nat['State']}" if nat else ""
        ),
    ]


def _endpoint(ec2: Any, names: WorkspaceNames) -> list[ResourceStatus]:
    endpoint = gateways.find_s3_endpoint(ec2, names)
    return [_of(N.S3_ENDPOINT, "vpc-endpoint", endpoint["VpcEndpointId"] if endpoint else None)]


def _peering(ec2: Any, names: WorkspaceNames) -> list[ResourceStatus]:
    pcx = peering.find_peering(ec2, names)
    pcx_id = pcx["VpcPeeringConnectionId"] if pcx else None
    return [
        _of(N.PEERING, "vpc-peering-connection", pcx_id, f"{pcx_id} {pcx['Status']['Code']}" if pcx else "")
    ]


def _role(iam: Any, name: str, tag: str) -> list[ResourceStatus]:
    return [_of(tag, "iam-role", name if identity.get_role(iam, name) else None)]


def _profile(iam: Any, name: str, tag: str) -> list[ResourceStatus]:
    return [_of(tag, "instance-profile", name if identity.get_profile(iam, name) else None)]


def _bucket(ws: AwsWorkspaceProvider) -> list[ResourceStatus]:
    bucket = ws.bucket
    return [_of(N.BUCKET, "s3-bucket", bucket if storage.bucket_exists(ws.clients.s3, bucket) else None)]


def workspace_status(ws: AwsWorkspaceProvider) -> list[ResourceStatus]:
    ec2, iam, names = ws.clients.ec2, ws.clients.iam, ws.names
    group = find_security_group(ec2, names)  # also says the mode when there is no config at hand
    mode = tag_dict(group.get("Tags")).get(N.NETWORKING, "") if group else ""
    shared_id = group.get("VpcId") if group else None
    if ws.config is not None:
        mode = ws.config.networking.mode
        shared_id = ws.config.networking.vpc_id or shared_id
    sg = [_of(N.SECURITY_GROUP, "security-group", group["GroupId"] if group else None)]
    checks: list[Check] = [
        lambda: _vpc_and_gateway(ec2, names, shared_id if mode == "shared-vpc" else None),
        lambda: _subnets(ec2, names),
        lambda: _route_tables(ec2, names),
        lambda: _nat(ec2, names),
        lambda: _endpoint(ec2, names),
        lambda: sg,
        *([lambda: _peering(ec2, names)] if mode == "peering" else []),
        lambda: _role(iam, names.head_role, N.HEAD_ROLE),
        lambda: _role(iam, names.worker_role, N.WORKER_ROLE),
        lambda: _profile(iam, names.head_profile, N.HEAD_PROFILE),
        lambda: _profile(iam, names.worker_profile, N.WORKER_PROFILE),
        lambda: _bucket(ws),
    ]
    with ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="aws-status") as pool:
        results = [pool.submit(check) for check in checks]
        return [status for result in results for status in result.result()]
