"""The fields ARM accepts in the request bodies the Azure fake serves (anything else is rejected)."""

from __future__ import annotations

import re
from typing import Any

from .schema import F, is_list_of_str, one_of

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


REF = {"id": F(required=True)}
# Every tracked resource: ARM also echoes these back in bodies a client may re-send.
_TRACKED = {
    "location": F(required=True),
    "tags": F(check=tags),
    "id": F(),
    "name": F(),
    "type": F(),
    "etag": F(),
}
_CHILD = {"id": F(), "name": F(), "type": F(), "etag": F()}

RESOURCE_GROUP = {**_TRACKED, "managedBy": F(), "properties": F(fields={"provisioningState": F()})}
_SUBNET_PROPS = {
    "addressPrefix": F(),
    "addressPrefixes": F(check=is_list_of_str),
    "networkSecurityGroup": F(fields=REF),
    "natGateway": F(fields=REF),
    "routeTable": F(fields=REF),
    "serviceEndpoints": F(items={"service": F(required=True), "locations": F()}),
    "privateEndpointNetworkPolicies": F(),
    "defaultOutboundAccess": F(),
    "provisioningState": F(),
}
SUBNET = {**_CHILD, "properties": F(required=True, fields=_SUBNET_PROPS)}
VIRTUAL_NETWORK = {
    **_TRACKED,
    "properties": F(
        required=True,
        fields={
            "addressSpace": F(
                required=True, fields={"addressPrefixes": F(required=True, check=is_list_of_str)}
            ),
            "subnets": F(items={**_CHILD, "properties": F(fields=_SUBNET_PROPS)}),
            "enableDdosProtection": F(),
            "virtualNetworkPeerings": F(),
            "provisioningState": F(),
        },
    ),
}
_RULE_PROPS = {
    "description": F(),
    "protocol": F(required=True, check=one_of("Tcp", "Udp", "Icmp", "Esp", "Ah", "*")),
    "sourcePortRange": F(),
    "destinationPortRange": F(),
    "destinationPortRanges": F(check=is_list_of_str),
    "sourceAddressPrefix": F(),
    "sourceAddressPrefixes": F(check=is_list_of_str),
    "destinationAddressPrefix": F(),
    "access": F(required=True, check=one_of("Allow", "Deny")),
    "priority": F(required=True),
    "direction": F(required=True, check=one_of("Inbound", "Outbound")),
    "provisioningState": F(),
}
NETWORK_SECURITY_GROUP = {
    **_TRACKED,
    "properties": F(
        fields={
            "securityRules": F(
                items={**_CHILD, "name": F(required=True), "properties": F(required=True, fields=_RULE_PROPS)}
            ),
            "provisioningState": F(),
        }
    ),
}
PUBLIC_IP = {
    **_TRACKED,
    "sku": F(fields={"name": F(required=True, check=one_of("Basic", "Standard")), "tier": F()}),
    "zones": F(check=is_list_of_str),
    "properties": F(
        fields={
            "publicIPAllocationMethod": F(check=one_of("Static", "Dynamic")),
            "publicIPAddressVersion": F(check=one_of("IPv4", "IPv6")),
            "idleTimeoutInMinutes": F(),
            "deleteOption": F(check=one_of("Delete", "Detach")),
            "provisioningState": F(),
        }
    ),
}
NAT_GATEWAY = {
    **_TRACKED,
    "sku": F(required=True, fields={"name": F(required=True, check=one_of("Standard", "StandardV2"))}),
    "zones": F(check=is_list_of_str),
    "properties": F(
        required=True,
        fields={
            "publicIpAddresses": F(required=True, items=REF),
            "idleTimeoutInMinutes": F(),
            "provisioningState": F(),
        },
    ),
}
PEERING = {
    **_CHILD,
    "properties": F(
        required=True,
        fields={
            "remoteVirtualNetwork": F(required=True, fields=REF),
            "allowVirtualNetworkAccess": F(),
            "allowForwardedTraffic": F(),
            "allowGatewayTransit": F(),
            "useRemoteGateways": F(),
            "provisioningState": F(),
        },
    ),
}
IDENTITY = {**_TRACKED, "properties": F(fields={"isolationScope": F()})}
ROLE_DEFINITION = {
    **_CHILD,
    "properties": F(
        required=True,
        fields={
            "roleName": F(required=True),
            "description": F(),
            "type": F(check=one_of("CustomRole")),
            "roleType": F(),
            "permissions": F(
                required=True,
                items={
                    "actions": F(check=is_list_of_str),
                    "notActions": F(check=is_list_of_str),
                    "dataActions": F(check=is_list_of_str),
                    "notDataActions": F(check=is_list_of_str),
                },
            ),
            "assignableScopes": F(required=True, check=is_list_of_str),
        },
    ),
}
ROLE_ASSIGNMENT = {
    "properties": F(
        required=True,
        fields={
            "roleDefinitionId": F(required=True),
            "principalId": F(required=True),
            "principalType": F(check=one_of("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")),
            "description": F(),
            "condition": F(),
            "conditionVersion": F(),
        },
    )
}
STORAGE_ACCOUNT = {
    "location": F(required=True),
    "tags": F(check=tags),
    "kind": F(
        required=True, check=one_of("StorageV2", "BlobStorage", "BlockBlobStorage", "FileStorage", "Storage")
    ),
    "sku": F(required=True, fields={"name": F(required=True)}),
    "identity": F(),
    "properties": F(
        fields={
            "allowBlobPublicAccess": F(),
            "minimumTlsVersion": F(check=one_of("TLS1_0", "TLS1_1", "TLS1_2", "TLS1_3")),
            "supportsHttpsTrafficOnly": F(),
            "allowSharedKeyAccess": F(),
            "publicNetworkAccess": F(check=one_of("Enabled", "Disabled", "SecuredByPerimeter")),
            "accessTier": F(check=one_of("Hot", "Cool", "Cold", "Premium")),
            "encryption": F(),
            "networkAcls": F(),
        }
    ),
}
NETWORK_INTERFACE = {
    **_TRACKED,
    "properties": F(
        required=True,
        fields={
            "ipConfigurations": F(
                required=True,
                items={
                    **_CHILD,
                    "name": F(required=True),
                    "properties": F(
                        required=True,
                        fields={
                            "subnet": F(required=True, fields=REF),
                            "privateIPAllocationMethod": F(check=one_of("Static", "Dynamic")),
                            "privateIPAddress": F(),
                            "publicIPAddress": F(
                                fields={
                                    "id": F(required=True),
                                    "properties": F(
                                        fields={"deleteOption": F(check=one_of("Delete", "Detach"))}
                                    ),
                                }
                            ),
                            "primary": F(),
                        },
                    ),
                },
            ),
            "networkSecurityGroup": F(fields=REF),
            "enableAcceleratedNetworking": F(),
            "provisioningState": F(),
        },
    ),
}
_OS_DISK = {
    "createOption": F(required=True, check=one_of("FromImage", "Attach", "Empty")),
    "deleteOption": F(check=one_of("Delete", "Detach")),
    "diskSizeGB": F(),
    "caching": F(check=one_of("None", "ReadOnly", "ReadWrite")),
    "name": F(),
    "osType": F(),
    "managedDisk": F(fields={"storageAccountType": F(), "id": F()}),
}
VIRTUAL_MACHINE = {
    **_TRACKED,
    "zones": F(check=is_list_of_str),
    "identity": F(
        fields={
            "type": F(
                required=True,
                check=one_of("SystemAssigned", "UserAssigned", "SystemAssigned, UserAssigned", "None"),
            ),
            "userAssignedIdentities": F(),
            "principalId": F(),
            "tenantId": F(),
        }
    ),
    "properties": F(
        required=True,
        fields={
            "hardwareProfile": F(required=True, fields={"vmSize": F(required=True)}),
            "storageProfile": F(
                required=True,
                fields={
                    "imageReference": F(
                        fields={"publisher": F(), "offer": F(), "sku": F(), "version": F(), "id": F()}
                    ),
                    "osDisk": F(required=True, fields=_OS_DISK),
                    "dataDisks": F(),
                },
            ),
            "osProfile": F(
                required=True,
                fields={
                    "computerName": F(required=True),
                    "adminUsername": F(required=True),
                    "adminPassword": F(),
                    "customData": F(),
                    "linuxConfiguration": F(
                        fields={
                            "disablePasswordAuthentication": F(),
                            "ssh": F(
                                fields={
                                    "publicKeys": F(
                                        items={"path": F(required=True), "keyData": F(required=True)}
                                    )
                                }
                            ),
                            "provisionVMAgent": F(),
                        }
                    ),
                },
            ),
            "networkProfile": F(
                required=True,
                fields={
                    "networkInterfaces": F(
                        required=True,
                        items={
                            "id": F(required=True),
                            "properties": F(
                                fields={"primary": F(), "deleteOption": F(check=one_of("Delete", "Detach"))}
                            ),
                        },
                    )
                },
            ),
            "priority": F(check=one_of("Regular", "Low", "Spot")),
            "evictionPolicy": F(check=one_of("Deallocate", "Delete")),
            "billingProfile": F(fields={"maxPrice": F()}),
            "diagnosticsProfile": F(),
            "provisioningState": F(),
            "vmId": F(),
        },
    ),
}
VIRTUAL_MACHINE_UPDATE = {"tags": F(check=tags), "properties": F(fields={}), "identity": F()}
