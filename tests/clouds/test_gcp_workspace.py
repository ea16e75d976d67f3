"""GCP workspace lifecycle against the fake: create -> status -> delete leaves nothing; idempotence; modes;
refusals. The fake is driven through the real google-cloud-compute and discovery clients."""

from __future__ import annotations

import pytest
from fakes.envs import USER_CIDR, GcpEnv, gcp_fixture  # noqa: F401
from fakes.gcp import EXPECTED_GCP, counts, leaks

from cloudtik_jupyter.errors import ConfigError, ProviderError
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.base import NodeSpec
from cloudtik_jupyter.providers.gcp import naming as N
from cloudtik_jupyter.providers.gcp.naming import GcpNames
from cloudtik_jupyter.providers.gcp.node_provider import GcpNodeProvider

IMAGE = "projects/debian-cloud/global/images/family/debian-12"


def _launch(gcp: GcpEnv, cluster: str, count: int, workspace: str = "ws") -> GcpNodeProvider:
    nodes = GcpNodeProvider(gcp.provider_config(), cluster, workspace_name=workspace, clients=gcp.clients())
    nodes.create_nodes(NodeSpec("worker", {"sourceImage": IMAGE}), {T.NODE_KIND: T.KIND_WORKER}, count)
    return nodes


def test_create_status_delete_leaves_nothing(gcp: GcpEnv) -> None:
    before = gcp.fake.inventory()
    ws = gcp.workspace("analytics")

    ws.create()

    assert counts(gcp.fake.inventory()) == EXPECTED_GCP
    status = ws.status()
    assert [r.name for r in status if not r.present] == []
    assert {r.name for r in status} >= {
        N.NETWORK,
        N.NAT,
        N.SSH_FIREWALL,
        N.BUCKET,
        N.HEAD_ROLE,
        N.ACT_AS_WORKER,
    }
    assert ws.info()["networking"] == "public"

    ws.delete()

    assert leaks(before, gcp.fake.inventory()) == {}
    assert not any(r.present for r in ws.status())


def test_topology_firewall_and_bucket(gcp: GcpEnv) -> None:
    gcp.workspace("ws").create()
    c, names = gcp.fake.compute, GcpNames("ws", gcp.project)

    public = c.subnetworks[(gcp.region, names.subnet(N.PUBLIC_SUBNET))]
    private = c.subnetworks[(gcp.region, names.subnet(N.PRIVATE_SUBNET))]
    assert [public["ipCidrRange"], private["ipCidrRange"]] == ["10.0.0.0/24", "10.0.1.0/24"]
    assert private["privateIpGoogleAccess"] is True  # the bucket without the NAT
    assert not public.get("privateIpGoogleAccess")
    (nat,) = c.routers[(gcp.region, names.router)]["nats"]
    assert nat["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS"
    assert [s["name"] for s in nat["subnetworks"]] == [private["selfLink"]]  # only the private subnet

    ssh = c.firewalls[names.ssh_firewall]
    assert ssh["sourceRanges"] == [USER_CIDR]
    assert ssh["allowed"] == [{"IPProtocol": "tcp", "ports": ["22"]}]
    assert ssh["targetTags"] == [names.network_tag]
    internal = c.firewalls[names.internal_firewall]
    assert internal["sourceTags"] == internal["targetTags"] == [names.network_tag]
    assert "sourceRanges" not in internal
    assert not any("0.0.0.0/0" in f.get("sourceRanges", []) for f in c.firewalls.values())

    bucket = gcp.fake.iam.buckets[names.bucket]
    assert bucket["iamConfiguration"] == {
        "uniformBucketLevelAccess": {"enabled": True},
        "publicAccessPrevention": "enforced",
    }
    assert bucket["labels"] == {T.WORKSPACE: "ws", N.RESOURCE: N.BUCKET}


def test_create_again_changes_nothing(gcp: GcpEnv) -> None:
    ws = gcp.workspace("ws")
    ws.create()
    first = gcp.fake.inventory()
    gcp.fake.server.clear_log()

    ws.create()

    assert gcp.fake.mutations() == []  # a converged workspace is only read
    assert gcp.fake.inventory() == first
    ws.delete()
    ws.delete()  # deleting a deleted workspace is a no-op
    assert counts(gcp.fake.inventory()) == {}


def test_update_converges_ssh_sources(gcp: GcpEnv) -> None:
    gcp.workspace("ws", allowed_ssh_cidrs=["198.51.100.7/32", USER_CIDR]).create()
    rule = GcpNames("ws", gcp.project).ssh_firewall
    assert gcp.fake.compute.firewalls[rule]["sourceRanges"] == ["198.51.100.7/32", USER_CIDR]

    gcp.workspace("ws", allowed_ssh_cidrs=["198.51.100.7/32"]).create()  # `update`

    assert gcp.fake.compute.firewalls[rule]["sourceRanges"] == ["198.51.100.7/32"]


def test_bad_input_creates_nothing(gcp: GcpEnv) -> None:
    before = gcp.fake.inventory()
    with pytest.raises(ConfigError) as err:
        gcp.workspace("ws", mode="peering", peer_vpc_id="no-such-network").create()
    assert err.value.path == "networking.peer_vpc_id"
    with pytest.raises(ConfigError) as err:
        gcp.workspace("ws", mode="shared-vpc", vpc_id="no-such-network").create()
    assert err.value.path == "networking.vpc_id"
    gcp.fake.add_network("client", {"client-subnet": "10.0.4.0/24"})
    with pytest.raises(ConfigError) as err:
        gcp.workspace("ws", mode="peering", peer_vpc_id="client").create()
    assert err.value.path == "networking.vpc_cidr" and "overlaps" in err.value.message
    assert counts(gcp.fake.inventory()) == counts(before) | {"networks": 1, "subnetworks": 1}


def test_peering_mode(gcp: GcpEnv) -> None:
    gcp.fake.add_network("client", {"client-subnet": "192.168.4.0/24"})
    ws = gcp.workspace("ws", mode="peering", peer_vpc_id="client", allowed_ssh_cidrs=[])
    ws.create()
    c, names = gcp.fake.compute, GcpNames("ws", gcp.project)

    ours, theirs = c.networks[names.network]["peerings"], c.networks["client"]["peerings"]
    assert [(p["name"], p["state"]) for p in ours] == [(names.peering, "ACTIVE")]
    assert [(p["name"], p["state"]) for p in theirs] == [(names.peering, "ACTIVE")]
    assert c.firewalls[names.ssh_firewall]["sourceRanges"] == ["192.168.4.0/24"]  # the client's network
    assert all(r.present for r in ws.status())
    nodes = GcpNodeProvider(gcp.provider_config(), "etl", workspace_name="ws", clients=gcp.clients())
    (head,) = nodes.create_nodes(NodeSpec("head", {"sourceImage": IMAGE}), {T.NODE_KIND: T.KIND_HEAD}, 1)
    assert nodes.address(head).external_ip is None  # reached over the peering, never from the internet
    nodes.terminate_nodes([head])

    ws.delete()

    assert c.networks["client"]["peerings"] == []  # our side of the client's network is gone too
    assert set(c.networks) == {"client"}


def test_shared_network_mode(gcp: GcpEnv) -> None:
    gcp.fake.add_network("shared", {"existing": "10.0.0.0/24"})
    before = gcp.fake.inventory()
    ws = gcp.workspace("ws", mode="shared-vpc", vpc_id="shared", allowed_ssh_cidrs=[])
    ws.create()
    c, names = gcp.fake.compute, GcpNames("ws", gcp.project)

    assert names.network not in c.networks  # no network of our own
    ranges = {s["name"]: s["ipCidrRange"] for s in c.subnetworks.values()}
    assert ranges == {
        "existing": "10.0.0.0/24",
        names.subnet(N.PUBLIC_SUBNET): "10.0.1.0/24",
        names.subnet(N.PRIVATE_SUBNET): "10.0.2.0/24",
    }
    assert c.firewalls[names.ssh_firewall]["sourceRanges"] == ["10.0.0.0/24"]
    status = {r.name: r for r in ws.status()}
    assert status[N.NETWORK].present and "(shared)" in status[N.NETWORK].detail

    ws.delete()

    assert leaks(before, gcp.fake.inventory()) == {}
    assert "shared" in c.networks and ("us-central1", "existing") in c.subnetworks


def test_delete_refuses_while_clusters_run_or_the_bucket_holds_data(gcp: GcpEnv) -> None:
    before = gcp.fake.inventory()
    ws = gcp.workspace("ws")
    ws.create()
    nodes = _launch(gcp, "etl", 2)
    gcp.fake.put_object(GcpNames("ws", gcp.project).bucket, "data/part-0")

    with pytest.raises(ProviderError, match=r"2 instance\(s\) running \(clusters: etl\)"):
        ws.delete()
    assert len(gcp.fake.compute.instances) == 2 and all(r.present for r in ws.status())
    nodes.terminate_nodes(nodes.non_terminated_nodes({}))
    with pytest.raises(ProviderError, match="still holds objects"):
        ws.delete()
    _launch(gcp, "etl", 1)

    ws.delete(force=True)

    assert leaks(before, gcp.fake.inventory()) == {}


def test_a_deleted_role_is_undeleted_when_the_workspace_comes_back(gcp: GcpEnv) -> None:
    ws = gcp.workspace("ws")
    ws.create()
    ws.delete()
    role = gcp.fake.iam.roles[GcpNames("ws", gcp.project).head_role_id]
    assert role["deleted"]  # soft-deleted: GCP keeps the id taken for a while

    ws.create()

    assert "deleted" not in role and all(r.present for r in ws.status())


def test_long_workspace_names_fit_gcp_limits(gcp: GcpEnv) -> None:
    name = "analytics-team-europe-west-production-01"  # 40 characters, the longest allowed
    ws = gcp.workspace(name)
    ws.create()
    names = GcpNames(name, gcp.project)
    assert all(len(names.account_id(kind)) <= 30 for kind in ("head", "worker"))
    assert all(r.present for r in ws.status())
    ws.delete()
    assert counts(gcp.fake.inventory()) == {}


def test_two_workspaces_never_touch_each_other(gcp: GcpEnv) -> None:
    a, b = gcp.workspace("team-a"), gcp.workspace("team-b", vpc_cidr="10.8.0.0/16")
    a.create()
    with_a = gcp.fake.inventory()
    b.create()
    b.delete()
    assert gcp.fake.inventory() == with_a
    assert all(r.present for r in a.status())
    a.delete()
