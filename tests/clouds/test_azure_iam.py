"""Azure identities are least privilege (read back from the fake ARM), and the fake refuses malformed
payloads the way ARM does, so a wrong request fails a test instead of passing."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from fakes import azure_types as AT
from fakes.envs import AzureEnv, azure_fixture  # noqa: F401

from cloudtik_jupyter.providers.azure.naming import (
    BLOB_DATA_CONTRIBUTOR,
    MANAGED_IDENTITY_OPERATOR,
    AzureNames,
)
from cloudtik_jupyter.providers.azure.roles import HEAD_ACTIONS


def test_identities_are_least_privilege(azure: AzureEnv) -> None:
    azure.workspace("ws").create()
    names = AzureNames("ws", azure.subscription, "cloudtik-ws")
    principal = {i.name: i.props["principalId"] for i in azure.fake.of_type(AT.IDENTITY)}
    head, worker = principal[names.identity("head")], principal[names.identity("worker")]

    (role,) = azure.fake.of_type(AT.ROLE_DEFINITION)
    assert role.props["assignableScopes"] == [names.group_id]  # usable nowhere else
    (permission,) = role.props["permissions"]
    assert sorted(permission["actions"]) == sorted(HEAD_ACTIONS)
    assert permission["dataActions"] == [] and permission["notActions"] == []
    for action in permission["actions"]:
        assert "*" not in action and not action.startswith("Microsoft.Authorization/")
        assert not action.startswith("Microsoft.ManagedIdentity/")  # identities: see the assignment below

    granted = {
        (a.props["principalId"], a.props["roleDefinitionId"].rsplit("/", 1)[-1], a.props["scope"])
        for a in azure.fake.of_type(AT.ROLE_ASSIGNMENT)
    }
    assert granted == {
        (head, role.name, names.group_id),
        (head, MANAGED_IDENTITY_OPERATOR, names.identity_id("worker")),  # the worker identity only
        (head, BLOB_DATA_CONTRIBUTOR, names.storage_account_id),
        (worker, BLOB_DATA_CONTRIBUTOR, names.storage_account_id),
    }
    assert all(scope.lower().startswith(names.group_id.lower()) for *_, scope in granted)  # never wider


def _put(azure: AzureEnv, path: str, body: Any) -> tuple[int, str]:
    from fakes.azure_models import api_versions

    namespace = path.rsplit("/providers/", 1)[1].split("/", 1)[0].lower()
    version = max(api_versions()[namespace])  # one the SDK sends
    request = urllib.request.Request(
        f"{azure.url}{path}?api-version={version}",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


GROUP = "/subscriptions/00000000-0000-0000-0000-00000000c10d/resourceGroups/cloudtik-ws"
NETWORK = f"{GROUP}/providers/Microsoft.Network"


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        (
            f"{NETWORK}/virtualNetworks/v",
            {"location": "westus2", "properties": {"address_space": {"addressPrefixes": ["10.0.0.0/16"]}}},
            "Could not find member 'address_space'",
        ),
        (
            f"{NETWORK}/virtualNetworks/v",
            {"location": "westus2", "properties": {"enableDdosProtection": False}},
            "properties.addressSpace",
        ),
        (
            f"{NETWORK}/virtualNetworks/v",
            {"properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}},
            "'location' is missing",
        ),
        (
            f"{NETWORK}/natGateways/n",
            {
                "location": "westus2",
                "sku": {"name": "Standard"},
                "properties": {"publicIpAddresses": [{"id": f"{NETWORK}/publicIPAddresses/nope"}]},
            },
            "was not found",
        ),
        (
            f"{NETWORK}/networkSecurityGroups/g",
            {
                "location": "westus2",
                "properties": {
                    "securityRules": [
                        {
                            "name": "ssh",
                            "properties": {
                                "protocol": "Tcp",
                                "access": "Allow",
                                "direction": "Inbound",
                                "priority": 99,
                                "sourceAddressPrefix": "*",
                            },
                        }
                    ]
                },
            },
            "invalid priority 99",
        ),
        (  # an enum value the SDK's model does not know
            f"{NETWORK}/networkSecurityGroups/g",
            {
                "location": "westus2",
                "properties": {
                    "securityRules": [
                        {
                            "name": "ssh",
                            "properties": {
                                "protocol": "Tcpx",
                                "access": "Allow",
                                "direction": "Inbound",
                                "priority": 100,
                            },
                        }
                    ]
                },
            },
            "'Tcpx' is not one of",
        ),
        (
            f"{GROUP}/providers/Microsoft.Storage/storageAccounts/Not_Valid",
            {"location": "westus2", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}},
            "not a valid storage account name",
        ),
    ],
)
def test_the_fake_refuses_malformed_requests(azure: AzureEnv, path: str, body: Any, expected: str) -> None:
    azure.workspace("ws").create()
    before = azure.fake.inventory()
    status, text = _put(azure, path, body)
    assert status == 400 and expected in text, text
    assert azure.fake.inventory() == before


def test_the_fake_refuses_an_api_version_no_sdk_sends(azure: AzureEnv) -> None:
    request = urllib.request.Request(f"{azure.url}{GROUP}?api-version=2015-01-01", method="GET")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 400 and "InvalidApiVersionParameter" in err.value.read().decode()


def test_the_fake_refuses_what_azure_refuses_through_the_sdk(azure: AzureEnv) -> None:
    """A vnet PUT again without its subnets would delete them; one in use can't be: ARM says so."""
    from cloudtik_jupyter.errors import ProviderError
    from cloudtik_jupyter.providers.azure.clients import azure_errors
    from cloudtik_jupyter.providers.azure.node_provider import AzureNodeProvider
    from cloudtik_jupyter.providers.base import NodeSpec

    azure.workspace("ws").create()
    image = {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}}
    nodes = AzureNodeProvider(azure.provider_config(), "etl", workspace_name="ws", clients=azure.clients())
    nodes.create_nodes(NodeSpec("w", image, "spark", "ssh-ed25519 AAAA key"), {}, 1)
    from azure.mgmt.network.models import AddressSpace, VirtualNetwork, VirtualNetworkPropertiesFormat

    c = azure.clients()
    vnet = VirtualNetwork(
        location="westus2",
        properties=VirtualNetworkPropertiesFormat(
            address_space=AddressSpace(address_prefixes=["10.0.0.0/16"])
        ),
    )
    with (
        pytest.raises(ProviderError, match="InUseSubnetCannotBeDeleted"),
        azure_errors("re-putting the network"),
    ):
        c.network.virtual_networks.begin_create_or_update("cloudtik-ws", "cloudtik-ws-vnet", vnet).result()
