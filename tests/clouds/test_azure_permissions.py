"""The Azure head's role assignments cover exactly what the node provider does, also when the
workspace's subnets are in a shared network of another resource group, and the user's role exactly what
create/delete/up/down do.

Every ARM request the node provider makes, as the head's controller would, becomes the RBAC checks ARM
makes for it (linked access included: a NIC joining a subnet of the other group), evaluated against the
head identity's assignments as the fake holds them.
"""

from __future__ import annotations

from azure_permissions import Check, Grants, actions_of, requests_since
from fakes import azure_types as AT
from fakes.envs import AzureEnv, azure_fixture  # noqa: F401

from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.azure.naming import AzureNames
from cloudtik_jupyter.providers.azure.node_provider import AzureNodeProvider
from cloudtik_jupyter.providers.azure.roles import HEAD_ACTIONS, USER_ACTIONS
from cloudtik_jupyter.providers.base import NodeSpec
from cloudtik_jupyter.providers.common.lock import LockRecord

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1YGvqRMcJYb2OS7rGxVOkHnDv2VaO4sdkUwlYpbUEm cloudtik-etl"
IMAGE = {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}}


def _checks(azure: AzureEnv, mark: int) -> list[Check]:
    return [c for r in requests_since(azure.fake, mark) for c in actions_of(r)]


def _head_operations(azure: AzureEnv) -> list[Check]:
    mark = len(azure.fake.server.requests)
    for spot in (False, True):
        nodes = AzureNodeProvider(
            azure.provider_config(use_spot=spot), "etl", workspace_name="ws", clients=azure.clients()
        )
        workers = nodes.create_nodes(NodeSpec("w", IMAGE, "u", KEY), {T.NODE_KIND: T.KIND_WORKER}, 2)
        fresh = AzureNodeProvider(
            azure.provider_config(), "etl", workspace_name="ws", clients=azure.clients()
        )
        assert sorted(fresh.non_terminated_nodes({T.NODE_KIND: T.KIND_WORKER})) == sorted(workers)
        fresh.set_node_tags(workers[0], {T.NODE_STATUS: "up-to-date"})
        assert fresh.node_tags(workers[0])[T.NODE_STATUS] == "up-to-date"
        assert fresh.address(workers[1]).internal_ip
        fresh.terminate_nodes(workers)
    return _checks(azure, mark)


def _head(azure: AzureEnv) -> Grants:
    names = AzureNames("ws", azure.subscription, "cloudtik-ws")
    (head,) = [i for i in azure.fake.of_type(AT.IDENTITY) if i.name == names.identity("head")]
    return Grants(azure.fake, head.props["principalId"])


def test_the_head_holds_exactly_what_the_node_provider_does(azure: AzureEnv) -> None:
    azure.workspace("ws").create()
    head = _head(azure)

    checks = _head_operations(azure)

    assert {c.action for c in checks} >= {
        "Microsoft.Compute/virtualMachines/write",
        "Microsoft.Network/virtualNetworks/subnets/join/action",
        f"{AT.IDENTITY}/assign/action",
    }
    assert head.denied(checks) == []
    assert set(HEAD_ACTIONS) - {c.action for c in checks} == set()  # nothing nobody uses
    # Not the head identity, not outside the workspace's group.
    other = "/subscriptions/00000000-0000-0000-0000-00000000c10d/resourceGroups/prod"
    outside = [
        Check(
            "Microsoft.Compute/virtualMachines/delete",
            f"{other}/providers/Microsoft.Compute/virtualMachines/db",
        ),
        Check(
            f"{AT.IDENTITY}/assign/action",
            AzureNames("ws", azure.subscription, "cloudtik-ws").identity_id("head"),
        ),
    ]
    assert len(head.denied(outside)) == len(outside)


def test_the_head_joins_the_workspace_subnets_of_a_shared_network_in_another_group(azure: AzureEnv) -> None:
    shared = azure.fake.add_vnet("network-team", "shared", "10.0.0.0/16", {"existing": "10.0.0.0/24"})
    ws = azure.workspace("ws", mode="shared-vpc", vpc_id=shared, allowed_ssh_cidrs=[])
    ws.create()
    head = _head(azure)

    checks = _head_operations(azure)

    joins = [c for c in checks if c.action.endswith("subnets/join/action")]
    assert joins and all("/resourceGroups/network-team/" in c.resource for c in joins)
    assert head.denied(checks) == []
    theirs = Check("Microsoft.Network/virtualNetworks/subnets/join/action", f"{shared}/subnets/existing")
    assert head.denied([theirs]) == [str(theirs)]  # only the workspace's own subnets there

    ws.delete()
    assert azure.fake.of_type(AT.ROLE_ASSIGNMENT) == [] and azure.fake.of_type(AT.ROLE_DEFINITION) == []


def test_the_users_role_holds_exactly_what_create_delete_up_and_down_do(azure: AzureEnv) -> None:
    client = azure.fake.add_vnet("client", "client", "192.168.0.0/16", {"default": "192.168.0.0/24"})
    shared = azure.fake.add_vnet("network-team", "shared", "10.0.0.0/16", {"existing": "10.0.0.0/24"})
    mark = len(azure.fake.server.requests)
    modes: dict[str, dict[str, object]] = {
        "a": {},
        "b": {"mode": "peering", "peer_vpc_id": client, "vpc_cidr": "10.9.0.0/16"},
        "c": {"mode": "shared-vpc", "vpc_id": shared, "allowed_ssh_cidrs": []},
    }
    for name, networking in modes.items():
        ws = azure.workspace(name, **networking)
        with ws.lock(LockRecord.new("create")):
            ws.create()
        if name == "a":
            narrowed = azure.workspace(name, allowed_ssh_cidrs=["203.0.113.7/32"])
            with narrowed.lock(LockRecord.new("create")):
                narrowed.create()
        nodes = AzureNodeProvider(
            azure.provider_config(), "etl", workspace_name=name, clients=azure.clients()
        )
        (head,) = nodes.create_nodes(NodeSpec("h", IMAGE, "u", KEY), {T.NODE_KIND: T.KIND_HEAD}, 1)
        nodes.set_node_tags(head, {T.NODE_STATUS: "up-to-date"})
        nodes.address(head)
        if name == "c":  # delete --force: VMs deleted, the storage account with its data
            names = AzureNames(name, azure.subscription, f"cloudtik-{name}")
            azure.fake.add_container(names.storage_account_id, "data")
            with ws.lock(LockRecord.new("delete")):
                ws.delete(force=True)
            continue
        nodes.terminate_nodes(nodes.non_terminated_nodes({}))
        with ws.lock(LockRecord.new("delete")):
            ws.delete()

    used = {c.action for c in _checks(azure, mark)}
    assert used - set(USER_ACTIONS) == set()
    assert set(USER_ACTIONS) - used == set()
