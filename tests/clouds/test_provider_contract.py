"""The provider contract: what every provider (virtual, aws, gcp, azure) must do, one suite for all.

- nodes: create, list by tags, tag (merged), address, terminate (idempotent), never another cluster's;
- listing: one cloud call whatever the cluster's size (counted where the cloud sees it: botocore event
  hooks against moto, the fake REST servers' request logs), also through a status read and the
  controller's listing (`ClusterContext.nodes`); records equal to what the per-node reads return;
- workspace: create -> status all present -> create again changes nothing -> delete -> empty inventory;
- every step of `create` (and of `delete`) failing once, before it ran or after it ran with its answer
  lost, and a re-run converging with nothing duplicated and nothing left behind.

A new provider gets the suite by adding a `Harness`: how to make its workspace and node providers, and
how to count what its cloud holds (read from the cloud or fake itself, not through the provider).
"""

from __future__ import annotations

import asyncio
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudtik_jupyter import paths
from cloudtik_jupyter.cluster.context import ClusterContext
from cloudtik_jupyter.cluster.readmodel import cluster_info, cluster_status
from cloudtik_jupyter.config import load_config
from cloudtik_jupyter.config.schema import VirtualProviderConfig
from cloudtik_jupyter.config.workspace import validate_workspace_config
from cloudtik_jupyter.errors import ProviderError
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.aws.clients import AwsClients
from cloudtik_jupyter.providers.aws.node_provider import AwsNodeProvider
from cloudtik_jupyter.providers.azure.node_provider import AzureNodeProvider
from cloudtik_jupyter.providers.base import ListedNode, NodeProvider, NodeSpec, WorkspaceProvider
from cloudtik_jupyter.providers.common.steps import StepHooks
from cloudtik_jupyter.providers.gcp.node_provider import GcpNodeProvider
from cloudtik_jupyter.providers.virtual.node_provider import VirtualNodeProvider
from cloudtik_jupyter.providers.virtual.workspace import VirtualWorkspaceProvider
from tests.virtual_nodes import new_key, teardown_virtual

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
    calls: Callable[[], list[str]] = list  # every cloud API request so far, as the cloud (or SDK) saw it


def _counts(inv: dict[str, Any]) -> dict[str, int]:
    return {k: len(v) for k, v in inv.items() if v}


def aws_calls(c: AwsClients) -> Callable[[], list[str]]:
    """Every EC2 API call made through `c` from now on, counted by a botocore event hook (one per page)."""
    seen: list[str] = []

    def hook(model: Any, **_: Any) -> None:
        seen.append(f"ec2.{model.name}")

    c.ec2.meta.events.register("before-call.ec2", hook)
    return lambda: list(seen)


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
        aws_calls(c),
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
        lambda: [f"{r.method} {r.path}" for r in gcp.fake.server.requests],
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
        lambda: [f"{r.method} {r.path}" for r in azure.fake.server.requests],
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


# -- listing: one call per listing, records equal to the per-node reads -----------------------------------

# The most calls one listing may make: a number, never a multiple of the nodes. Azure's VM list carries no
# addresses: a provider that has not seen a node's addresses yet lists the NICs (and, for a public head,
# the public IPs) once; after that a listing is the VM list alone.
COLD_CALLS = {"virtual": 0, "aws": 1, "gcp": 1, "azure": 3}
WARM_CALLS = {"virtual": 0, "aws": 1, "gcp": 1, "azure": 1}


def _config(cluster: str) -> Any:
    return load_config(
        {
            "cluster_name": cluster,
            "provider": {"type": "virtual"},  # the context's own provider is replaced by the harness's
            "head_node_type": "head",
            "available_node_types": {"head": {}, "worker": {"min_workers": 0, "max_workers": 8}},
        }
    )


class PerNodeSpy:
    """A provider that notes every per-node read (`node_tags`, `address`) made through it."""

    def __init__(self, inner: NodeProvider) -> None:
        self.inner = inner
        self.per_node: list[str] = []

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.inner, name)
        if name in ("node_tags", "address"):
            self.per_node.append(name)
        return found


def _counted(harness: Harness, action: Any) -> tuple[Any, list[str]]:
    before = len(harness.calls())
    result = action()
    return result, harness.calls()[before:]


def _launch(harness: Harness, provider: NodeProvider, workers: int, first_seq: int = 2) -> list[str]:
    spec = harness.spec("worker")
    return [
        *provider.create_nodes(
            spec, {T.NODE_KIND: T.KIND_WORKER, T.NODE_STATUS: "pending", T.NODE_SEQ: str(first_seq)}, workers
        )
    ]


def test_listing_is_one_call_whatever_the_cluster_size(harness: Harness) -> None:
    harness.workspace(None).create()
    etl = harness.nodes("etl")
    (head,) = etl.create_nodes(harness.spec("head"), {T.NODE_KIND: T.KIND_HEAD, T.NODE_SEQ: "1"}, 1)
    _launch(harness, etl, 1)

    small, small_calls = _counted(harness, lambda: harness.nodes("etl").list_nodes({}))
    _launch(harness, etl, 4, first_seq=3)
    fresh = harness.nodes("etl")  # another process: nothing known of the nodes yet
    big, big_calls = _counted(harness, lambda: fresh.list_nodes({}))
    _, warm_calls = _counted(harness, lambda: fresh.list_nodes({}))

    assert (len(small), len(big)) == (2, 6)
    assert len(big_calls) == len(small_calls) <= COLD_CALLS[harness.kind], big_calls
    assert len(warm_calls) <= WARM_CALLS[harness.kind], warm_calls
    assert {n.node_id for n in big if n.kind == T.KIND_HEAD} == {head}

    # What `cloudtik status` / `info` / the watchers and the controller's reconcile read: one listing.
    spy = PerNodeSpy(harness.nodes("etl"))
    ctx = ClusterContext(_config("etl"), provider=spy)  # type: ignore[arg-type]
    status, status_calls = _counted(harness, lambda: asyncio.run(cluster_status(ctx)))
    info, info_calls = _counted(harness, lambda: asyncio.run(cluster_info(ctx)))
    refs, nodes_calls = _counted(harness, lambda: asyncio.run(ctx.nodes(**{T.NODE_KIND: T.KIND_WORKER})))
    assert len(status.nodes) == 6 and len(info.worker_ips) == 5 and len(refs) == 5
    assert len(status_calls) <= COLD_CALLS[harness.kind], status_calls
    assert len(info_calls) <= WARM_CALLS[harness.kind], info_calls
    assert len(nodes_calls) <= WARM_CALLS[harness.kind], nodes_calls
    assert spy.per_node == []  # never `node_tags` / `address` per node, whatever they would cost

    etl.terminate_nodes(etl.non_terminated_nodes({}))
    harness.workspace(None).delete()


def _same_as_per_node_reads(harness: Harness, listed: list[ListedNode]) -> None:
    """Each record equals what `node_tags` and `address` of a provider that cached nothing return."""
    for node in listed:
        cold = harness.nodes("etl")
        assert dict(node.tags) == cold.node_tags(node.node_id)
        assert node.address == harness.nodes("etl").address(node.node_id)


def test_records_equal_the_per_node_reads(harness: Harness) -> None:
    harness.workspace(None).create()
    etl = harness.nodes("etl")
    (head,) = etl.create_nodes(harness.spec("head"), {T.NODE_KIND: T.KIND_HEAD, T.NODE_SEQ: "1"}, 1)
    workers = _launch(harness, etl, 3)
    nodes = [head, *workers]
    values = ["pending", "up-to-date", "update-failed"]

    @settings(
        max_examples=12,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        changes=st.lists(st.tuples(st.sampled_from(nodes), st.sampled_from(values)), max_size=2),
        wanted=st.dictionaries(
            st.sampled_from([T.NODE_KIND, T.NODE_STATUS]),
            st.sampled_from([T.KIND_HEAD, T.KIND_WORKER, *values]),
            max_size=2,
        ),
    )
    def check(changes: list[tuple[str, str]], wanted: dict[str, str]) -> None:
        for node_id, value in changes:
            etl.set_node_tags(node_id, {T.NODE_STATUS: value})
        listed = harness.nodes("etl").list_nodes(wanted)
        expected = {n for n in nodes if wanted.items() <= harness.nodes("etl").node_tags(n).items()}
        assert {n.node_id for n in listed} == expected
        assert sorted(etl.non_terminated_nodes(wanted)) == sorted(expected)
        _same_as_per_node_reads(harness, listed)
        for node in listed:  # frozen: a view cannot change what another view of the same listing shows
            with pytest.raises(TypeError):
                node.tags[T.NODE_STATUS] = "x"  # type: ignore[index]
            with pytest.raises(AttributeError):
                node.node_id = "x"  # type: ignore[misc]

    check()
    etl.terminate_nodes(nodes)
    harness.workspace(None).delete()
