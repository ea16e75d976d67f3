"""Azure NodeProvider against the fake ARM: VMs with NICs, disks, public IP for the head, identities,
tags (client-side filtered), spot, and deleting everything a VM brought along."""

from __future__ import annotations

import pytest
from fakes import azure_types as AT
from fakes.azure import counts
from fakes.envs import AzureEnv, azure_fixture  # noqa: F401

from cloudtik_jupyter.config.schema import ClusterConfig
from cloudtik_jupyter.errors import ConfigError, ProviderError
from cloudtik_jupyter.providers import node_provider
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.azure.naming import AzureNames
from cloudtik_jupyter.providers.azure.node_provider import AzureNodeProvider
from cloudtik_jupyter.providers.base import NodeProvider, NodeSpec

IMAGE = {
    "imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
    "vmSize": "Standard_E8s_v5",
}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1YGvqRMcJYb2OS7rGxVOkHnDv2VaO4sdkUwlYpbUEm cloudtik-etl"
CLIENT_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKs1client0000000000000000000000000000000000 me@laptop"


@pytest.fixture
def names(azure: AzureEnv) -> AzureNames:
    azure.workspace("ws").create()
    return AzureNames("ws", azure.subscription, "cloudtik-ws")


def _nodes(azure: AzureEnv, cluster: str = "etl", **config: object) -> AzureNodeProvider:
    return AzureNodeProvider(
        azure.provider_config(**config), cluster, workspace_name="ws", clients=azure.clients()
    )


def _vm(azure: AzureEnv, name: str) -> dict:
    (vm,) = [r for r in azure.fake.of_type(AT.VM) if r.name == name]
    return vm.body


def test_head_and_workers_get_the_right_network_identity_and_keys(azure: AzureEnv, names: AzureNames) -> None:
    nodes = _nodes(azure, use_spot=True)
    assert isinstance(nodes, NodeProvider)

    (head,) = nodes.create_nodes(
        NodeSpec("head", IMAGE, "spark", f"{KEY}\n{CLIENT_KEY}"),
        {T.NODE_KIND: T.KIND_HEAD, T.NODE_STATUS: "pending"},
        1,
    )
    workers = nodes.create_nodes(NodeSpec("worker", IMAGE, "spark", KEY), {T.NODE_KIND: T.KIND_WORKER}, 3)

    h = _vm(azure, head)
    props = h["properties"]
    assert list(h["identity"]["userAssignedIdentities"]) == [names.identity_id("head")]
    assert props["hardwareProfile"] == {"vmSize": "Standard_E8s_v5"}
    linux = props["osProfile"]["linuxConfiguration"]
    assert linux["disablePasswordAuthentication"] is True and "adminPassword" not in props["osProfile"]
    assert [k["keyData"] for k in linux["ssh"]["publicKeys"]] == [KEY, CLIENT_KEY]
    assert "priority" not in props  # the head is never spot
    assert props["storageProfile"]["osDisk"]["deleteOption"] == "Delete"
    nic = azure.fake.arm.get(props["networkProfile"]["networkInterfaces"][0]["id"])
    config = nic.props["ipConfigurations"][0]["properties"]
    assert config["subnet"]["id"].endswith(names.subnet("public-subnet"))
    assert config["publicIPAddress"]["properties"]["deleteOption"] == "Delete"
    tags = nodes.node_tags(head)
    assert tags[T.CLUSTER] == "etl" and tags[T.WORKSPACE] == "ws" and tags[T.NODE_STATUS] == "pending"

    for w in workers:
        p = _vm(azure, w)["properties"]
        assert list(_vm(azure, w)["identity"]["userAssignedIdentities"]) == [names.identity_id("worker")]
        assert (p["priority"], p["evictionPolicy"]) == ("Spot", "Delete")
        assert nodes.address(w).external_ip is None and nodes.address(w).internal_ip.startswith("10.0.1.")
    address = nodes.address(head)
    assert address.internal_ip.startswith("10.0.0.") and address.external_ip
    assert counts(azure.fake.inventory())["public_ips"] == 2  # the NAT's and the head's


def test_listing_tagging_and_terminating(azure: AzureEnv, names: AzureNames) -> None:
    etl, other = _nodes(azure, "etl"), _nodes(azure, "other")
    spec = NodeSpec("worker", IMAGE, "spark", KEY)
    (head,) = etl.create_nodes(NodeSpec("head", IMAGE, "spark", KEY), {T.NODE_KIND: T.KIND_HEAD}, 1)
    workers = etl.create_nodes(spec, {T.NODE_KIND: T.KIND_WORKER}, 3)
    theirs = other.create_nodes(spec, {T.NODE_KIND: T.KIND_WORKER}, 2)
    with_workspace = {k: v for k, v in counts(azure.fake.inventory()).items()}

    assert sorted(etl.non_terminated_nodes({})) == sorted([head, *workers])
    assert etl.non_terminated_nodes({T.NODE_KIND: T.KIND_HEAD}) == [head]
    assert sorted(other.non_terminated_nodes({})) == sorted(theirs)

    _vm(azure, workers[0])["tags"]["owner"] = "someone-else"  # tags changed behind our back survive a merge
    etl.set_node_tags(workers[0], {T.NODE_STATUS: "up-to-date", T.NODE_SEQ: "2"})
    fresh = _nodes(azure, "etl")  # no cache
    assert (
        fresh.node_tags(workers[0])[T.NODE_SEQ] == "2"
        and fresh.node_tags(workers[0])["owner"] == "someone-else"
    )
    assert fresh.non_terminated_nodes({T.NODE_STATUS: "up-to-date"}) == [workers[0]]

    etl.terminate_nodes(etl.non_terminated_nodes({}))
    etl.terminate_nodes([head])  # idempotent
    other.terminate_nodes([head])  # another cluster's name: not ours to touch (already gone anyway)

    assert etl.non_terminated_nodes({}) == []
    assert sorted(other.non_terminated_nodes({})) == sorted(theirs)
    left = counts(azure.fake.inventory())
    for kind in ("virtual_machines", "network_interfaces", "disks"):
        assert left[kind] == with_workspace[kind] - 4  # each VM took its NIC and disk along
    assert left["public_ips"] == with_workspace["public_ips"] - 1  # ...and the head its IP


def test_terminate_cleans_up_what_an_interrupted_delete_left(azure: AzureEnv, names: AzureNames) -> None:
    nodes = _nodes(azure)
    (node,) = nodes.create_nodes(NodeSpec("worker", IMAGE, "spark", KEY), {T.NODE_KIND: T.KIND_WORKER}, 1)
    azure.fake.server.fail("DELETE", rf"/networkInterfaces/{node}-nic$")  # the VM goes, its NIC delete fails
    with pytest.raises(ProviderError, match="InjectedFault"):
        nodes.terminate_nodes([node])
    assert counts(azure.fake.inventory()).get("virtual_machines", 0) == 0

    nodes.terminate_nodes([node])  # the re-run finds the leftovers by name

    assert "network_interfaces" not in counts(azure.fake.inventory())
    assert "disks" not in counts(azure.fake.inventory())


def test_registry_builds_it_from_a_cluster_config(azure: AzureEnv, names: AzureNames) -> None:
    config = ClusterConfig.model_validate(
        {
            "cluster_name": "etl",
            "workspace_name": "ws",
            "provider": azure.provider_dict(),
            "head_node_type": "head",
            "available_node_types": {"head": {"node_config": IMAGE}},
        }
    )
    nodes = node_provider(config)
    assert isinstance(nodes, AzureNodeProvider) and nodes.workspace_name == "ws"
    (head,) = nodes.create_nodes(NodeSpec("head", IMAGE, "", KEY), {T.NODE_KIND: T.KIND_HEAD}, 1)
    assert _vm(azure, head)["properties"]["osProfile"]["adminUsername"] == "cloudtik"
    nodes.terminate_nodes([head])


def test_clear_errors(azure: AzureEnv) -> None:
    nodes = AzureNodeProvider(
        azure.provider_config(), "etl", workspace_name="nowhere", clients=azure.clients()
    )
    with pytest.raises(ProviderError, match="workspace 'nowhere' is missing"):
        nodes.create_nodes(NodeSpec("w", IMAGE, "spark", KEY), {}, 1)
    azure.workspace("ws").create()
    with pytest.raises(ConfigError) as err:
        _nodes(azure).create_nodes(NodeSpec("big", {"vmSize": "Standard_E8s_v5"}, "spark", KEY), {}, 1)
    assert err.value.path == "available_node_types.big.node_config.imageReference"
    with_workspace = azure.fake.inventory()
    with pytest.raises(ProviderError, match="admin username root is disallowed"):
        _nodes(azure).create_nodes(NodeSpec("w", IMAGE, "root", KEY), {}, 1)
    assert azure.fake.inventory() == with_workspace  # the NIC made before the VM was refused is gone too
