"""What the head and workers may do: least privilege, written down once.

The head gets one custom role at project level with just what launching and terminating workers
needs (no `*.setIamPolicy`, no `iam.*`), bound with an IAM Condition: on instances and disks it holds
only for those whose name begins with the workspace's prefix (every node's name does), so it can't
touch the project's other VMs. It may act only as the worker service account (a binding on that
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
    "compute.regions.get",
    "compute.subnetworks.get",
    "compute.subnetworks.use",
    "compute.zoneOperations.get",
)
# What the user's own credentials need for `workspace create/update/delete` and `up`/`down` (as a custom
# role: see the README). Setting the project's IAM policy is among them: the head's binding is there.
USER_PERMISSIONS = (
    "compute.disks.create",
    "compute.firewalls.create",
    "compute.firewalls.delete",
    "compute.firewalls.get",
    "compute.firewalls.update",
    "compute.globalOperations.get",
    "compute.instances.create",
    "compute.instances.delete",
    "compute.instances.get",
    "compute.instances.list",
    "compute.instances.setLabels",
    "compute.instances.setMetadata",
    "compute.instances.setServiceAccount",
    "compute.instances.setTags",
    "compute.networks.addPeering",
    "compute.networks.create",
    "compute.networks.delete",
    "compute.networks.get",
    "compute.networks.removePeering",
    "compute.networks.updatePolicy",
    "compute.regionOperations.get",
    "compute.regions.get",
    "compute.routers.create",
    "compute.routers.delete",
    "compute.routers.get",
    "compute.routers.update",
    "compute.subnetworks.create",
    "compute.subnetworks.delete",
    "compute.subnetworks.get",
    "compute.subnetworks.list",
    "compute.subnetworks.use",
    "compute.subnetworks.useExternalIp",
    "compute.zoneOperations.get",
    "iam.roles.create",
    "iam.roles.delete",
    "iam.roles.get",
    "iam.roles.undelete",
    "iam.roles.update",
    "iam.serviceAccounts.actAs",
    "iam.serviceAccounts.create",
    "iam.serviceAccounts.delete",
    "iam.serviceAccounts.get",
    "iam.serviceAccounts.getIamPolicy",
    "iam.serviceAccounts.setIamPolicy",
    "resourcemanager.projects.getIamPolicy",
    "resourcemanager.projects.setIamPolicy",
    "storage.buckets.create",
    "storage.buckets.delete",
    "storage.buckets.get",
    "storage.buckets.getIamPolicy",
    "storage.buckets.setIamPolicy",
    "storage.buckets.update",
    "storage.objects.delete",
    "storage.objects.list",
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


def head_condition(instance_prefix: str, workspace: str) -> dict[str, str]:
    """The IAM Condition of the head's binding: instances and disks by name prefix, the rest as is
    (subnetworks it launches into, operations it waits for, the listing)."""
    instance, disk = "compute.googleapis.com/Instance", "compute.googleapis.com/Disk"
    expression = (
        f'(resource.type != "{instance}" && resource.type != "{disk}") || '
        f'resource.name.extract("/instances/{{name}}").startsWith("{instance_prefix}") || '
        f'resource.name.extract("/disks/{{name}}").startsWith("{instance_prefix}")'
    )
    return {
        "title": f"cloudtik {workspace} instances only",
        "description": f"Instances and disks named {instance_prefix}*: the nodes of workspace {workspace}",
        "expression": expression,
    }


def head_role(role_id: str, workspace: str) -> CustomRole:
    return CustomRole(
        role_id=role_id,
        title=f"cloudtik {workspace} head",
        description=f"Launch, label and terminate the instances of cloudtik workspace {workspace}",
        permissions=HEAD_PERMISSIONS,
    )


def user_role_yaml() -> str:
    """The user's custom role, for `gcloud iam roles create cloudtik_user --project P --file F`."""
    lines = [
        "title: cloudtik user",
        "description: Create and delete cloudtik workspaces, run clusters in them",
        "stage: GA",
        "includedPermissions:",
        *(f"- {p}" for p in USER_PERMISSIONS),
    ]
    return "\n".join(lines) + "\n"
