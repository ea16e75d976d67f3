"""The AWS policies allow exactly what the providers do.

Every call the node provider makes as the head's controller would (launch workers on demand and on
spot, list, tag, address, terminate) is recorded as the authorization requests AWS makes for it and
evaluated against the head's policy as IAM holds it (read back from moto); likewise every call of
`workspace create/update/delete` in the three networking modes, of `up` and `down`, against the
policy the README gives for the user's own credentials. A new call without a permission fails here,
and so does a permission nothing uses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_iam import ACCOUNT, AuthRequest, Recorder, _ctx, denied
from conftest import MotoAws, policy

from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.aws.identity import INLINE_POLICY
from cloudtik_jupyter.providers.aws.node_provider import AwsNodeProvider
from cloudtik_jupyter.providers.aws.policies import user_policy
from cloudtik_jupyter.providers.base import NodeSpec
from cloudtik_jupyter.providers.common.lock import LockRecord

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1YGvqRMcJYb2OS7rGxVOkHnDv2VaO4sdkUwlYpbUEm cloudtik-etl"


def _image(aws: MotoAws) -> str:
    return str(aws.clients().ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])


def _actions(doc: dict[str, Any]) -> set[str]:
    return {
        a for s in doc["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }


def _head_operations(aws: MotoAws, rec: Recorder, workspace: str = "ws") -> None:
    """What the head's controller does through the node provider (it launches workers only)."""
    c = aws.clients()
    rec.hook(c.ec2, c.iam, c.s3)
    image = _image(aws)
    for spot in (False, True):
        nodes = AwsNodeProvider(
            aws.provider_config(use_spot=spot), "etl", workspace_name=workspace, clients=c
        )
        rec.label = "create_nodes"
        workers = nodes.create_nodes(
            NodeSpec("w", {"ImageId": image}, "u", KEY), {T.NODE_KIND: T.KIND_WORKER}, 2
        )
        fresh = AwsNodeProvider(aws.provider_config(), "etl", workspace_name=workspace, clients=c)
        rec.label = "non_terminated_nodes"
        assert sorted(fresh.non_terminated_nodes({T.NODE_KIND: T.KIND_WORKER})) == sorted(workers)
        rec.label = "set_node_tags"
        fresh.set_node_tags(workers[0], {T.NODE_STATUS: "up-to-date"})
        fresh = AwsNodeProvider(aws.provider_config(), "etl", workspace_name=workspace, clients=c)
        rec.label = "node_tags"
        assert fresh.node_tags(workers[0])[T.NODE_STATUS] == "up-to-date"
        rec.label = "address"
        assert fresh.address(workers[1]).internal_ip
        rec.label = "terminate_nodes"
        fresh.terminate_nodes(workers)


@pytest.fixture
def head_policy(aws: MotoAws) -> dict[str, Any]:
    c = aws.clients()
    aws.workspace("ws", clients=c).create()
    return policy(
        c.iam.get_role_policy(RoleName="cloudtik-ws-head", PolicyName=INLINE_POLICY)["PolicyDocument"]
    )


def test_the_head_policy_allows_exactly_what_the_node_provider_does(
    aws: MotoAws, head_policy: dict[str, Any]
) -> None:
    look = aws.clients()
    rec = Recorder(aws.region, look.ec2, look.iam)
    _head_operations(aws, rec)

    requests = rec.all()
    assert {r.action for r in rec.all("create_nodes")} >= {
        "ec2:RunInstances",
        "ec2:CreateTags",
        "iam:PassRole",
    }
    assert any(r.resource.endswith("spot-instances-request/*") for r in requests)
    assert denied(head_policy, requests) == []
    unused = _actions(head_policy) - {r.action for r in requests}
    assert {a for a in unused if not a.startswith("s3:")} == set()  # the bucket: for the head's jobs


def test_the_evaluation_refuses_what_the_policy_does_not_allow(
    aws: MotoAws, head_policy: dict[str, Any]
) -> None:
    """The same evaluation says no to a launch outside the workspace, and to spot without its grant."""
    look = aws.clients()
    other = look.ec2.create_subnet(
        VpcId=look.ec2.describe_vpcs()["Vpcs"][0]["VpcId"], CidrBlock="172.31.200.0/24"
    )["Subnet"]["SubnetId"]
    arn = f"arn:aws:ec2:{aws.region}:{ACCOUNT}"
    outside = [
        AuthRequest("ec2:RunInstances", f"{arn}:subnet/{other}", _ctx(resource_tags={})),
        AuthRequest("ec2:RunInstances", f"{arn}:instance/*", _ctx({T.WORKSPACE: "another"})),
        AuthRequest(
            "ec2:TerminateInstances", f"{arn}:instance/i-0123", _ctx(resource_tags={T.WORKSPACE: "another"})
        ),
        AuthRequest(
            "ec2:CreateTags", f"{arn}:instance/i-0123", _ctx({T.WORKSPACE: "another"}, {T.WORKSPACE: "ws"})
        ),
        AuthRequest(
            "iam:PassRole",
            f"arn:aws:iam::{ACCOUNT}:role/cloudtik-ws-head",
            _ctx(**{"iam:PassedToService": "ec2.amazonaws.com"}),
        ),
        AuthRequest("ec2:DescribeImages", "*"),
    ]
    assert len(denied(head_policy, outside)) == len(outside)

    rec = Recorder(aws.region, look.ec2, look.iam)
    _head_operations(aws, rec)
    without_spot = json.loads(json.dumps(head_policy))
    for s in without_spot["Statement"]:
        s["Resource"] = [
            r
            for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
            if "spot" not in r
        ]
    assert [d for d in denied(without_spot, rec.all()) if "spot-instances-request" in d]


def _drift(aws: MotoAws, name: str) -> None:
    """Hand edits that make a re-run converge through its repair calls."""
    c = aws.clients()
    ec2 = c.ec2
    ws = aws.workspace(name, clients=c)
    info = ws.info()
    rts = ec2.describe_route_tables(Filters=[{"Name": "tag:cloudtik-workspace", "Values": [name]}])[
        "RouteTables"
    ]
    by_role = {next(t["Value"] for t in r["Tags"] if t["Key"] == "cloudtik-resource"): r for r in rts}
    private, public = by_role["private-route-table"], by_role["public-route-table"]
    igw = next(r["GatewayId"] for r in public["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0")
    ec2.replace_route(RouteTableId=private["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    subnet = info["private_subnets"].split(",")[0]
    assoc = next(a for a in private["Associations"] if a.get("SubnetId") == subnet)
    ec2.replace_route_table_association(
        AssociationId=assoc["RouteTableAssociationId"], RouteTableId=public["RouteTableId"]
    )
    (endpoint,) = [
        e
        for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]
        if {"Key": "cloudtik-workspace", "Value": name} in e.get("Tags", [])
    ]
    ec2.modify_vpc_endpoint(
        VpcEndpointId=endpoint["VpcEndpointId"], RemoveRouteTableIds=[private["RouteTableId"]]
    )
    doc = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}],
    }
    arn = c.iam.create_policy(PolicyName="someone-elses", PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
    c.iam.attach_role_policy(RoleName=f"cloudtik-{name}-worker", PolicyArn=arn)


def test_the_users_policy_allows_exactly_what_create_update_delete_up_and_down_do(aws: MotoAws) -> None:
    c, look = aws.clients(), aws.clients()
    rec = Recorder(aws.region, look.ec2, look.iam).hook(c.ec2, c.iam, c.s3, c.sts)
    peer = look.ec2.create_vpc(CidrBlock="192.168.0.0/16")["Vpc"]["VpcId"]
    shared = look.ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    igw = look.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    look.ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=shared)
    image = _image(aws)
    modes: dict[str, dict[str, Any]] = {
        "a": {},
        "b": {"mode": "peering", "peer_vpc_id": peer, "vpc_cidr": "10.9.0.0/16"},
        "c": {"mode": "shared-vpc", "vpc_id": shared},
    }
    for name, networking in modes.items():
        ws = aws.workspace(name, clients=c, **networking)
        rec.label = "workspace create"
        with ws.lock(LockRecord.new("create")):
            ws.create()
        if name == "a":
            _drift(aws, name)
            rec.label = "workspace update"
            narrowed = aws.workspace(name, clients=c, allowed_ssh_cidrs=["203.0.113.7/32"])
            with narrowed.lock(LockRecord.new("create")):
                narrowed.create()
        nodes = AwsNodeProvider(aws.provider_config(use_spot=True), "etl", workspace_name=name, clients=c)
        rec.label = "up"  # the client launches the head (the head launches workers: its own policy)
        (head,) = nodes.create_nodes(
            NodeSpec("h", {"ImageId": image}, "u", KEY), {T.NODE_KIND: T.KIND_HEAD}, 1
        )
        nodes.set_node_tags(head, {T.NODE_STATUS: "up-to-date"})
        nodes.address(head)
        if name == "c":  # delete --force: instances terminated, the bucket emptied
            look.s3.put_object(Bucket=ws.bucket, Key="data/part-0", Body=b"x")
            rec.label = "workspace delete --force"
            with ws.lock(LockRecord.new("delete")):
                ws.delete(force=True)
            continue
        rec.label = "down"
        nodes.terminate_nodes(nodes.non_terminated_nodes({}))
        rec.label = "workspace delete"
        with ws.lock(LockRecord.new("delete")):
            ws.delete()

    doc = json.loads(user_policy().to_json())
    requests = rec.all()
    assert denied(doc, requests) == []
    assert _actions(doc) - {r.action for r in requests} == set()  # nothing granted that nothing uses
    used = {r.action for r in rec.all("workspace update")}
    assert {"ec2:ReplaceRoute", "ec2:ReplaceRouteTableAssociation", "ec2:ModifyVpcEndpoint"} <= used
    assert "ec2:RevokeSecurityGroupIngress" in used and "iam:UpdateAssumeRolePolicy" in used
