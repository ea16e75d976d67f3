"""The fields GCP accepts in the request bodies the GCP fake serves (anything else is an unknown name)."""

from __future__ import annotations

import re
from typing import Any

from .schema import F, is_list_of_str, one_of

NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")


def resource_name(v: Any) -> str | None:
    ok = isinstance(v, str) and NAME_RE.match(v)
    return None if ok else f"{v!r} must be a match of regex '(?:[a-z](?:[-a-z0-9]{{0,61}}[a-z0-9])?)'"


def labels(v: Any) -> str | None:
    if not isinstance(v, dict) or len(v) > 64:
        return "labels must be a map of at most 64 entries"
    for key, value in v.items():
        if not LABEL_KEY_RE.match(str(key)):
            return f"label key {key!r}: lowercase letters, digits, _ and - only, starting with a letter"
        if not isinstance(value, str) or not LABEL_VALUE_RE.match(value):
            return f"label value {value!r} of {key!r}: at most 63 lowercase letters, digits, _ and -"
    return None


NETWORK = {
    "name": F(required=True, check=resource_name),
    "description": F(),
    "autoCreateSubnetworks": F(),
    "routingConfig": F(fields={"routingMode": F(check=one_of("REGIONAL", "GLOBAL"))}),
    "mtu": F(),
}
ADD_PEERING = {
    "networkPeering": F(
        required=True,
        fields={
            "name": F(required=True, check=resource_name),
            "network": F(required=True),
            "exchangeSubnetRoutes": F(required=True),
            "importCustomRoutes": F(),
            "exportCustomRoutes": F(),
        },
    )
}
REMOVE_PEERING = {"name": F(required=True)}
SUBNETWORK = {
    "name": F(required=True, check=resource_name),
    "description": F(),
    "network": F(required=True),
    "ipCidrRange": F(required=True),
    "region": F(),
    "privateIpGoogleAccess": F(),
    "stackType": F(check=one_of("IPV4_ONLY", "IPV4_IPV6")),
    "logConfig": F(fields={"enable": F(), "aggregationInterval": F(), "flowSampling": F(), "metadata": F()}),
}
_RULES = {"IPProtocol": F(required=True), "ports": F(check=is_list_of_str)}
FIREWALL = {
    "name": F(required=True, check=resource_name),
    "description": F(),
    "network": F(),
    "priority": F(),
    "direction": F(check=one_of("INGRESS", "EGRESS")),
    "allowed": F(items=_RULES),
    "denied": F(items=_RULES),
    "sourceRanges": F(check=is_list_of_str),
    "destinationRanges": F(check=is_list_of_str),
    "sourceTags": F(check=is_list_of_str),
    "targetTags": F(check=is_list_of_str),
    "sourceServiceAccounts": F(check=is_list_of_str),
    "targetServiceAccounts": F(check=is_list_of_str),
    "disabled": F(),
    "logConfig": F(fields={"enable": F(), "metadata": F()}),
}
_NAT = {
    "name": F(required=True, check=resource_name),
    "natIpAllocateOption": F(required=True, check=one_of("AUTO_ONLY", "MANUAL_ONLY")),
    "sourceSubnetworkIpRangesToNat": F(
        required=True,
        check=one_of(
            "ALL_SUBNETWORKS_ALL_IP_RANGES", "ALL_SUBNETWORKS_ALL_PRIMARY_IP_RANGES", "LIST_OF_SUBNETWORKS"
        ),
    ),
    "subnetworks": F(
        items={
            "name": F(required=True),
            "sourceIpRangesToNat": F(required=True, check=is_list_of_str),
            "secondaryIpRangeNames": F(),
        }
    ),
    "natIps": F(check=is_list_of_str),
    "logConfig": F(fields={"enable": F(), "filter": F()}),
    "enableEndpointIndependentMapping": F(),
    "minPortsPerVm": F(),
}
ROUTER = {
    "name": F(required=True, check=resource_name),
    "description": F(),
    "network": F(required=True),
    "region": F(),
    "nats": F(items=_NAT),
    "bgp": F(fields={"asn": F()}),
}
INSTANCE = {
    "name": F(required=True, check=resource_name),
    "description": F(),
    "machineType": F(required=True),
    "labels": F(check=labels),
    "tags": F(fields={"items": F(check=is_list_of_str), "fingerprint": F()}),
    "metadata": F(
        fields={"items": F(items={"key": F(required=True), "value": F()}), "fingerprint": F(), "kind": F()}
    ),
    "disks": F(
        required=True,
        items={
            "boot": F(),
            "autoDelete": F(),
            "type": F(check=one_of("PERSISTENT", "SCRATCH")),
            "mode": F(check=one_of("READ_WRITE", "READ_ONLY")),
            "deviceName": F(),
            "source": F(),
            "initializeParams": F(
                fields={
                    "sourceImage": F(),
                    "diskSizeGb": F(),
                    "diskType": F(),
                    "diskName": F(),
                    "labels": F(check=labels),
                }
            ),
        },
    ),
    "networkInterfaces": F(
        required=True,
        items={
            "network": F(),
            "subnetwork": F(),
            "networkIP": F(),
            "accessConfigs": F(
                items={
                    "name": F(),
                    "type": F(check=one_of("ONE_TO_ONE_NAT")),
                    "networkTier": F(check=one_of("PREMIUM", "STANDARD")),
                }
            ),
            "stackType": F(),
        },
    ),
    "serviceAccounts": F(items={"email": F(required=True), "scopes": F(check=is_list_of_str)}),
    "scheduling": F(
        fields={
            "preemptible": F(),
            "automaticRestart": F(),
            "onHostMaintenance": F(check=one_of("MIGRATE", "TERMINATE")),
            "provisioningModel": F(check=one_of("STANDARD", "SPOT")),
            "instanceTerminationAction": F(check=one_of("STOP", "DELETE")),
        }
    ),
    "shieldedInstanceConfig": F(
        fields={"enableSecureBoot": F(), "enableVtpm": F(), "enableIntegrityMonitoring": F()}
    ),
    "canIpForward": F(),
    "deletionProtection": F(),
}
SET_LABELS = {"labels": F(check=labels), "labelFingerprint": F(required=True)}

# IAM, Resource Manager and Storage (JSON APIs).
CREATE_SERVICE_ACCOUNT = {
    "accountId": F(required=True),
    "serviceAccount": F(fields={"displayName": F(), "description": F()}),
}
_ROLE = {
    "title": F(),
    "description": F(),
    "includedPermissions": F(check=is_list_of_str),
    "stage": F(check=one_of("ALPHA", "BETA", "GA", "DEPRECATED", "DISABLED", "EAP")),
    "etag": F(),
}
CREATE_ROLE = {"roleId": F(required=True), "role": F(required=True, fields=_ROLE)}
PATCH_ROLE = _ROLE
_BINDING = {
    "role": F(required=True),
    "members": F(required=True, check=is_list_of_str),
    "condition": F(fields={"title": F(required=True), "description": F(), "expression": F(required=True)}),
}
POLICY = {
    "version": F(),
    "etag": F(),
    "bindings": F(items=_BINDING),
    "auditConfigs": F(),
    "kind": F(),
    "resourceId": F(),
}
SET_POLICY = {"policy": F(required=True, fields=POLICY), "updateMask": F()}
GET_POLICY = {"options": F(fields={"requestedPolicyVersion": F()})}
BUCKET = {
    "name": F(required=True),
    "location": F(),
    "storageClass": F(check=one_of("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")),
    "labels": F(check=labels),
    "iamConfiguration": F(
        fields={
            "uniformBucketLevelAccess": F(fields={"enabled": F()}),
            "publicAccessPrevention": F(check=one_of("enforced", "inherited")),
        }
    ),
    "versioning": F(fields={"enabled": F()}),
}
