"""Fault injection: every AWS call of `create` (and `delete`) fails once, then a re-run converges.

A fault "before" the call means AWS never saw it; "after" means AWS did it but the answer was lost
(the nastier case: the resource exists, and only its tags can tell the re-run so).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_inventory import EXPECTED_PEERING, counts, workspace_inventory
from botocore.exceptions import ClientError
from conftest import MotoAws

from cloudtik_jupyter.errors import ProviderError
from cloudtik_jupyter.providers.aws.clients import AwsClients
from cloudtik_jupyter.providers.aws.network import routes_of

_READS = ("Describe", "Get", "List", "Head")

# Every mutating call `create` makes, in peering mode (a superset of the default mode's calls).
CREATE_CALLS = [
    "ec2.CreateVpc",
    "ec2.ModifyVpcAttribute",
    "ec2.CreateInternetGateway",
    "ec2.AttachInternetGateway",
    "ec2.CreateSubnet",
    "ec2.CreateRouteTable",
    "ec2.CreateRoute",
    "ec2.AssociateRouteTable",
    "ec2.AllocateAddress",
    "ec2.CreateNatGateway",
    "ec2.CreateVpcEndpoint",
    "ec2.CreateSecurityGroup",
    "ec2.CreateTags",
    "ec2.AuthorizeSecurityGroupIngress",
    "ec2.CreateVpcPeeringConnection",
    "ec2.AcceptVpcPeeringConnection",
    "iam.CreateServiceLinkedRole",
    "iam.CreateRole",
    "iam.PutRolePolicy",
    "iam.CreateInstanceProfile",
    "iam.AddRoleToInstanceProfile",
    "s3.CreateBucket",
    "s3.PutPublicAccessBlock",
    "s3.PutBucketEncryption",
    "s3.PutBucketTagging",
]
# Puts and modifications are simply re-applied; a lost answer matters for calls that create something
# or that fail when repeated (attach, associate, authorize, add), so those also fail "after".
LOST_ANSWER_CALLS = [
    c
    for c in CREATE_CALLS
    if c.split(".")[1].startswith(("Create", "Allocate", "Attach", "Associate", "Authorize", "Add"))
    and c != "ec2.CreateTags"
]
DELETE_CALLS = [
    "s3.DeleteBucket",
    "iam.RemoveRoleFromInstanceProfile",
    "iam.DeleteInstanceProfile",
    "iam.DeleteRolePolicy",
    "iam.DeleteRole",
    "ec2.DeleteRoute",
    "ec2.DeleteVpcPeeringConnection",
    "ec2.DeleteSecurityGroup",
    "ec2.DeleteVpcEndpoints",
    "ec2.DisassociateRouteTable",
    "ec2.DeleteRouteTable",
    "ec2.DeleteNatGateway",
    "ec2.ReleaseAddress",
    "ec2.DeleteSubnet",
    "ec2.DetachInternetGateway",
    "ec2.DeleteInternetGateway",
    "ec2.DeleteVpc",
]


def _services(c: AwsClients) -> dict[str, Any]:
    return {"ec2": c.ec2, "iam": c.iam, "s3": c.s3}


class Recorder:
    """Names of the mutating calls made through the clients."""

    def __init__(self, c: AwsClients) -> None:
        self.calls: list[str] = []
        for name, client in _services(c).items():
            client.meta.events.register(f"before-call.{name}", self._record)

    def _record(self, event_name: str, **kwargs: Any) -> None:
        _, service, op = event_name.split(".")
        if not op.startswith(_READS):
            self.calls.append(f"{service}.{op}")


class Faults:
    """Make the first call of each `service.Operation` fail, before it reaches AWS or after AWS did it."""

    def __init__(self, c: AwsClients, calls: list[str], phase: str) -> None:
        self.fired: list[str] = []
        for call in calls:
            service, op = call.split(".")
            _services(c)[service].meta.events.register(f"{phase}-call.{service}.{op}", self._fail)

    def _fail(self, event_name: str, **kwargs: Any) -> None:
        call = ".".join(event_name.split(".")[1:])
        if call not in self.fired:
            self.fired.append(call)
            raise ClientError({"Error": {"Code": "InjectedFault", "Message": "injected by the test"}}, call)


def _rerun_until_done(action: Any, faults: Faults, check: Any) -> list[str]:
    """Run `action` until it succeeds; each failed run must fail on a new call, and pass `check`."""
    failures: list[str] = []
    for _ in range(len(CREATE_CALLS) + len(DELETE_CALLS) + 1):
        try:
            action()
            return failures
        except ProviderError as exc:
            assert "InjectedFault" in str(exc)
            failures.append(faults.fired[-1])
            check()
    raise AssertionError(f"did not converge; failures: {failures}")


@pytest.fixture
def peer(aws: MotoAws) -> Iterator[str]:
    """The client's VPC, with a route table of its own."""
    ec2 = aws.clients().ec2
    vpc = ec2.create_vpc(CidrBlock="192.168.0.0/16")["Vpc"]["VpcId"]
    yield vpc
    ec2.delete_vpc(VpcId=vpc)


def _assert_converged(aws: MotoAws, c: AwsClients, peer: str) -> None:
    ws = aws.workspace("ws", clients=c, mode="peering", peer_vpc_id=peer)
    assert counts(workspace_inventory(c, "ws")) == EXPECTED_PEERING  # nothing missing, nothing twice
    assert all(r.present for r in ws.status())
    (pcx,) = workspace_inventory(c, "ws")["peering_connections"]
    peer_tables = c.ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [peer]}])["RouteTables"]
    assert all(routes_of(c.ec2, t["RouteTableId"]).get("10.0.0.0/16") == pcx for t in peer_tables)


def test_fault_plan_covers_every_create_and_delete_call(aws: MotoAws, peer: str) -> None:
    c = aws.clients()
    recorder = Recorder(c)
    ws = aws.workspace("ws", clients=c, mode="peering", peer_vpc_id=peer)
    ws.create()
    assert set(recorder.calls) == set(CREATE_CALLS)
    recorder.calls.clear()
    ws.delete()
    assert set(recorder.calls) == set(DELETE_CALLS)


@pytest.mark.parametrize(("phase", "calls"), [("before", CREATE_CALLS), ("after", LOST_ANSWER_CALLS)])
def test_create_converges_when_each_call_fails_once(
    aws: MotoAws, peer: str, phase: str, calls: list[str]
) -> None:
    c = aws.clients()
    faults = Faults(c, calls, phase)
    ws = aws.workspace("ws", clients=c, mode="peering", peer_vpc_id=peer)

    def no_duplicates() -> None:
        found = counts(workspace_inventory(c, "ws"))
        assert all(n <= EXPECTED_PEERING[kind] for kind, n in found.items()), found

    failures = _rerun_until_done(ws.create, faults, no_duplicates)

    assert sorted(failures) == sorted(calls)  # every call failed once, each on its own run
    _assert_converged(aws, c, peer)


def test_delete_converges_when_each_call_fails_once(aws: MotoAws, peer: str) -> None:
    c = aws.clients()
    ws = aws.workspace("ws", clients=c, mode="peering", peer_vpc_id=peer)
    ws.create()
    faults = Faults(c, DELETE_CALLS, "before")

    failures = _rerun_until_done(ws.delete, faults, lambda: None)

    assert sorted(failures) == sorted(DELETE_CALLS)
    assert counts(workspace_inventory(c, "ws")) == {}
    peer_tables = c.ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [peer]}])["RouteTables"]
    assert all("10.0.0.0/16" not in routes_of(c.ec2, t["RouteTableId"]) for t in peer_tables)
