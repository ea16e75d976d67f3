"""What the head and workers may do: least privilege, written down once.

The head gets one custom role at project level with just what launching and terminating workers
needs (no `*.setIamPolicy`, no `iam.*`), may act only as the worker service account (a binding on that
account, not on the project), and may read and write objects in the workspace bucket. Workers get the
bucket's objects and nothing else. No basic or admin roles anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

HEAD_PERMISSIONS = (
    "compute.disks.create",
    "compute.firewalls.get",
    "compute.images.useReadOnly",
    "compute.instances.create",
    "compute.instances.delete",
    "compute.instances.get",
    "compute.instances.list",
    "compute.instances.setLabels",
    "compute.instances.setMetadata",
    "compute.instances.setServiceAccount",
    "compute.instances.setTags",
    "compute.networks.get",
    "compute.regions.get",
    "compute.subnetworks.get",
    "compute.subnetworks.use",
    "compute.zoneOperations.get",
)
ACT_AS_ROLE = "roles/iam.serviceAccountUser"  # granted on the worker account only
BUCKET_ROLE = "roles/storage.objectAdmin"  # objects only: not the bucket's settings or policy


@dataclass(frozen=True)
class CustomRole:
    role_id: str
    title: str
    description: str
    permissions: tuple[str, ...]

    def body(self) -> dict[str, object]:
        return {
            "title": self.title,
            "description": self.description,
            "includedPermissions": list(self.permissions),
            "stage": "GA",
        }


def head_role(role_id: str, workspace: str) -> CustomRole:
    return CustomRole(
        role_id=role_id,
        title=f"cloudtik {workspace} head",
        description=f"Launch, label and terminate the instances of cloudtik workspace {workspace}",
        permissions=HEAD_PERMISSIONS,
    )
