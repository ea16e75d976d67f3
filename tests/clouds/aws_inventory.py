"""Leak checker: every resource of every type a workspace creates, region-wide and by workspace tag."""

from __future__ import annotations

from typing import Any

from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.aws.clients import AwsClients
from cloudtik_jupyter.providers.aws.naming import tag_dict

Inventory = dict[str, set[str]]
_GONE = {"deleted", "deleting", "failed", "rejected", "expired", "terminated", "shutting-down"}


def _ec2(ec2: Any, workspace: str | None) -> Inventory:
    def live(items: list[Any], key: str, state: str | None = None) -> set[str]:
        out = set()
        for item in items:
            value = item.get(state) if state else None
            if isinstance(value, dict):
                value = value.get("Name") or value.get("Code")  # instance State vs peering Status
            if str(value or "").lower() not in _GONE:
                out.add(item[key])
        return out

    if workspace is not None:  # moto ignores some tag filters (NAT gateways): check the tags here too
        live_all = live

        def live(items: list[Any], key: str, state: str | None = None) -> set[str]:
            return live_all([i for i in items if _tagged(i.get("Tags"), workspace)], key, state)

    filters = [{"Name": f"tag:{T.WORKSPACE}", "Values": [workspace]}] if workspace else []
    kw: dict[str, Any] = {"Filters": filters} if filters else {}
    instances = [i for r in ec2.describe_instances(**kw)["Reservations"] for i in r["Instances"]]
    return {
        "vpcs": live(ec2.describe_vpcs(**kw)["Vpcs"], "VpcId"),
        "subnets": live(ec2.describe_subnets(**kw)["Subnets"], "SubnetId"),
        "internet_gateways": live(
            ec2.describe_internet_gateways(**kw)["InternetGateways"], "InternetGatewayId"
        ),
        "nat_gateways": live(ec2.describe_nat_gateways(**kw)["NatGateways"], "NatGatewayId", "State"),
        "elastic_ips": live(ec2.describe_addresses(**kw)["Addresses"], "AllocationId"),
        "route_tables": live(ec2.describe_route_tables(**kw)["RouteTables"], "RouteTableId"),
        "security_groups": live(ec2.describe_security_groups(**kw)["SecurityGroups"], "GroupId"),
        "vpc_endpoints": live(ec2.describe_vpc_endpoints(**kw)["VpcEndpoints"], "VpcEndpointId", "State"),
        "peering_connections": live(
            ec2.describe_vpc_peering_connections(**kw)["VpcPeeringConnections"],
            "VpcPeeringConnectionId",
            "Status",
        ),
        "instances": live(instances, "InstanceId", "State"),
        "key_pairs": live(ec2.describe_key_pairs(**kw)["KeyPairs"], "KeyPairId"),  # a lock left behind
    }


def _tagged(tags: list[Any] | None, workspace: str | None) -> bool:
    return workspace is None or tag_dict(tags).get(T.WORKSPACE) == workspace


def _global(c: AwsClients, workspace: str | None) -> Inventory:
    roles = {
        r["RoleName"]
        for r in c.iam.list_roles()["Roles"]
        # Service-linked roles are the account's (made once by AWS or a workspace, shared, never ours).
        if not r["Path"].startswith("/aws-service-role/")
        and _tagged(c.iam.list_role_tags(RoleName=r["RoleName"])["Tags"], workspace)
    }
    profiles = {
        p["InstanceProfileName"]
        for p in c.iam.list_instance_profiles()["InstanceProfiles"]
        if _tagged(p.get("Tags") or [], workspace)
    }
    buckets = set()
    for b in c.s3.list_buckets()["Buckets"]:
        try:
            tags = c.s3.get_bucket_tagging(Bucket=b["Name"])["TagSet"]
        except Exception:
            tags = []
        if _tagged(tags, workspace):
            buckets.add(b["Name"])
    return {"roles": roles, "instance_profiles": profiles, "buckets": buckets}


def region_inventory(c: AwsClients) -> Inventory:
    """Everything in the region, whoever made it (compare before/after to find leaks)."""
    return {**_ec2(c.ec2, None), **_global(c, None)}


def workspace_inventory(c: AwsClients, workspace: str) -> Inventory:
    """Everything tagged as `workspace`'s."""
    return {**_ec2(c.ec2, workspace), **_global(c, workspace)}


def counts(inv: Inventory) -> dict[str, int]:
    return {kind: len(ids) for kind, ids in inv.items() if ids}


def leaks(before: Inventory, after: Inventory) -> Inventory:
    return {
        kind: after[kind] - before.get(kind, set()) for kind in after if after[kind] - before.get(kind, set())
    }


EXPECTED_PUBLIC = {
    "vpcs": 1,
    "subnets": 3,
    "internet_gateways": 1,
    "nat_gateways": 1,
    "elastic_ips": 1,
    "route_tables": 2,
    "security_groups": 1,
    "vpc_endpoints": 1,
    "roles": 2,
    "instance_profiles": 2,
    "buckets": 1,
}
EXPECTED_PEERING = {**EXPECTED_PUBLIC, "peering_connections": 1}
