"""Azure workspace lifecycle against the fake ARM: create -> status -> delete leaves nothing; idempotence;
modes; refusals. The fake is driven through the real azure-mgmt-* clients."""

from __future__ import annotations

import pytest
from fakes import azure_types as AT
from fakes.azure import EXPECTED_AZURE, counts, leaks
from fakes.envs import USER_CIDR, AzureEnv, azure_fixture  # noqa: F401

from cloudtik_jupyter.errors import ConfigError, ProviderError
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.azure import naming as N
from cloudtik_jupyter.providers.azure.naming import AzureNames
from cloudtik_jupyter.providers.azure.node_provider import AzureNodeProvider
from cloudtik_jupyter.providers.base import NodeSpec

IMAGE = {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}}
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1YGvqRMcJYb2OS7rGxVOkHnDv2VaO4sdkUwlYpbUEm cloudtik-etl"


def _names(azure: AzureEnv, ws: str = "ws") -> AzureNames:
    return AzureNames(ws, azure.subscription, f"cloudtik-{ws}")


def _one(azure: AzureEnv, rtype: str, name: str) -> dict:
    (found,) = [r for r in azure.fake.of_type(rtype) if r.name == name]
    return found.body


def _launch(azure: AzureEnv, cluster: str, count: int) -> AzureNodeProvider:
    nodes = AzureNodeProvider(azure.provider_config(), cluster, workspace_name="ws", clients=azure.clients())
    nodes.create_nodes(NodeSpec("worker", IMAGE, "spark", KEY), {T.NODE_KIND: T.KIND_WORKER}, count)
    return nodes


def test_create_status_delete_leaves_nothing(azure: AzureEnv) -> None:
    before = azure.fake.inventory()
    ws = azure.workspace("analytics")

    ws.create()

    assert counts(azure.fake.inventory()) == EXPECTED_AZURE
    status = ws.status()
    assert [r.name for r in status if not r.present] == []
    assert {r.name for r in status} >= {
        N.VIRTUAL_NETWORK,
        N.NAT_GATEWAY,
        N.NSG,
        N.STORAGE_ACCOUNT,
        N.ROLE_ASSIGNMENTS,
    }
    assert ws.info()["networking"] == "public"

    ws.delete()

    assert leaks(before, azure.fake.inventory()) == {}
    assert not any(r.present for r in ws.status())


def test_topology_firewall_storage_and_tags(azure: AzureEnv) -> None:
    azure.workspace("ws").create()
    names = _names(azure)

    public = _one(azure, AT.SUBNET, names.subnet(N.PUBLIC_SUBNET))["properties"]
    private = _one(azure, AT.SUBNET, names.subnet(N.PRIVATE_SUBNET))["properties"]
    assert [public["addressPrefix"], private["addressPrefix"]] == ["10.0.0.0/24", "10.0.1.0/24"]
    assert "natGateway" not in public and private["natGateway"]["id"].endswith(f"natGateways/{names.nat}")
    assert public["networkSecurityGroup"] == private["networkSecurityGroup"]

    (rule,) = _one(azure, AT.NSG, names.nsg)["properties"]["securityRules"]
    assert rule["properties"]["sourceAddressPrefixes"] == [USER_CIDR]
    assert rule["properties"]["destinationPortRange"] == "22" and rule["properties"]["access"] == "Allow"
    assert "sourceAddressPrefix" not in rule["properties"]  # never "*" or "Internet"

    account = _one(azure, AT.STORAGE, names.storage_account)
    assert account["properties"] == {
        "allowBlobPublicAccess": False,
        "allowSharedKeyAccess": False,
        "supportsHttpsTrafficOnly": True,
        "minimumTlsVersion": "TLS1_2",
    }
    tagged = [
        AT.VNET,
        AT.NSG,
        AT.PUBLIC_IP,
        AT.NAT,
        AT.IDENTITY,
        AT.STORAGE,
        "Microsoft.Resources/resourceGroups",
    ]
    for rtype in tagged:
        for r in azure.fake.of_type(rtype):
            assert r.body["tags"][T.WORKSPACE] == "ws" and N.RESOURCE in r.body["tags"], r.id


def test_create_again_changes_nothing(azure: AzureEnv) -> None:
    ws = azure.workspace("ws")
    ws.create()
    first = azure.fake.inventory()
    azure.fake.server.clear_log()

    ws.create()

    assert azure.fake.server.mutations() == []  # a converged workspace is only read
    assert azure.fake.inventory() == first
    ws.delete()
    ws.delete()  # deleting a deleted workspace is a no-op
    assert counts(azure.fake.inventory()) == {}


def test_update_converges_ssh_sources(azure: AzureEnv) -> None:
    azure.workspace("ws", allowed_ssh_cidrs=["198.51.100.7/32", USER_CIDR]).create()
    nsg = _names(azure).nsg

    def sources() -> list[str]:
        rule = _one(azure, AT.NSG, nsg)["properties"]["securityRules"][0]
        return list(rule["properties"]["sourceAddressPrefixes"])

    assert sources() == ["198.51.100.7/32", USER_CIDR]

    azure.workspace("ws", allowed_ssh_cidrs=["198.51.100.7/32"]).create()  # `update`

    assert sources() == ["198.51.100.7/32"]


def test_bad_input_creates_nothing(azure: AzureEnv) -> None:
    missing = f"/subscriptions/{azure.subscription}/resourceGroups/client/providers/Microsoft.Network/virtualNetworks/nope"
    with pytest.raises(ConfigError) as err:
        azure.workspace("ws", mode="peering", peer_vpc_id=missing).create()
    assert err.value.path == "networking.peer_vpc_id"
    with pytest.raises(ConfigError) as err:
        azure.workspace("ws", mode="shared-vpc", vpc_id="not-an-id").create()
    assert err.value.path == "networking.vpc_id"
    client = azure.fake.add_vnet("client", "client-vnet", "10.0.0.0/16", {"default": "10.0.0.0/24"})
    before = azure.fake.inventory()
    with pytest.raises(ConfigError) as err:
        azure.workspace("ws", mode="peering", peer_vpc_id=client).create()
    assert err.value.path == "networking.vpc_cidr" and "overlaps" in err.value.message
    assert azure.fake.inventory() == before


def test_peering_mode(azure: AzureEnv) -> None:
    client = azure.fake.add_vnet("client", "client-vnet", "192.168.0.0/16", {"default": "192.168.4.0/24"})
    before = azure.fake.inventory()
    ws = azure.workspace("ws", mode="peering", peer_vpc_id=client, allowed_ssh_cidrs=[])
    ws.create()
    names = _names(azure)

    peerings = azure.fake.of_type(AT.PEERING)
    assert sorted(p.parent.rsplit("/", 1)[-1] for p in peerings) == sorted(["client-vnet", names.vnet])
    assert {p.props["peeringState"] for p in peerings} == {"Connected"}
    rule = _one(azure, AT.NSG, names.nsg)["properties"]["securityRules"][0]["properties"]
    assert rule["sourceAddressPrefixes"] == ["192.168.0.0/16"]  # the client's network
    assert all(r.present for r in ws.status())
    nodes = AzureNodeProvider(azure.provider_config(), "etl", workspace_name="ws", clients=azure.clients())
    (head,) = nodes.create_nodes(NodeSpec("head", IMAGE, "spark", KEY), {T.NODE_KIND: T.KIND_HEAD}, 1)
    assert nodes.address(head).external_ip is None  # reached over the peering, never from the internet
    nodes.terminate_nodes([head])

    ws.delete()

    assert leaks(before, azure.fake.inventory()) == {}  # the client's side of the peering too


def test_shared_network_mode(azure: AzureEnv) -> None:
    shared = azure.fake.add_vnet("network-team", "shared", "10.0.0.0/16", {"existing": "10.0.0.0/24"})
    before = azure.fake.inventory()
    ws = azure.workspace("ws", mode="shared-vpc", vpc_id=shared, allowed_ssh_cidrs=[])
    ws.create()
    names = _names(azure)

    assert [v.name for v in azure.fake.of_type(AT.VNET)] == ["shared"]  # no network of our own
    ranges = {s.name: s.props["addressPrefix"] for s in azure.fake.of_type(AT.SUBNET)}
    assert ranges == {
        "existing": "10.0.0.0/24",
        names.subnet(N.PUBLIC_SUBNET): "10.0.1.0/24",
        names.subnet(N.PRIVATE_SUBNET): "10.0.2.0/24",
    }
    status = {r.name: r for r in ws.status()}
    assert status[N.VIRTUAL_NETWORK].present and "(shared)" in status[N.VIRTUAL_NETWORK].detail
    nodes = _launch(azure, "etl", 1)
    nodes.terminate_nodes(nodes.non_terminated_nodes({}))

    ws.delete()

    assert leaks(before, azure.fake.inventory()) == {}
    assert azure.fake.arm.get(f"{shared}/subnets/existing") is not None


def test_delete_refuses_while_clusters_run_or_storage_holds_data(azure: AzureEnv) -> None:
    before = azure.fake.inventory()
    ws = azure.workspace("ws")
    ws.create()
    nodes = _launch(azure, "etl", 2)
    azure.fake.add_container(_names(azure).storage_account_id, "results")

    with pytest.raises(ProviderError, match=r"2 instance\(s\) running \(clusters: etl\)"):
        ws.delete()
    assert counts(azure.fake.inventory())["virtual_machines"] == 2 and all(r.present for r in ws.status())
    nodes.terminate_nodes(nodes.non_terminated_nodes({}))
    with pytest.raises(ProviderError, match="still holds objects"):
        ws.delete()
    _launch(azure, "etl", 1)

    ws.delete(force=True)

    assert leaks(before, azure.fake.inventory()) == {}


def test_a_resource_group_with_foreign_resources_is_kept(azure: AzureEnv) -> None:
    ws = azure.workspace("ws")
    ws.create()
    names = _names(azure)
    theirs = azure.fake.add(
        names.resource_id(AT.PUBLIC_IP, "someone-elses-ip"), AT.PUBLIC_IP, {"location": "westus2"}
    )

    with pytest.raises(ProviderError, match="still holds resources the workspace did not make"):
        ws.delete()

    assert {r.id for r in azure.fake.of_type(AT.PUBLIC_IP)} == {theirs}  # everything of ours is gone
    assert [g.name for g in azure.fake.of_type("Microsoft.Resources/resourceGroups")] == [
        names.resource_group
    ]


def test_two_workspaces_never_touch_each_other(azure: AzureEnv) -> None:
    a, b = azure.workspace("team-a"), azure.workspace("team-b")
    a.create()
    with_a = azure.fake.inventory()
    b.create()
    b.delete()
    assert azure.fake.inventory() == with_a
    assert all(r.present for r in a.status())
    a.delete()
