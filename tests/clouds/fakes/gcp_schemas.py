"""The fields GCP accepts in the request bodies the GCP fake serves (anything else is an unknown name).

Read from the discovery documents of google-api-python-client (see `discovery.py`): fields, types, enums,
patterns and required fields are Google's. On top: what the services check though the documents do
not say so (label formats; the references a subnetwork, route or peering needs), named as such.
"""

from __future__ import annotations

import re
from typing import Any

from .discovery import schema

LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")


def labels(v: Any) -> str | None:
    if not isinstance(v, dict) or len(v) > 64:
        return "labels must be a map of at most 64 entries"
    for key, value in v.items():
        if not LABEL_KEY_RE.match(str(key)):
            return f"label key {key!r}: lowercase letters, digits, _ and - only, starting with a letter"
        if not isinstance(value, str) or not LABEL_VALUE_RE.match(value):
            return f"label value {value!r} of {key!r}: at most 63 lowercase letters, digits, _ and -"
    return None


COMPUTE, IAM, CRM, STORAGE = "compute.v1", "iam.v1", "cloudresourcemanager.v3", "storage.v1"

NETWORK = schema(COMPUTE, "Network", "compute.networks.insert")
# `name` is annotated required, but GCP takes it from `networkPeering` (the fields it deprecates).
ADD_PEERING = schema(
    COMPUTE,
    "NetworksAddPeeringRequest",
    "compute.networks.addPeering",
    optional=("name",),
    require=("networkPeering",),
)
REMOVE_PEERING = schema(
    COMPUTE, "NetworksRemovePeeringRequest", "compute.networks.removePeering", require=("name",)
)
SUBNETWORK = schema(
    COMPUTE, "Subnetwork", "compute.subnetworks.insert", require=("name", "network", "ipCidrRange")
)
FIREWALL = schema(COMPUTE, "Firewall", "compute.firewalls.insert")
FIREWALL_PATCH = schema(COMPUTE, "Firewall", "compute.firewalls.patch")
ROUTER = schema(COMPUTE, "Router", "compute.routers.insert")
ROUTER_PATCH = schema(COMPUTE, "Router", "compute.routers.patch")
INSTANCE = schema(
    COMPUTE,
    "Instance",
    "compute.instances.insert",
    require=("machineType", "disks", "networkInterfaces"),
    checks={"labels": labels},
)
SET_LABELS = schema(
    COMPUTE,
    "InstancesSetLabelsRequest",
    "compute.instances.setLabels",
    require=("labelFingerprint",),
    checks={"labels": labels},
)

# IAM, Resource Manager and Storage (JSON APIs).
CREATE_SERVICE_ACCOUNT = schema(IAM, "CreateServiceAccountRequest", require=("accountId",))
CREATE_ROLE = schema(IAM, "CreateRoleRequest", require=("roleId", "role"))
PATCH_ROLE = schema(IAM, "Role")
SET_POLICY = schema(CRM, "SetIamPolicyRequest", require=("policy",))
SET_ACCOUNT_POLICY = schema(IAM, "SetIamPolicyRequest", require=("policy",))
GET_POLICY = schema(CRM, "GetIamPolicyRequest")
POLICY = schema(STORAGE, "Policy")  # a bucket's: the storage API's own Policy message
BUCKET = schema(STORAGE, "Bucket", "storage.buckets.insert", checks={"labels": labels})
BUCKET_PATCH = schema(STORAGE, "Bucket", checks={"labels": labels})
