"""The fields ARM accepts in the request bodies the Azure fake serves (anything else is rejected).

Read from the SDKs' models (see `azure_models.py`): fields, types, enums, required and read-only flags
are the SDKs'. On top, named as such: what ARM requires though the models do not say so (a tracked
resource's location, the references and prefixes a resource can't exist without) and tag formats.
"""

from __future__ import annotations

import re
from typing import Any

from .azure_models import model

_TAG_KEY_FORBIDDEN = re.compile(r"[<>%&\\?/]")


def tags(v: Any) -> str | None:
    if not isinstance(v, dict) or len(v) > 50:
        return "tags must be a map of at most 50 entries"
    for key, value in v.items():
        if len(key) > 512 or _TAG_KEY_FORBIDDEN.search(key):
            return f"tag name {key!r} is invalid"
        if not isinstance(value, str) or len(value) > 256:
            return f"tag value of {key!r} must be a string of at most 256 characters"
    return None


NETWORK, COMPUTE, STORAGE = (
    "azure.mgmt.network.models",
    "azure.mgmt.compute.models",
    "azure.mgmt.storage.models",
)
RESOURCES = "azure.mgmt.resource.resources.models"
MSI, AUTHORIZATION = "azure.mgmt.msi.models", "azure.mgmt.authorization.v2022_04_01.models"
TAGS = {"tags": tags}

RESOURCE_GROUP = model(RESOURCES, "ResourceGroup", required=("location",), checks=TAGS)
SUBNET = model(NETWORK, "Subnet", required=("properties",))
VIRTUAL_NETWORK = model(
    NETWORK,
    "VirtualNetwork",
    required=("location", "properties.addressSpace.addressPrefixes"),
    checks=TAGS,
)
NETWORK_SECURITY_GROUP = model(NETWORK, "NetworkSecurityGroup", required=("location",), checks=TAGS)
PUBLIC_IP = model(NETWORK, "PublicIPAddress", required=("location",), checks=TAGS)
NAT_GATEWAY = model(
    NETWORK, "NatGateway", required=("location", "sku.name", "properties.publicIpAddresses"), checks=TAGS
)
PEERING = model(NETWORK, "VirtualNetworkPeering", required=("properties.remoteVirtualNetwork.id",))
NETWORK_INTERFACE = model(
    NETWORK, "NetworkInterface", required=("location", "properties.ipConfigurations"), checks=TAGS
)
VIRTUAL_MACHINE = model(
    COMPUTE,
    "VirtualMachine",
    required=(
        "properties.hardwareProfile.vmSize",
        "properties.storageProfile.osDisk",
        "properties.osProfile.computerName",
        "properties.osProfile.adminUsername",
        "properties.networkProfile.networkInterfaces",
    ),
    checks=TAGS,
)
VIRTUAL_MACHINE_UPDATE = model(COMPUTE, "VirtualMachineUpdate", checks=TAGS)
IDENTITY = model(MSI, "Identity", checks=TAGS)
ROLE_DEFINITION = model(
    AUTHORIZATION,
    "RoleDefinition",
    required=("properties.roleName", "properties.permissions", "properties.assignableScopes"),
)
ROLE_ASSIGNMENT = model(AUTHORIZATION, "RoleAssignmentCreateParameters")
STORAGE_ACCOUNT = model(STORAGE, "StorageAccountCreateParameters", checks=TAGS)
TAGS_PATCH = model(RESOURCES, "TagsPatchResource", required=("operation", "properties.tags"))
