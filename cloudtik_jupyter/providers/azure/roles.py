"""What the head and workers may do: least privilege, written down once.

The head gets one custom role, assignable and assigned only at the workspace's resource group, with
just what launching and terminating workers needs (no `*`, no `Microsoft.Authorization/*`). When the
workspace's subnets are in a shared network of another resource group, the role is also assigned on
each of those subnets (and only them): a worker's NIC joins its subnet there. It may attach only the
worker identity to VMs (Managed Identity Operator on that identity alone). Head and workers may read
and write blobs of the workspace's storage account, and nothing else there (no keys).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .naming import BLOB_DATA_CONTRIBUTOR, MANAGED_IDENTITY_OPERATOR, AzureNames

HEAD_ACTIONS = (
    "Microsoft.Compute/disks/delete",
    "Microsoft.Compute/virtualMachines/delete",
    "Microsoft.Compute/virtualMachines/read",
    "Microsoft.Compute/virtualMachines/write",
    "Microsoft.Network/networkInterfaces/delete",
    "Microsoft.Network/networkInterfaces/join/action",
    "Microsoft.Network/networkInterfaces/read",
    "Microsoft.Network/networkInterfaces/write",
    "Microsoft.Network/networkSecurityGroups/read",
    "Microsoft.Network/virtualNetworks/subnets/join/action",
    "Microsoft.Network/virtualNetworks/subnets/read",
    "Microsoft.Resources/tags/write",
)


# What the user's own credentials need for `workspace create/update/delete` and `up`/`down` (as a custom
# role: see the README). Role definitions and assignments are among them: the head's role is made here.
USER_ACTIONS = (
    "Microsoft.Authorization/roleAssignments/delete",
    "Microsoft.Authorization/roleAssignments/read",
    "Microsoft.Authorization/roleAssignments/write",
    "Microsoft.Authorization/roleDefinitions/delete",
    "Microsoft.Authorization/roleDefinitions/read",
    "Microsoft.Authorization/roleDefinitions/write",
    "Microsoft.Compute/disks/delete",
    "Microsoft.Compute/virtualMachines/delete",
    "Microsoft.Compute/virtualMachines/read",
    "Microsoft.Compute/virtualMachines/write",
    "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
    "Microsoft.ManagedIdentity/userAssignedIdentities/delete",
    "Microsoft.ManagedIdentity/userAssignedIdentities/read",
    "Microsoft.ManagedIdentity/userAssignedIdentities/write",
    "Microsoft.Network/natGateways/delete",
    "Microsoft.Network/natGateways/join/action",
    "Microsoft.Network/natGateways/read",
    "Microsoft.Network/natGateways/write",
    "Microsoft.Network/networkInterfaces/delete",
    "Microsoft.Network/networkInterfaces/join/action",
    "Microsoft.Network/networkInterfaces/read",
    "Microsoft.Network/networkInterfaces/write",
    "Microsoft.Network/networkSecurityGroups/delete",
    "Microsoft.Network/networkSecurityGroups/join/action",
    "Microsoft.Network/networkSecurityGroups/read",
    "Microsoft.Network/networkSecurityGroups/write",
    "Microsoft.Network/publicIPAddresses/delete",
    "Microsoft.Network/publicIPAddresses/join/action",
    "Microsoft.Network/publicIPAddresses/read",
    "Microsoft.Network/publicIPAddresses/write",
    "Microsoft.Network/virtualNetworks/delete",
    "Microsoft.Network/virtualNetworks/peer/action",
    "Microsoft.Network/virtualNetworks/read",
    "Microsoft.Network/virtualNetworks/subnets/delete",
    "Microsoft.Network/virtualNetworks/subnets/join/action",
    "Microsoft.Network/virtualNetworks/subnets/read",
    "Microsoft.Network/virtualNetworks/subnets/write",
    "Microsoft.Network/virtualNetworks/virtualNetworkPeerings/delete",
    "Microsoft.Network/virtualNetworks/virtualNetworkPeerings/read",
    "Microsoft.Network/virtualNetworks/virtualNetworkPeerings/write",
    "Microsoft.Network/virtualNetworks/write",
    "Microsoft.Resources/subscriptions/resourceGroups/delete",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Resources/subscriptions/resourceGroups/resources/read",
    "Microsoft.Resources/subscriptions/resourceGroups/write",
    "Microsoft.Resources/tags/write",
    "Microsoft.Storage/storageAccounts/blobServices/containers/read",
    "Microsoft.Storage/storageAccounts/delete",
    "Microsoft.Storage/storageAccounts/read",
    "Microsoft.Storage/storageAccounts/write",
)


@dataclass(frozen=True)
class Assignment:
    """`identity` holds `role` (a role definition GUID) at `scope`."""

    identity: str  # "head" | "worker"
    role: str
    scope: str


@dataclass(frozen=True)
class RoleDocument:
    description: str
    actions: tuple[str, ...]
    scopes: tuple[str, ...] = ()  # assignable beyond the workspace's group: its subnets in a shared network


def head_role(workspace: str, join_scopes: tuple[str, ...] = ()) -> RoleDocument:
    return RoleDocument(
        f"Launch, tag and terminate the VMs of cloudtik workspace {workspace}", HEAD_ACTIONS, join_scopes
    )


def assignments(
    names: AzureNames, head_role_guid: str, join_scopes: tuple[str, ...] = ()
) -> list[Assignment]:
    """`join_scopes`: the workspace's subnets when they are in another group's network."""
    account = names.storage_account_id
    return [
        Assignment("head", head_role_guid, names.group_id),
        *(Assignment("head", head_role_guid, scope) for scope in join_scopes),
        Assignment("head", MANAGED_IDENTITY_OPERATOR, names.identity_id("worker")),
        Assignment("head", BLOB_DATA_CONTRIBUTOR, account),
        Assignment("worker", BLOB_DATA_CONTRIBUTOR, account),
    ]


def user_role_json(subscription_id: str = "<subscription-id>") -> str:
    """The user's custom role, for `az role definition create --role-definition F`."""
    role = {
        "Name": "cloudtik user",
        "Description": "Create and delete cloudtik workspaces, run clusters in them",
        "Actions": list(USER_ACTIONS),
        "NotActions": [],
        "AssignableScopes": [f"/subscriptions/{subscription_id}"],
    }
    return json.dumps(role, indent=2) + "\n"
