"""What the workspace does not own it does not touch: a client's routes, a shared VPC; what it owns it
deletes completely (every tagged duplicate, reported); errors say what happened, and nothing connects to
an address moto hands out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_inventory import EXPECTED_PEERING, counts, leaks, region_inventory, workspace_inventory
from botocore.exceptions import ClientError
from conftest import MotoAws
from fakes.endtoend import cli, cluster_config, write_yaml

from cloudtik_jupyter.api.workspace import Workspace
from cloudtik_jupyter.errors import ConfigError, ProviderError
from cloudtik_jupyter.providers.aws import naming as N
from cloudtik_jupyter.providers.aws.naming import tag_dict
from cloudtik_jupyter.providers.aws.peering import ROUTES_TAG

Routes = dict[tuple[str, str], str]


def _routes(ec2: Any, vpc_id: str) -> Routes:
    """Every route of every table of a VPC: (table, destination) -> target and state."""
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    out = {}
    for t in tables:
        for r in t["Routes"]:
            target = next(v for k, v in r.items() if k.endswith("Id") and k != "DestinationPrefixListId")
            out[(t["RouteTableId"], r.get("DestinationCidrBlock", ""))] = f"{target} {r.get('State')}"
    return out


@pytest.fixture
def client_vpc(aws: MotoAws) -> dict[str, str]:
    """The client's VPC: its own internet route, and a peering to a third VPC of theirs."""
    ec2 = aws.clients().ec2
    vpc = ec2.create_vpc(CidrBlock="192.168.0.0/16")["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    other = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    pcx = ec2.create_vpc_peering_connection(VpcId=vpc, PeerVpcId=other)["VpcPeeringConnection"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx["VpcPeeringConnectionId"])
    return {"vpc": vpc, "table": table, "pcx": pcx["VpcPeeringConnectionId"], "other": other}


def test_peering_refuses_to_hijack_a_route_before_creating_anything(
    aws: MotoAws, client_vpc: dict[str, str], tmp_path: Path
) -> None:
    c = aws.clients()
    # The client already sends 10.0.0.0/16 to their other VPC: a workspace there would take it over.
    c.ec2.create_route(
        RouteTableId=client_vpc["table"],
        DestinationCidrBlock="10.0.0.0/16",
        VpcPeeringConnectionId=client_vpc["pcx"],
    )
    before, routes = region_inventory(c), _routes(c.ec2, client_vpc["vpc"])
    config = aws.config_dict("ws", mode="peering", peer_vpc_id=client_vpc["vpc"], vpc_cidr="10.0.0.0/16")
    # (The block overlaps their *other* VPC, not the peer: only the route check can catch it.)
    result = cli("workspace", "create", write_yaml(tmp_path / "ws.yaml", config), "--yes")

    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: networking.vpc_cidr: the peer VPC") and client_vpc["pcx"] in line
    assert "does not replace routes it does not own" in line
    assert leaks(before, region_inventory(c)) == {}  # nothing created, not even the lock
    assert _routes(c.ec2, client_vpc["vpc"]) == routes

    # A more specific route inside the block is someone else's too.
    c.ec2.delete_route(RouteTableId=client_vpc["table"], DestinationCidrBlock="10.0.0.0/16")
    c.ec2.create_route(
        RouteTableId=client_vpc["table"],
        DestinationCidrBlock="10.0.7.0/24",
        VpcPeeringConnectionId=client_vpc["pcx"],
    )
    with pytest.raises(ConfigError, match=r"10\.0\.7\.0/24 -> pcx-"):
        Workspace(config).create()
    assert leaks(before, region_inventory(c)) == {}


def test_peering_adds_only_new_routes_and_delete_leaves_the_client_tables_as_they_were(
    aws: MotoAws, client_vpc: dict[str, str]
) -> None:
    c = aws.clients()
    before, routes = region_inventory(c), _routes(c.ec2, client_vpc["vpc"])
    ws = Workspace(
        aws.config_dict("ws", mode="peering", peer_vpc_id=client_vpc["vpc"], vpc_cidr="10.20.0.0/16")
    )

    ws.create()

    assert counts(workspace_inventory(c, "ws")) == EXPECTED_PEERING
    (pcx,) = [  # moto ignores tag filters on peerings: checked here
        p
        for p in c.ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]
        if tag_dict(p.get("Tags")).get(N.RESOURCE) == N.PEERING
    ]
    now = _routes(c.ec2, client_vpc["vpc"])
    added = {k: v for k, v in now.items() if k not in routes}
    tables = {t for t, _ in routes}
    assert added == {(t, "10.20.0.0/16"): f"{pcx['VpcPeeringConnectionId']} active" for t in tables}
    assert {k: now[k] for k in routes} == routes  # nothing of theirs changed
    recorded = tag_dict(pcx["Tags"])[f"{ROUTES_TAG}-0"].split()
    assert sorted(recorded) == sorted(tables)  # what create added, written down where delete finds it

    report = ws.delete()

    assert _routes(c.ec2, client_vpc["vpc"]) == routes  # exactly as before
    assert leaks(before, region_inventory(c)) == {}
    assert sorted(r for r in report.removed if r.startswith("VPC peering route")) == sorted(
        f"VPC peering route 10.20.0.0/16 in {t}" for t in tables
    )


def test_shared_vpc_without_internet_gateway_is_refused(aws: MotoAws) -> None:
    c = aws.clients()
    vpc = c.ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    before = region_inventory(c)
    with pytest.raises(ConfigError, match="does not attach one to a VPC it does not own") as err:
        Workspace(aws.config_dict("ws", mode="shared-vpc", vpc_id=vpc)).create()
    assert err.value.path == "networking.vpc_id"
    assert leaks(before, region_inventory(c)) == {}
    assert not c.ec2.describe_internet_gateways()["InternetGateways"]


def _tag(ec2: Any, resource: str, role: str) -> None:
    ec2.create_tags(Resources=[resource], Tags=N.WorkspaceNames("ws").tag_list(role))


def test_delete_removes_every_tagged_duplicate_and_says_so(aws: MotoAws) -> None:
    """What a lost answer or a concurrent run could leave behind before locks: the second of a kind."""
    c = aws.clients()
    ec2 = c.ec2
    before = region_inventory(c)
    ws = Workspace(aws.config_dict("ws"))
    ws.create()
    info = ws.info()
    vpc2 = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    dupes = {
        "VPC": vpc2,
        "subnets": ec2.create_subnet(VpcId=info["vpc"], CidrBlock="10.0.200.0/24")["Subnet"]["SubnetId"],
        "security group": ec2.create_security_group(GroupName="dupe", Description="dupe", VpcId=info["vpc"])[
            "GroupId"
        ],
        "S3 endpoint": ec2.create_vpc_endpoint(
            VpcId=info["vpc"], ServiceName="com.amazonaws.us-east-1.s3", VpcEndpointType="Gateway"
        )["VpcEndpoint"]["VpcEndpointId"],
        "public route table": ec2.create_route_table(VpcId=info["vpc"])["RouteTable"]["RouteTableId"],
        "NAT gateway": ec2.allocate_address(Domain="vpc")["AllocationId"],
    }
    roles = {
        "VPC": N.VPC,
        "subnets": N.PUBLIC_SUBNET,
        "security group": N.SECURITY_GROUP,
        "S3 endpoint": N.S3_ENDPOINT,
        "public route table": N.PUBLIC_ROUTE_TABLE,
        "NAT gateway": N.NAT_EIP,
    }
    for step, resource in dupes.items():
        _tag(ec2, resource, roles[step])

    report = ws.delete()

    assert leaks(before, region_inventory(c)) == {}
    for step, resource in dupes.items():
        assert f"{step} {resource}" in report.removed
    assert f"VPC {info['vpc']}" in report.removed


def test_auth_failure_fails_at_once(aws: MotoAws) -> None:
    c = aws.clients()
    ws = aws.workspace("ws", clients=c)
    ws.create()

    attempts: list[str] = []

    def refuse(**kwargs: Any) -> None:
        attempts.append("DeleteSubnet")
        raise ClientError(
            {"Error": {"Code": "AuthFailure", "Message": "AWS was not able to validate the credentials"}},
            "DeleteSubnet",
        )

    c.ec2.meta.events.register("before-call.ec2.DeleteSubnet", refuse)
    ws.timeout = 600  # a retried AuthFailure would try again for this long
    with pytest.raises(ProviderError, match="AuthFailure") as err:
        ws.delete()
    assert attempts == ["DeleteSubnet"]  # not retried
    assert "credentials" in str(err.value)
    c.ec2.meta.events.unregister("before-call.ec2.DeleteSubnet", refuse)
    ws.delete()


def test_delete_says_what_it_does(aws: MotoAws, tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "ws.yaml", aws.config_dict("ws"))
    assert cli("workspace", "create", config, "--yes").returncode == 0
    deleted = cli("workspace", "delete", "ws", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    out = deleted.stdout
    assert "ensuring" not in out and "creating" not in out
    assert "deleting VPC" in out and "removed vpc-" in out and "removed nat-" in out
    assert "is deleted (" in out and "resource(s) removed)" in out


def test_up_never_connects_to_an_address_moto_returns(aws: MotoAws, tmp_path: Path) -> None:
    c = aws.clients()
    ws = write_yaml(tmp_path / "ws.yaml", aws.config_dict("analytics"))
    assert cli("workspace", "create", ws, "--yes").returncode == 0
    image = {"ImageId": c.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]}
    config = cluster_config(
        {"type": "aws", "region": aws.region, "endpoint_url": aws.endpoint}, image, image
    ).model_dump(mode="json", exclude_none=True)

    up = cli("up", write_yaml(tmp_path / "etl.yaml", config), "--yes")

    assert up.returncode == 2, up.stderr
    (line,) = up.stderr.strip().splitlines()
    assert line.startswith(f"Error: provider.endpoint_url: is set ({aws.endpoint})")
    assert "cloudtik does not connect to them" in line and "`cloudtik down etl`" in line  # not an SSH timeout
    # The head and the 2 minimum workers launched beside it; none was ever reached.
    assert counts(workspace_inventory(c, "analytics")).get("instances") == 3
    assert cli("down", "etl", "--yes").returncode == 0
    assert "instances" not in counts(workspace_inventory(c, "analytics"))
    assert cli("workspace", "delete", "analytics", "--yes").returncode == 0
