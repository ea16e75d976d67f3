"""Names, ids and tags of a workspace's Azure resources.

Everything lives in the workspace's resource group and carries ``cloudtik-workspace=<name>`` and
``cloudtik-resource=<role>`` tags. Role definition and assignment names are GUIDs derived from what they
stand for, so a re-run finds (and never duplicates) them.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from .. import tags as T

RESOURCE = "cloudtik-resource"
NETWORKING = "cloudtik-networking"  # on the NSG: the workspace's networking mode
VNET = "cloudtik-vnet"  # on the NSG: the network the workspace's subnets are in

RESOURCE_GROUP = "resource-group"
VIRTUAL_NETWORK = "virtual-network"
PUBLIC_SUBNET = "public-subnet"
PRIVATE_SUBNET = "private-subnet"
SUBNETS = (PUBLIC_SUBNET, PRIVATE_SUBNET)
NSG = "network-security-group"
NAT_IP = "nat-public-ip"
NAT_GATEWAY = "nat-gateway"
PEERING = "peering"
HEAD_IDENTITY = "head-identity"
WORKER_IDENTITY = "worker-identity"
HEAD_ROLE = "head-role"
STORAGE_ACCOUNT = "storage-account"
ROLE_ASSIGNMENTS = "role-assignments"

_NAMESPACE = uuid.UUID("3f0c2a52-9c1e-4c7e-9f54-6b1c2d0e7a11")  # cloudtik's, for deterministic GUIDs
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
MANAGED_IDENTITY_OPERATOR = "f1a07417-d97a-45cb-824c-7a7467783830"


@dataclass(frozen=True)
class AzureNames:
    workspace: str
    subscription_id: str
    resource_group: str

    def _name(self, suffix: str) -> str:
        return f"cloudtik-{self.workspace}-{suffix}"

    @property
    def group_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"

    def resource_id(self, rtype: str, name: str) -> str:
        return f"{self.group_id}/providers/{rtype}/{name}"

    @property
    def vnet(self) -> str:
        return self._name("vnet")

    def subnet(self, role: str) -> str:
        return self._name(role.removesuffix("-subnet"))

    @property
    def nsg(self) -> str:
        return self._name("nsg")

    @property
    def nat_ip(self) -> str:
        return self._name("nat-ip")

    @property
    def nat(self) -> str:
        return self._name("nat")

    @property
    def peering(self) -> str:
        return self._name("peering")

    def identity(self, kind: str) -> str:
        return self._name(kind)

    def identity_id(self, kind: str) -> str:
        return self.resource_id("Microsoft.ManagedIdentity/userAssignedIdentities", self.identity(kind))

    @property
    def head_role_name(self) -> str:
        # Role names are unique in the tenant: the resource group (and subscription) make it so.
        return f"cloudtik {self.workspace} head ({self.resource_group}, {self.subscription_id})"

    @property
    def head_role_guid(self) -> str:
        return self.guid("head-role")

    def role_id(self, guid: str) -> str:
        """Role definitions are addressed at subscription level, wherever they are defined."""
        return (
            f"/subscriptions/{self.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
        )

    @property
    def storage_account(self) -> str:
        # 3-24 lowercase letters and digits, unique in all of Azure.
        digest = hashlib.sha256(f"{self.subscription_id}/{self.group_id}/{self.workspace}".encode())
        return "ctk" + digest.hexdigest()[:21]

    @property
    def storage_account_id(self) -> str:
        return self.resource_id("Microsoft.Storage/storageAccounts", self.storage_account)

    def guid(self, *parts: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, "/".join([self.group_id.lower(), self.workspace, *parts])))

    def tags(self, role: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {T.WORKSPACE: self.workspace, RESOURCE: role, **(extra or {})}

    def owns(self, tags: dict[str, str] | None, role: str | None = None) -> bool:
        found = tags or {}
        return found.get(T.WORKSPACE) == self.workspace and (role is None or found.get(RESOURCE) == role)


def default_resource_group(workspace: str) -> str:
    return f"cloudtik-{workspace}"
