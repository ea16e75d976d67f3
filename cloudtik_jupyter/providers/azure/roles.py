"""What the head and workers may do: least privilege, written down once.

The head gets one custom role, assignable and assigned only at the workspace's resource group, with
just what launching and terminating workers needs (no `*`, no `Microsoft.Authorization/*`). It may
attach only the worker identity to VMs (Managed Identity Operator on that identity alone). Head and
workers may read and write blobs of the workspace's storage account, and nothing else there (no keys).
"""

from __future__ import annotations

from dataclasses import dataclass

from .naming import BLOB_DATA_CONTRIBUTOR, MANAGED_IDENTITY_OPERATOR, AzureNames

HEAD_ACTIONS = (
    "Microsoft.Compute/disks/delete",
    "Microsoft.Compute/disks/read",
    "Microsoft.Compute/virtualMachines/delete",
    "Microsoft.Compute/virtualMachines/read",
    "Microsoft.Compute/virtualMachines/write",
    "Microsoft.Network/networkInterfaces/delete",
    "Microsoft.Network/networkInterfaces/join/action",
    "Microsoft.Network/networkInterfaces/read",
    "Microsoft.Network/networkInterfaces/write",
    "Microsoft.Network/networkSecurityGroups/read",
    "Microsoft.Network/virtualNetworks/read",
    "Microsoft.Network/virtualNetworks/subnets/join/action",
    "Microsoft.Network/virtualNetworks/subnets/read",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Resources/tags/write",
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


def head_role(workspace: str) -> RoleDocument:
    return RoleDocument(f"Launch, tag and terminate the VMs of cloudtik workspace {workspace}", HEAD_ACTIONS)


def assignments(names: AzureNames, head_role_guid: str) -> list[Assignment]:
    account = names.storage_account_id
    return [
        Assignment("head", head_role_guid, names.group_id),
        Assignment("head", MANAGED_IDENTITY_OPERATOR, names.identity_id("worker")),
        Assignment("head", BLOB_DATA_CONTRIBUTOR, account),
        Assignment("worker", BLOB_DATA_CONTRIBUTOR, account),
    ]
