"""The Azure fake: one generic ARM endpoint on a local HTTP server for every management SDK.

Point the real SDK clients at `url` (base_url=url), with a credential whose `get_token` returns a token,
a per-call policy allowing http, and polling_interval=0. VMs get addresses that are never connected to:
private 10.x from their subnet, public from 198.51.100.0/24 (TEST-NET-2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import azure_types as AT
from .azure_arm import RESOURCE_GROUPS, Arm, Resource, parse
from .azure_blob import Blob, BlobApi
from .http import FakeError, FakeServer, Request, Response

SUBSCRIPTION = "00000000-0000-0000-0000-00000000c10d"
TENANT = "00000000-0000-0000-0000-0000000e1a17"

Inventory = dict[str, set[str]]
_KINDS = {
    "resource_groups": RESOURCE_GROUPS,
    "virtual_networks": AT.VNET,
    "subnets": AT.SUBNET,
    "peerings": AT.PEERING,
    "network_security_groups": AT.NSG,
    "public_ips": AT.PUBLIC_IP,
    "nat_gateways": AT.NAT,
    "network_interfaces": AT.NIC,
    "virtual_machines": AT.VM,
    "disks": AT.DISK,
    "identities": AT.IDENTITY,
    "role_definitions": AT.ROLE_DEFINITION,
    "role_assignments": AT.ROLE_ASSIGNMENT,
    "storage_accounts": AT.STORAGE,
    "containers": AT.CONTAINER,
}


def _error_body(exc: FakeError) -> Any:
    return {"error": {"code": exc.code, "message": exc.message}}


@dataclass
class FakeAzure:
    subscription: str = SUBSCRIPTION
    arm: Arm = field(init=False)
    blob: BlobApi = field(init=False)
    server: FakeServer = field(init=False)

    def __post_init__(self) -> None:
        self.arm = Arm(self.subscription, TENANT, {k.lower(): v for k, v in AT.TYPES.items()})
        self.blob = BlobApi(self.arm)
        self.server = FakeServer(self._handle, _error_body)

    def _handle(self, r: Request) -> Response:
        """ARM paths start /subscriptions or /providers; anything else is a storage account's blobs."""
        if r.path.lower().startswith(("/subscriptions/", "/providers/")):
            return self.arm.handle(r)
        return self.blob.handle(r)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> FakeAzure:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    # -- test helpers -------------------------------------------------------------------------------

    def group_id(self, group: str) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{group}"

    def add(self, ident: str, rtype: str, body: dict[str, Any]) -> str:
        """A resource someone else made (the client's network, a blob container)."""
        self.arm.resources[ident.lower()] = Resource(ident, rtype, parse(ident).parent, body)
        return ident

    def add_vnet(
        self, group: str, name: str, cidr: str, subnets: dict[str, str], location: str = "westus2"
    ) -> str:
        if self.arm.get(self.group_id(group)) is None:
            self.add(self.group_id(group), RESOURCE_GROUPS, {"location": location})
        vnet = self.add(
            f"{self.group_id(group)}/providers/{AT.VNET}/{name}",
            AT.VNET,
            {"location": location, "properties": {"addressSpace": {"addressPrefixes": [cidr]}}},
        )
        for sub, prefix in subnets.items():
            self.add(f"{vnet}/subnets/{sub}", AT.SUBNET, {"properties": {"addressPrefix": prefix}})
        return vnet

    def add_container(self, account_id: str, name: str) -> None:
        self.add(f"{account_id}/blobServices/default/containers/{name}", AT.CONTAINER, {"properties": {}})

    def put_blob(self, account_id: str, container: str, name: str, data: bytes) -> None:
        """A blob someone else wrote (the container must exist)."""
        key = f"{account_id}/blobServices/default/containers/{container}".lower()
        self.blob.blobs.setdefault(key, {})[name] = Blob(data, "application/json", '"0x0"')

    def of_type(self, rtype: str) -> list[Resource]:
        return self.arm.of_type(rtype)

    def inventory(self) -> Inventory:
        """Everything in the subscription, whoever made it (compare before/after to find leaks)."""
        return {kind: {r.id.lower() for r in self.arm.of_type(rtype)} for kind, rtype in _KINDS.items()}


def counts(inv: Inventory) -> dict[str, int]:
    return {kind: len(ids) for kind, ids in inv.items() if ids}


def leaks(before: Inventory, after: Inventory) -> Inventory:
    return {k: after[k] - before.get(k, set()) for k in after if after[k] - before.get(k, set())}


# A public-mode workspace, by kind.
EXPECTED_AZURE = {
    "resource_groups": 1,
    "virtual_networks": 1,
    "subnets": 2,
    "network_security_groups": 1,
    "public_ips": 1,
    "nat_gateways": 1,
    "identities": 2,
    "role_definitions": 1,
    "role_assignments": 4,
    "storage_accounts": 1,
}
