"""AWS workspace lifecycle against moto: create -> status -> delete leaves nothing; idempotence; refusals."""

from __future__ import annotations

import warnings

import pytest
from aws_inventory import EXPECTED_PUBLIC, counts, leaks, region_inventory, workspace_inventory
from conftest import USER_CIDR, MotoAws

from cloudtik_jupyter.config.schema import AwsProviderConfig
from cloudtik_jupyter.config.workspace import OpenSshIngressWarning
from cloudtik_jupyter.errors import ConfigError, ProviderError
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.aws import naming as N
from cloudtik_jupyter.providers.aws.firewall import Rule, current_rules
from cloudtik_jupyter.providers.aws.naming import tag_dict
from cloudtik_jupyter.providers.aws.network import routes_of
from cloudtik_jupyter.providers.aws.node_provider import AwsNodeProvider
from cloudtik_jupyter.providers.base import NodeSpec


def _group(ec2: object, ws: str) -> dict:
    return ec2.describe_security_groups(Filters=WS(ws))["SecurityGroups"][0]  # type: ignore[attr-defined]


def WS(ws: str) -> list[dict]:
    return [{"Name": f"tag:{T.WORKSPACE}", "Values": [ws]}]


def test_create_status_delete_leaves_nothing(aws: MotoAws) -> None:
    c = aws.clients()
    before = region_inventory(c)
    ws = aws.workspace("analytics", clients=c)

    ws.create()

    assert counts(workspace_inventory(c, "analytics")) == EXPECTED_PUBLIC
    status = ws.status()
    assert [r.name for r in status if not r.present] == []
    assert {r.name for r in status} >= {N.VPC, N.NAT_GATEWAY, N.SECURITY_GROUP, N.BUCKET, N.HEAD_PROFILE}
    assert ws.info()["networking"] == "public"

    ws.delete()

    assert {k: v for k, v in workspace_inventory(c, "analytics").items() if v} == {}
    assert leaks(before, region_inventory(c)) == {}
    assert not any(r.present for r in ws.status())


def test_every_resource_is_tagged_and_topology_is_default(aws: MotoAws) -> None:
    c = aws.clients()
    ws = aws.workspace("ws", clients=c)
    ws.create()
    ec2 = c.ec2

    vpc = ec2.describe_vpcs(Filters=WS("ws"))["Vpcs"][0]
    assert vpc["CidrBlock"] == "10.0.0.0/16"
    subnets = {tag_dict(s["Tags"])[N.RESOURCE]: s for s in ec2.describe_subnets(Filters=WS("ws"))["Subnets"]}
    assert sorted(subnets) == sorted([N.PUBLIC_SUBNET, *N.PRIVATE_SUBNETS])
    assert {s["AvailabilityZone"] for k, s in subnets.items() if k in N.PRIVATE_SUBNETS} == {
        "us-east-1a",
        "us-east-1b",
    }
    assert all(s["CidrBlock"].endswith("/24") for s in subnets.values())

    tables = {
        tag_dict(t["Tags"])[N.RESOURCE]: t for t in ec2.describe_route_tables(Filters=WS("ws"))["RouteTables"]
    }
    igw = ec2.describe_internet_gateways(Filters=WS("ws"))["InternetGateways"][0]["InternetGatewayId"]
    nat = ec2.describe_nat_gateways(Filters=WS("ws"))["NatGateways"][0]
    public_routes = routes_of(ec2, tables[N.PUBLIC_ROUTE_TABLE]["RouteTableId"])
    private_routes = routes_of(ec2, tables[N.PRIVATE_ROUTE_TABLE]["RouteTableId"])
    assert public_routes["0.0.0.0/0"] == igw
    assert private_routes["0.0.0.0/0"] == nat["NatGatewayId"]
    assert igw not in private_routes.values()  # private subnets have no route to the internet gateway
    assert nat["SubnetId"] == subnets[N.PUBLIC_SUBNET]["SubnetId"]
    associated = {
        a["SubnetId"]: tag_dict(t["Tags"])[N.RESOURCE]
        for t in tables.values()
        for a in t["Associations"]
        if "SubnetId" in a
    }
    assert associated == {
        subnets[N.PUBLIC_SUBNET]["SubnetId"]: N.PUBLIC_ROUTE_TABLE,
        subnets[N.PRIVATE_SUBNETS[0]]["SubnetId"]: N.PRIVATE_ROUTE_TABLE,
        subnets[N.PRIVATE_SUBNETS[1]]["SubnetId"]: N.PRIVATE_ROUTE_TABLE,
    }
    endpoint = ec2.describe_vpc_endpoints(Filters=WS("ws"))["VpcEndpoints"][0]
    assert (
        endpoint["ServiceName"] == "com.amazonaws.us-east-1.s3" and endpoint["VpcEndpointType"] == "Gateway"
    )
    assert sorted(endpoint["RouteTableIds"]) == sorted(t["RouteTableId"] for t in tables.values())

    # Firewall: SSH only from the user's CIDR; everything between members; nothing from 0.0.0.0/0.
    group = _group(ec2, "ws")
    assert current_rules(group) == {Rule("tcp", 22, 22, USER_CIDR), Rule("-1", None, None, group["GroupId"])}

    # Bucket: private, encrypted, tagged.
    bucket = ws.bucket
    block = c.s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rule = c.s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert tag_dict(c.s3.get_bucket_tagging(Bucket=bucket)["TagSet"])[T.WORKSPACE] == "ws"

    # Every EC2 resource carries the workspace tag and a role tag (that is how create resumes).
    tagged = [vpc, *subnets.values(), *tables.values(), nat, endpoint, group]
    assert all(
        tag_dict(r["Tags"]).get(T.WORKSPACE) == "ws" and N.RESOURCE in tag_dict(r["Tags"]) for r in tagged
    )
    ws.delete()


def test_create_twice_creates_nothing_more(aws: MotoAws) -> None:
    c = aws.clients()
    ws = aws.workspace("ws", clients=c)
    ws.create()
    first = workspace_inventory(c, "ws")
    ws.create()
    assert workspace_inventory(c, "ws") == first
    ws.delete()
    ws.delete()  # deleting a deleted workspace is a no-op
    assert counts(workspace_inventory(c, "ws")) == {}


def test_update_converges_ssh_rules(aws: MotoAws) -> None:
    c = aws.clients()
    aws.workspace("ws", clients=c, allowed_ssh_cidrs=["198.51.100.7/32", USER_CIDR]).create()
    cidrs = {r.source for r in current_rules(_group(c.ec2, "ws")) if r.is_cidr}
    assert cidrs == {"198.51.100.7/32", USER_CIDR}

    aws.workspace("ws", clients=c, allowed_ssh_cidrs=["198.51.100.7/32"]).create()  # `update`

    cidrs = {r.source for r in current_rules(_group(c.ec2, "ws")) if r.is_cidr}
    assert cidrs == {"198.51.100.7/32"}
    aws.workspace("ws", clients=c).delete()


def test_ssh_from_anywhere_only_when_asked_and_with_a_warning(aws: MotoAws) -> None:
    with pytest.raises(ConfigError) as err:
        aws.workspace_config("ws", allowed_ssh_cidrs=[])
    assert err.value.path == "networking.allowed_ssh_cidrs"

    with pytest.warns(OpenSshIngressWarning):
        config = aws.workspace_config("ws", allowed_ssh_cidrs=["0.0.0.0/0"])
    assert config.networking.allowed_ssh_cidrs == ["0.0.0.0/0"]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for a narrow block
        aws.workspace_config("ws", allowed_ssh_cidrs=[USER_CIDR])


def test_bad_input_creates_nothing(aws: MotoAws) -> None:
    c = aws.clients()
    before = region_inventory(c)
    with pytest.raises(ConfigError) as err:
        aws.workspace("ws", clients=c, mode="peering", peer_vpc_id="vpc-0000000000000000").create()
    assert err.value.path == "networking.peer_vpc_id"
    with pytest.raises(ConfigError) as err:
        aws.workspace("ws", clients=c, mode="shared-vpc", vpc_id="vpc-0000000000000000").create()
    assert err.value.path == "networking.vpc_id"
    assert leaks(before, region_inventory(c)) == {}


def _launch(aws: MotoAws, cluster: str, count: int) -> AwsNodeProvider:
    nodes = AwsNodeProvider(aws.provider_config(), cluster, workspace_name="ws", clients=aws.clients())
    image = aws.clients().ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    nodes.create_nodes(NodeSpec("worker", {"ImageId": image}), {T.NODE_KIND: T.KIND_WORKER}, count)
    return nodes


def test_delete_refuses_while_clusters_run_unless_forced(aws: MotoAws) -> None:
    c = aws.clients()
    before = region_inventory(c)
    ws = aws.workspace("ws", clients=c)
    ws.create()
    _launch(aws, "etl", 2)
    c.s3.put_object(Bucket=ws.bucket, Key="data/part-0", Body=b"rows")

    with pytest.raises(ProviderError, match=r"2 instance\(s\) running \(clusters: etl\)"):
        ws.delete()
    assert counts(workspace_inventory(c, "ws"))["instances"] == 2  # refused before touching anything
    assert all(r.present for r in ws.status())

    ws.delete(force=True)

    assert leaks(before, region_inventory(c)) == {}


def test_delete_refuses_a_bucket_with_data_unless_forced(aws: MotoAws) -> None:
    c = aws.clients()
    ws = aws.workspace("ws", clients=c)
    ws.create()
    c.s3.put_object(Bucket=ws.bucket, Key="results.csv", Body=b"a,b\n")
    with pytest.raises(ProviderError, match="still holds objects"):
        ws.delete()
    ws.delete(force=True)
    assert counts(workspace_inventory(c, "ws")) == {}


def test_vpc_cidr_cannot_change_in_place(aws: MotoAws) -> None:
    c = aws.clients()
    aws.workspace("ws", clients=c).create()
    with pytest.raises(ProviderError, match="can't change in place"):
        aws.workspace("ws", clients=c, vpc_cidr="10.8.0.0/16").create()
    aws.workspace("ws", clients=c).delete()


def test_workspace_provider_from_registry_does_not_need_networking(aws: MotoAws) -> None:
    from cloudtik_jupyter.providers import workspace_provider

    provider = workspace_provider(AwsProviderConfig(type="aws", endpoint_url=aws.endpoint), "nothing-here")
    assert not any(r.present for r in provider.status())
    with pytest.raises(ConfigError, match="needs its config"):
        provider.create()


def test_two_workspaces_in_one_region_never_touch_each_other(aws: MotoAws) -> None:
    c = aws.clients()
    a, b = aws.workspace("team-a", clients=c), aws.workspace("team-b", clients=c)
    a.create()
    a_resources = workspace_inventory(c, "team-a")
    b.create()
    assert counts(workspace_inventory(c, "team-b")) == EXPECTED_PUBLIC  # nothing of team-a's reused
    assert workspace_inventory(c, "team-a") == a_resources

    b.delete()

    assert workspace_inventory(c, "team-a") == a_resources
    assert all(r.present for r in a.status())
    a.create()  # still converged: nothing to redo
    assert workspace_inventory(c, "team-a") == a_resources
    a.delete()
