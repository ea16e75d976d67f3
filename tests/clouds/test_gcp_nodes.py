"""GCP NodeProvider against the fake: placement, identity, labels, metadata, spot, tags, termination."""

from __future__ import annotations

import pytest
from fakes.envs import GcpEnv, gcp_fixture  # noqa: F401
from fakes.gcp import counts

from cloudtik_jupyter.config.schema import ClusterConfig
from cloudtik_jupyter.errors import ConfigError, ProviderError
from cloudtik_jupyter.providers import node_provider
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.base import NodeProvider, NodeSpec
from cloudtik_jupyter.providers.gcp.naming import GcpNames
from cloudtik_jupyter.providers.gcp.node_provider import GcpNodeProvider

IMAGE = "projects/debian-cloud/global/images/family/debian-12"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1YGvqRMcJYb2OS7rGxVOkHnDv2VaO4sdkUwlYpbUEm cloudtik-etl"
CLIENT_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKs1client0000000000000000000000000000000000 me@laptop"
ZONE = "us-central1-a"


def _spec(node_type: str = "worker", keys: str = KEY) -> NodeSpec:
    return NodeSpec(node_type, {"sourceImage": IMAGE, "machineType": "n2-standard-8"}, "spark", keys)


@pytest.fixture
def names(gcp: GcpEnv) -> GcpNames:
    gcp.workspace("ws").create()
    return GcpNames("ws", gcp.project)


def _nodes(gcp: GcpEnv, cluster: str = "etl", **config: object) -> GcpNodeProvider:
    return GcpNodeProvider(gcp.provider_config(**config), cluster, workspace_name="ws", clients=gcp.clients())


def test_head_and_workers_land_in_the_right_subnets_with_the_right_identity(
    gcp: GcpEnv, names: GcpNames
) -> None:
    nodes = _nodes(gcp, use_preemptible=True)
    assert isinstance(nodes, NodeProvider)

    (head,) = nodes.create_nodes(
        _spec("head", f"{KEY}\n{CLIENT_KEY}"), {T.NODE_KIND: T.KIND_HEAD, T.NODE_STATUS: "pending"}, 1
    )
    workers = nodes.create_nodes(_spec(), {T.NODE_KIND: T.KIND_WORKER}, 3)

    instances = gcp.fake.compute.instances
    h = instances[(ZONE, head)]
    assert h["networkInterfaces"][0]["subnetwork"].endswith(f"subnetworks/{names.subnet('public-subnet')}")
    assert h["networkInterfaces"][0]["accessConfigs"][0]["type"] == "ONE_TO_ONE_NAT"
    assert h["serviceAccounts"] == [
        {"email": names.email("head"), "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
    ]
    assert h["tags"] == {"items": [names.network_tag]}  # what the firewall rules apply to
    assert h["machineType"].endswith(f"zones/{ZONE}/machineTypes/n2-standard-8")
    assert h["scheduling"] == {"automaticRestart": True, "onHostMaintenance": "MIGRATE"}  # never spot
    metadata = {i["key"]: i["value"] for i in h["metadata"]["items"]}
    assert metadata["ssh-keys"] == f"spark:{KEY}\nspark:{CLIENT_KEY}"
    assert metadata["block-project-ssh-keys"] == "TRUE"
    boot = h["disks"][0]
    assert boot["boot"] and boot["autoDelete"]
    labels = nodes.node_tags(head)
    assert labels[T.CLUSTER] == "etl" and labels[T.WORKSPACE] == "ws" and labels[T.NODE_STATUS] == "pending"
    assert labels[T.NODE_KIND] == T.KIND_HEAD and labels[T.NODE_TYPE] == "head"

    for w in workers:
        i = instances[(ZONE, w)]
        assert i["networkInterfaces"][0]["subnetwork"].endswith(
            f"subnetworks/{names.subnet('private-subnet')}"
        )
        assert "accessConfigs" not in i["networkInterfaces"][0]
        assert i["serviceAccounts"][0]["email"] == names.email("worker")
        assert i["scheduling"]["provisioningModel"] == "SPOT"
        assert i["scheduling"]["instanceTerminationAction"] == "DELETE"

    address = nodes.address(head)
    assert address.internal_ip.startswith("10.0.0.") and address.external_ip
    assert nodes.address(workers[0]).internal_ip.startswith("10.0.1.")
    assert nodes.address(workers[0]).external_ip is None


def test_listing_tagging_and_terminating(gcp: GcpEnv, names: GcpNames) -> None:
    etl, other = _nodes(gcp, "etl"), _nodes(gcp, "other")
    (head,) = etl.create_nodes(_spec("head"), {T.NODE_KIND: T.KIND_HEAD}, 1)
    workers = etl.create_nodes(_spec(), {T.NODE_KIND: T.KIND_WORKER}, 3)
    theirs = other.create_nodes(_spec(), {T.NODE_KIND: T.KIND_WORKER}, 2)

    assert sorted(etl.non_terminated_nodes({})) == sorted([head, *workers])
    assert etl.non_terminated_nodes({T.NODE_KIND: T.KIND_HEAD}) == [head]
    assert sorted(other.non_terminated_nodes({})) == sorted(theirs)

    etl.set_node_tags(workers[0], {T.NODE_STATUS: "up-to-date", T.NODE_SEQ: "2"})
    fresh = _nodes(gcp, "etl")  # no cache
    assert fresh.node_tags(workers[0])[T.NODE_SEQ] == "2"
    assert fresh.non_terminated_nodes({T.NODE_STATUS: "up-to-date"}) == [workers[0]]

    etl.terminate_nodes(etl.non_terminated_nodes({}))
    etl.terminate_nodes([head])  # idempotent

    assert etl.non_terminated_nodes({}) == []
    assert sorted(other.non_terminated_nodes({})) == sorted(theirs)
    assert counts(gcp.fake.inventory())["disks"] == 2  # the boot disks went with their instances


def test_labels_are_merged_under_their_fingerprint(gcp: GcpEnv, names: GcpNames) -> None:
    nodes = _nodes(gcp)
    (node,) = nodes.create_nodes(_spec(), {T.NODE_KIND: T.KIND_WORKER}, 1)
    instance = gcp.fake.compute.instances[(ZONE, node)]
    instance["labels"] = {**instance["labels"], "owner": "someone-else"}  # changed behind our back
    # ...and changed again between our read and our write: GCP refuses the stale fingerprint once.
    stale = gcp.fake.server.fail("POST", rf"/instances/{node}/setLabels$", status=412, code="conditionNotMet")

    nodes.set_node_tags(node, {T.NODE_STATUS: "up-to-date"})

    assert len(stale.fired) == 1  # refused once, re-read, written
    labels = gcp.fake.compute.instances[(ZONE, node)]["labels"]
    assert labels["owner"] == "someone-else" and labels[T.NODE_STATUS] == "up-to-date"
    assert nodes.node_tags(node)[T.NODE_STATUS] == "up-to-date"
    gcp.fake.server.fail("POST", rf"/instances/{node}/setLabels$")  # any other failure surfaces
    with pytest.raises(ProviderError, match="InjectedFault"):
        nodes.set_node_tags(node, {T.NODE_STATUS: "setting-up"})
    with pytest.raises(ProviderError, match="can't be a GCP label"):
        nodes.set_node_tags(node, {T.NODE_NAME: "Has Spaces"})


def test_registry_builds_it_from_a_cluster_config(gcp: GcpEnv, names: GcpNames) -> None:
    config = ClusterConfig.model_validate(
        {
            "cluster_name": "etl",
            "workspace_name": "ws",
            "provider": gcp.provider_dict(),
            "head_node_type": "head",
            "available_node_types": {"head": {"node_config": {"sourceImage": IMAGE}}},
        }
    )
    nodes = node_provider(config)
    assert isinstance(nodes, GcpNodeProvider) and nodes.workspace_name == "ws"
    (head,) = nodes.create_nodes(
        NodeSpec("head", config.available_node_types["head"].node_config), {T.NODE_KIND: T.KIND_HEAD}, 1
    )
    assert nodes.address(head).external_ip
    nodes.terminate_nodes([head])


def test_clear_errors(gcp: GcpEnv) -> None:
    nodes = GcpNodeProvider(gcp.provider_config(), "etl", workspace_name="nowhere", clients=gcp.clients())
    with pytest.raises(ProviderError, match="workspace 'nowhere' is missing"):
        nodes.create_nodes(_spec(), {}, 1)
    gcp.workspace("ws").create()
    with pytest.raises(ConfigError) as err:
        _nodes(gcp).create_nodes(NodeSpec("big", {"machineType": "n2-standard-8"}), {}, 1)
    assert err.value.path == "available_node_types.big.node_config.sourceImage"
    with pytest.raises(ConfigError) as err:
        _nodes(gcp).create_nodes(NodeSpec("big", {"sourceImage": IMAGE, "InstanceType": "m5"}), {}, 1)
    assert err.value.path == "available_node_types.big.node_config.InstanceType"
    with pytest.raises(ProviderError, match="The referenced image resource cannot be found"):
        _nodes(gcp).create_nodes(NodeSpec("big", {"sourceImage": "debian-12"}), {}, 1)
    assert _nodes(gcp).non_terminated_nodes({}) == []
