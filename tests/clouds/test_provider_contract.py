"""The provider contract: what every provider (virtual, aws, gcp, azure) must do, one suite for all.

- nodes: create, list by tags, tag (merged), address, terminate (idempotent), never another cluster's;
- workspace: create -> status all present -> create again changes nothing -> delete -> empty inventory;
- every step of `create` (and of `delete`) failing once, before it ran or after it ran with its answer
  lost, and a re-run converging with nothing duplicated and nothing left behind.

A new provider gets the suite by adding a `Harness`: how to make its workspace and node providers, and
how to count what its cloud holds (read from the cloud or fake itself, not through the provider).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aws_inventory import EXPECTED_PUBLIC, workspace_inventory
from conftest import MotoAws
from fakes import azure as fake_azure
from fakes import gcp as fake_gcp
from fakes.envs import AzureEnv, GcpEnv, azure_fixture, gcp_fixture  # noqa: F401

from cloudtik_jupyter import paths
from cloudtik_jupyter.config.schema import VirtualProviderConfig
from cloudtik_jupyter.config.workspace import validate_workspace_config
from cloudtik_jupyter.errors import ProviderError
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.aws.node_provider import AwsNodeProvider
from cloudtik_jupyter.providers.azure.node_provider import AzureNodeProvider
from cloudtik_jupyter.providers.base import NodeProvider, NodeSpec, WorkspaceProvider
from cloudtik_jupyter.providers.common.steps import StepHooks
from cloudtik_jupyter.providers.gcp.node_provider import GcpNodeProvider
from cloudtik_jupyter.providers.virtual.node_provider import VirtualNodeProvider
from cloudtik_jupyter.providers.virtual.testing import new_key, teardown_virtual
from cloudtik_jupyter.providers.virtual.workspace import VirtualWorkspaceProvider

PROVIDERS = ["virtual", "aws", "gcp", "azure"]


class InjectedFault(ProviderError):
    pass


@dataclass
class FailOnce:
    """Step hooks making each step fail the first time it is reached (before it runs, or after)."""

    phase: str
    fired: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    def _maybe(self, step: str, phase: str) -> None:
        if phase == self.phase and step not in self.fired:
            self.fired.append(step)
            raise InjectedFault(f"injected {phase} step {step!r}")

    def before(self, step: str) -> None:
        self.seen.append(step)
        self._maybe(step, "before")

    def after(self, step: str) -> None:
        self._maybe(step, "after")


@dataclass
class Harness:
    kind: str
    workspace: Callable[[StepHooks | None], WorkspaceProvider]
    nodes: Callable[[str], NodeProvider]
    spec: Callable[[str], NodeSpec]
    inventory: Callable[[], dict[str, int]]  # the workspace's resources, counted by the cloud itself
    expected: dict[str, int]


def _counts(inv: dict[str, Any]) -> dict[str, int]:
    return {k: len(v) for k, v in inv.items() if v}


# -- one harness per provider ---------------------------------------------------------------------------


def _virtual(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    home = tmp_path / "home"
    paths.ensure_private_dir(home)
    monkeypatch.setenv("CLOUDTIK_HOME", str(home))
    monkeypatch.setenv("CLOUDTIK_VIRTUAL_IDLE_EXIT", "600")
    key = new_key(tmp_path / "id_ed25519")
    config = validate_workspace_config({"workspace_name": "ws"})

    def workspace(hooks: StepHooks | None) -> WorkspaceProvider:
        return VirtualWorkspaceProvider(VirtualProviderConfig(), "ws", config, hooks=hooks)

    def inventory() -> dict[str, int]:
        ws = paths.workspaces_dir() / "ws"
        found = {"state_dir": [ws] if ws.is_dir() else [], "address_block": list(ws.glob("workspace.json"))}
        return _counts({**found, "ssh_key": list(ws.glob("id_ed25519*"))})

    return Harness(
        "virtual",
        workspace,
        lambda cluster: VirtualNodeProvider(VirtualProviderConfig(), cluster, workspace_name="ws", home=home),
        lambda node_type: NodeSpec(node_type, {}, getpass.getuser(), key.public),
        inventory,
        {"state_dir": 1, "address_block": 1, "ssh_key": 2},
    )


def _aws(aws: MotoAws) -> Harness:
    c = aws.clients()
    image = str(c.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])

    def workspace(hooks: StepHooks | None) -> WorkspaceProvider:
        ws = aws.workspace("ws", clients=c)
        ws.hooks = hooks
        return ws

    return Harness(
        "aws",
        workspace,
        lambda cluster: AwsNodeProvider(aws.provider_config(), cluster, workspace_name="ws", clients=c),
        lambda node_type: NodeSpec(node_type, {"ImageId": image}, "spark", "ssh-ed25519 AAAA contract"),
        lambda: _counts(workspace_inventory(c, "ws")),
        EXPECTED_PUBLIC,
    )


def _gcp(gcp: GcpEnv) -> Harness:
    c = gcp.clients()
    image = {"sourceImage": "projects/debian-cloud/global/images/family/debian-12"}
    return Harness(
        "gcp",
        lambda hooks: gcp.workspace("ws", clients=c, hooks=hooks),
        lambda cluster: GcpNodeProvider(gcp.provider_config(), cluster, workspace_name="ws", clients=c),
        lambda node_type: NodeSpec(node_type, image, "spark", "ssh-ed25519 AAAA contract"),
        lambda: fake_gcp.counts(gcp.fake.inventory()),
        fake_gcp.EXPECTED_GCP,
    )


def _azure(azure: AzureEnv) -> Harness:
    c = azure.clients()
    image = {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}}
    return Harness(
        "azure",
        lambda hooks: azure.workspace("ws", clients=c, hooks=hooks),
        lambda cluster: AzureNodeProvider(azure.provider_config(), cluster, workspace_name="ws", clients=c),
        lambda node_type: NodeSpec(node_type, image, "spark", "ssh-ed25519 AAAA contract"),
        lambda: fake_azure.counts(azure.fake.inventory()),
        fake_azure.EXPECTED_AZURE,
    )


@pytest.fixture(params=PROVIDERS)
def harness(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    kind = request.param
    if kind == "virtual":
        made = _virtual(tmp_path, monkeypatch)
        try:
            yield made
        finally:
            teardown_virtual(tmp_path / "home")  # every node process, by pid; fails on leftovers
        return
    makers: dict[str, Callable[[Any], Harness]] = {"aws": _aws, "gcp": _gcp, "azure": _azure}
    yield makers[kind](request.getfixturevalue(kind))


# -- the contract -----------------------------------------------------------------------------------------


def test_nodes_create_list_tag_terminate(harness: Harness) -> None:
    harness.workspace(None).create()
    etl, other = harness.nodes("etl"), harness.nodes("other")
    assert isinstance(etl, NodeProvider)

    (head,) = etl.create_nodes(harness.spec("head"), {T.NODE_KIND: T.KIND_HEAD, T.NODE_STATUS: "pending"}, 1)
    workers = etl.create_nodes(
        harness.spec("worker"), {T.NODE_KIND: T.KIND_WORKER, T.NODE_STATUS: "pending"}, 2
    )
    (theirs,) = other.create_nodes(harness.spec("worker"), {T.NODE_KIND: T.KIND_WORKER}, 1)

    assert sorted(etl.non_terminated_nodes({})) == sorted([head, *workers])
    assert etl.non_terminated_nodes({T.NODE_KIND: T.KIND_HEAD}) == [head]
    assert other.non_terminated_nodes({}) == [theirs]
    tags = etl.node_tags(head)
    assert tags[T.CLUSTER] == "etl" and tags[T.NODE_KIND] == T.KIND_HEAD and tags[T.NODE_STATUS] == "pending"

    etl.set_node_tags(workers[0], {T.NODE_STATUS: "up-to-date", T.NODE_SEQ: "2"})
    fresh = harness.nodes("etl")  # another process's view: nothing cached
    assert fresh.node_tags(workers[0])[T.NODE_STATUS] == "up-to-date"
    assert fresh.node_tags(workers[0])[T.NODE_KIND] == T.KIND_WORKER  # merged, not replaced
    assert fresh.non_terminated_nodes({T.NODE_STATUS: "up-to-date"}) == [workers[0]]

    assert etl.address(head).external_ip and etl.address(head).internal_ip  # the public head
    assert etl.address(workers[1]).internal_ip and etl.address(workers[1]).external_ip is None

    etl.terminate_nodes([workers[0]])
    assert sorted(etl.non_terminated_nodes({})) == sorted([head, workers[1]])
    etl.terminate_nodes([workers[0]])  # idempotent
    other.terminate_nodes([head])  # not other's: untouched
    assert head in etl.non_terminated_nodes({})

    etl.terminate_nodes(etl.non_terminated_nodes({}))
    assert etl.non_terminated_nodes({}) == [] and other.non_terminated_nodes({}) == [theirs]
    other.terminate_nodes([theirs])
    harness.workspace(None).delete()
    assert harness.inventory() == {}


def test_workspace_create_status_delete(harness: Harness) -> None:
    assert harness.inventory() == {}
    ws = harness.workspace(None)

    ws.create()

    assert harness.inventory() == harness.expected
    assert all(r.present for r in ws.status())
    ws.create()  # converged: nothing more
    assert harness.inventory() == harness.expected

    ws.delete()

    assert harness.inventory() == {}
    assert not any(r.present for r in ws.status())


def _run_until_done(
    harness: Harness, action: Callable[[StepHooks], None], faults: FailOnce, steps: int
) -> list[str]:
    """Run `action` until it succeeds; every failed run must fail on a new step and duplicate nothing."""
    failures: list[str] = []
    for _ in range(steps + 1):
        try:
            action(faults)
            return failures
        except InjectedFault:
            failures.append(faults.fired[-1])
            found = harness.inventory()
            assert all(n <= harness.expected.get(k, 0) for k, n in found.items()), (faults.fired[-1], found)
    raise AssertionError(f"did not converge; failures: {failures}")


@pytest.mark.parametrize("phase", ["before", "after"])
def test_each_create_step_failing_once_converges(harness: Harness, phase: str) -> None:
    learn = FailOnce("never")
    harness.workspace(learn).create()
    harness.workspace(None).delete()
    steps = list(dict.fromkeys(learn.seen))
    assert len(steps) >= 2 and harness.inventory() == {}

    faults = FailOnce(phase)
    failures = _run_until_done(harness, lambda hooks: harness.workspace(hooks).create(), faults, len(steps))

    assert failures == steps  # each step failed once, in order, each on its own run
    assert harness.inventory() == harness.expected
    assert all(r.present for r in harness.workspace(None).status())
    harness.workspace(None).delete()
    assert harness.inventory() == {}


def test_each_delete_step_failing_once_converges(harness: Harness) -> None:
    harness.workspace(None).create()
    faults = FailOnce("before")

    failures = _run_until_done(harness, lambda hooks: harness.workspace(hooks).delete(), faults, 30)

    assert failures == faults.fired and len(failures) >= 2
    assert harness.inventory() == {}
