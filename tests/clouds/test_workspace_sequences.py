"""Random sequences of create, delete, interrupts and faults against moto (peering mode, next to a
client VPC that is not the workspace's), checking after every step what must always hold:

- nothing is ever twice (each kind at most its expected count), and no lock is left behind;
- nothing of the client's changes: its VPC, route tables and their routes but the one route to the
  workspace that create adds (and delete removes);
- a plain create converges to the whole workspace, a plain delete to nothing, whatever came before.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field
from typing import Any

import pytest
from aws_inventory import EXPECTED_PEERING, counts, leaks, region_inventory, workspace_inventory
from conftest import MotoAws
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from cloudtik_jupyter.errors import Cancelled, ProviderError
from cloudtik_jupyter.providers.aws.workspace import AwsWorkspaceProvider
from cloudtik_jupyter.providers.common import cancel
from cloudtik_jupyter.providers.common.lock import LockRecord

CIDR = "10.0.0.0/16"
CREATE_STEPS = 12  # in peering mode
DELETE_STEPS = 11  # no instances


class Injected(ProviderError):
    pass


@dataclass
class At:
    """Hooks that act at the `n`-th step reached (before it runs, or after it ran): fail, or cancel."""

    n: int
    phase: str
    action: str  # "fail" | "cancel"
    token: cancel.CancelToken
    reached: int = 0
    fired: list[str] = field(default_factory=list)

    def _at(self, step: str, phase: str) -> None:
        if phase == self.phase and self.reached == self.n and not self.fired:
            self.fired.append(step)
            if self.action == "fail":
                raise Injected(f"injected {phase} {step}")
            self.token.cancel("interrupted")

    def before(self, step: str) -> None:
        self.reached += 1
        self._at(step, "before")

    def after(self, step: str) -> None:
        self._at(step, "after")


def _client_routes(ec2: Any, vpc: str) -> set[tuple[str, str, str]]:
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
    return {
        (
            t["RouteTableId"],
            r.get("DestinationCidrBlock", ""),
            str(r.get("GatewayId") or r.get("VpcPeeringConnectionId")),
        )
        for t in tables
        for r in t["Routes"]
    }


class WorkspaceSequences(RuleBasedStateMachine):
    aws: MotoAws

    @initialize()
    def start(self) -> None:
        request = urllib.request.Request(f"{self.aws.endpoint}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass
        self.c = self.aws.clients()
        ec2 = self.c.ec2
        self.client = ec2.create_vpc(CidrBlock="192.168.0.0/16")["Vpc"]["VpcId"]
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=self.client)
        table = ec2.create_route_table(VpcId=self.client)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        self.before = region_inventory(self.c)
        self.client_routes = _client_routes(ec2, self.client)

    def _workspace(self, hooks: At | None = None) -> AwsWorkspaceProvider:
        ws = self.aws.workspace("ws", clients=self.c, mode="peering", peer_vpc_id=self.client)
        ws.hooks = hooks
        return ws

    def _run(self, operation: str, hooks: At | None = None) -> None:
        token = hooks.token if hooks else cancel.CancelToken()
        ws = self._workspace(hooks)
        with cancel.scope(token), ws.lock(LockRecord.new(operation)):
            ws.create() if operation == "create" else ws.delete()

    @rule()
    def create(self) -> None:
        self._run("create")
        assert counts(workspace_inventory(self.c, "ws")) == EXPECTED_PEERING

    @rule()
    def delete(self) -> None:
        self._run("delete")
        assert leaks(self.before, region_inventory(self.c)) == {}

    @rule(
        operation=st.sampled_from(["create", "delete"]),
        n=st.integers(1, max(CREATE_STEPS, DELETE_STEPS)),
        phase=st.sampled_from(["before", "after"]),
        action=st.sampled_from(["fail", "cancel"]),
    )
    def disturbed(self, operation: str, n: int, phase: str, action: str) -> None:
        hooks = At(n, phase, action, cancel.CancelToken())
        try:
            self._run(operation, hooks)
        except (Injected, Cancelled):
            assert hooks.fired  # it stopped where it was told to, and only there
        else:
            assert not hooks.fired or (action == "cancel" and phase == "after" and hooks.reached == n)

    @invariant()
    def nothing_twice_no_lock_left(self) -> None:
        found = counts(workspace_inventory(self.c, "ws"))
        assert all(n <= EXPECTED_PEERING.get(kind, 0) for kind, n in found.items()), found

    @invariant()
    def the_clients_vpc_is_untouched(self) -> None:
        ours = {
            p["VpcPeeringConnectionId"]
            for p in self.c.ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]
        }
        routes = _client_routes(self.c.ec2, self.client)
        added = {r for r in routes - self.client_routes if not (r[1] == CIDR and r[2] in ours)}
        assert added == set() and self.client_routes <= routes

    def teardown(self) -> None:
        if not hasattr(self, "c"):
            return
        self._run("create")
        assert counts(workspace_inventory(self.c, "ws")) == EXPECTED_PEERING
        self._run("delete")
        assert leaks(self.before, region_inventory(self.c)) == {}
        assert _client_routes(self.c.ec2, self.client) == self.client_routes


def test_random_sequences_converge_and_touch_nothing_else(aws: MotoAws) -> None:
    WorkspaceSequences.aws = aws
    machine = WorkspaceSequences.TestCase
    machine.settings = settings(
        max_examples=4,
        stateful_step_count=5,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    machine().runTest()


@pytest.mark.parametrize("operation", ["create", "delete"])
def test_the_step_counts_are_current(aws: MotoAws, operation: str) -> None:
    """The rules above reach every step: their step counts are the providers' (this fails if one is added)."""
    client = aws.clients().ec2.create_vpc(CidrBlock="192.168.0.0/16")["Vpc"]["VpcId"]
    ws = aws.workspace("ws", clients=aws.clients(), mode="peering", peer_vpc_id=client)
    hooks = At(10**6, "before", "fail", cancel.CancelToken())
    ws.hooks = hooks
    ws.create()
    if operation == "delete":
        hooks.reached = 0
        ws.delete()
    assert hooks.reached == (CREATE_STEPS if operation == "create" else DELETE_STEPS)
