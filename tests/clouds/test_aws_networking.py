"""The three networking modes build the right topology, and delete only what they created."""

from __future__ import annotations

import pytest
from aws_inventory import (
    EXPECTED_PEERING,
    EXPECTED_PUBLIC,
    counts,
    leaks,
    region_inventory,
    workspace_inventory,
)
from conftest import USER_CIDR, MotoAws

from cloudtik_jupyter.errors import ConfigError
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.aws import naming as N
from cloudtik_jupyter.providers.aws.firewall import current_rules
from cloudtik_jupyter.providers.aws.naming import tag_dict
from cloudtik_jupyter.providers.aws.network import routes_of

WS = [{"Name": f"tag:{T.WORKSPACE}", "Values": ["ws"]}]


def _tables(ec2: object) -> dict[str, str]:
    tables = ec2.describe_route_tables(Filters=WS)["RouteTables"]  # type: ignore[attr-defined]
    return {tag_dict(t["Tags"])[N.RESOURCE]: t["RouteTableId"] for t in tables}


def _vpc_tables(ec2: object, vpc_id: str) -> list[str]:
    found = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])  # type: ignore[attr-defined]
    return [t["RouteTableId"] for t in found["RouteTables"]]


def test_public_mode_routes(aws: MotoAws) -> None:
    c = aws.clients()
    aws.workspace("ws", clients=c).create()
    tables = _tables(c.ec2)
    public, private = (
        routes_of(c.ec2, tables[N.PUBLIC_ROUTE_TABLE]),
        routes_of(c.ec2, tables[N.PRIVATE_ROUTE_TABLE]),
    )
    assert public["0.0.0.0/0"].startswith("igw-")
    assert private["0.0.0.0/0"].startswith("nat-")
    assert not any(target.startswith("igw-") for target in private.values())
    assert not any(target.startswith("pcx-") for target in [*public.values(), *private.values()])
    group = c.ec2.describe_security_groups(Filters=WS)["SecurityGroups"][0]
    assert tag_dict(group["Tags"])[N.NETWORKING] == "public"


def test_peering_mode_routes_both_sides_and_deletes_only_its_routes(aws: MotoAws) -> None:
    c = aws.clients()
    client_vpc = c.ec2.create_vpc(CidrBlock="192.168.0.0/16")["Vpc"]["VpcId"]
    extra_table = c.ec2.create_route_table(VpcId=client_vpc)["RouteTable"]["RouteTableId"]
    before = region_inventory(c)
    ws = aws.workspace("ws", clients=c, mode="peering", peer_vpc_id=client_vpc)

    ws.create()

    assert counts(workspace_inventory(c, "ws")) == EXPECTED_PEERING
    pcx = c.ec2.describe_vpc_peering_connections(Filters=WS)["VpcPeeringConnections"][0]
    assert pcx["Status"]["Code"] == "active"
    assert pcx["AccepterVpcInfo"]["VpcId"] == client_vpc
    pcx_id = pcx["VpcPeeringConnectionId"]
    tables = _tables(c.ec2)
    for role in (N.PUBLIC_ROUTE_TABLE, N.PRIVATE_ROUTE_TABLE):  # our side -> the client's VPC
        assert routes_of(c.ec2, tables[role])["192.168.0.0/16"] == pcx_id
    client_tables = _vpc_tables(c.ec2, client_vpc)
    assert extra_table in client_tables and len(client_tables) == 2
    for table in client_tables:  # the client's side -> the workspace
        assert routes_of(c.ec2, table)["10.0.0.0/16"] == pcx_id
    private = routes_of(c.ec2, tables[N.PRIVATE_ROUTE_TABLE])
    assert not any(target.startswith("igw-") for target in private.values())
    group = c.ec2.describe_security_groups(Filters=WS)["SecurityGroups"][0]
    ssh_from = {r.source for r in current_rules(group) if r.is_cidr}
    assert ssh_from == {USER_CIDR, "192.168.0.0/16"}  # the client reaches nodes over the peering
    assert ws.info()["peering_connection"] == pcx_id

    ws.delete()

    assert leaks(before, region_inventory(c)) == {}
    for table in _vpc_tables(c.ec2, client_vpc):  # the client's VPC is intact, minus our routes
        assert "10.0.0.0/16" not in routes_of(c.ec2, table)
    assert c.ec2.describe_vpcs(VpcIds=[client_vpc])["Vpcs"]


def test_peering_refuses_an_overlapping_block(aws: MotoAws) -> None:
    c = aws.clients()
    client_vpc = c.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    before = region_inventory(c)
    with pytest.raises(ConfigError) as err:
        aws.workspace("ws", clients=c, mode="peering", peer_vpc_id=client_vpc).create()
    assert err.value.path == "networking.vpc_cidr"
    assert leaks(before, region_inventory(c)) == {}
    aws.workspace("ws", clients=c, mode="peering", peer_vpc_id=client_vpc, vpc_cidr="10.20.0.0/16").create()
    assert counts(workspace_inventory(c, "ws")) == EXPECTED_PEERING


def test_shared_vpc_creates_only_what_is_missing_and_deletes_only_that(aws: MotoAws) -> None:
    c = aws.clients()
    ec2 = c.ec2
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    theirs = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.0.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    before = region_inventory(c)
    ws = aws.workspace("ws", clients=c, mode="shared-vpc", vpc_id=vpc)

    ws.create()

    created = leaks(before, region_inventory(c))
    assert "vpcs" not in created and "internet_gateways" not in created  # reused, not duplicated
    expected = {k: v for k, v in EXPECTED_PUBLIC.items() if k not in ("vpcs", "internet_gateways")}
    assert counts(workspace_inventory(c, "ws")) == expected
    subnets = ec2.describe_subnets(Filters=WS)["Subnets"]
    assert {s["VpcId"] for s in subnets} == {vpc}
    assert theirs["CidrBlock"] not in {s["CidrBlock"] for s in subnets}  # free blocks only
    public = routes_of(ec2, _tables(ec2)[N.PUBLIC_ROUTE_TABLE])
    assert public["0.0.0.0/0"] == igw  # the VPC's own gateway
    status = {r.name: r for r in ws.status()}
    assert all(r.present for r in status.values())
    assert "shared" in status[N.VPC].detail and "shared" in status[N.INTERNET_GATEWAY].detail
    group = ec2.describe_security_groups(Filters=WS)["SecurityGroups"][0]
    assert {r.source for r in current_rules(group) if r.is_cidr} == {USER_CIDR, "10.1.0.0/16"}

    ws.delete()

    assert leaks(before, region_inventory(c)) == {}
    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]
    assert ec2.describe_internet_gateways(InternetGatewayIds=[igw])["InternetGateways"][0]["Attachments"]
    assert ec2.describe_subnets(SubnetIds=[theirs["SubnetId"]])["Subnets"]
