"""Names and tags of a workspace's AWS resources.

Ownership is the tag: every resource the workspace creates carries ``cloudtik-workspace=<name>`` and a
``cloudtik-resource=<role>`` tag, and is found by them before anything is created (so `create` resumes)
and before anything is deleted (so `delete` touches only what the workspace made; a shared VPC and its
internet gateway are never tagged, hence never deleted).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import tags as T

RESOURCE = "cloudtik-resource"
NETWORKING = "cloudtik-networking"  # on the security group: the workspace's networking mode

VPC = "vpc"
INTERNET_GATEWAY = "internet-gateway"
PUBLIC_SUBNET = "public-subnet"
PRIVATE_SUBNETS = ("private-subnet-1", "private-subnet-2")
PUBLIC_ROUTE_TABLE = "public-route-table"
PRIVATE_ROUTE_TABLE = "private-route-table"
NAT_EIP = "nat-elastic-ip"
NAT_GATEWAY = "nat-gateway"
S3_ENDPOINT = "s3-endpoint"
SECURITY_GROUP = "security-group"
PEERING = "vpc-peering"
HEAD_ROLE = "head-role"
WORKER_ROLE = "worker-role"
HEAD_PROFILE = "head-instance-profile"
WORKER_PROFILE = "worker-instance-profile"
BUCKET = "bucket"


@dataclass(frozen=True)
class WorkspaceNames:
    """Deterministic names: the same workspace in the same account and region always gets the same ones."""

    workspace: str

    def name_tag(self, role: str) -> str:
        return f"cloudtik-{self.workspace}-{role}"

    @property
    def head_role(self) -> str:
        return f"cloudtik-{self.workspace}-head"

    @property
    def worker_role(self) -> str:
        return f"cloudtik-{self.workspace}-worker"

    @property
    def head_profile(self) -> str:
        return self.head_role

    @property
    def worker_profile(self) -> str:
        return self.worker_role

    @property
    def security_group(self) -> str:
        return f"cloudtik-{self.workspace}"

    @property
    def lock(self) -> str:
        """The key pair that is the workspace's lock in the cloud while a create or delete runs."""
        return f"cloudtik-{self.workspace}-lock"

    def bucket(self, account_id: str, region: str) -> str:
        # Bucket names are global and <= 63 chars: a short digest keeps them unique per account and region.
        digest = hashlib.sha256(f"{account_id}/{region}".encode()).hexdigest()[:8]
        return f"cloudtik-{self.workspace}-{digest}"

    def tags(self, role: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {T.WORKSPACE: self.workspace, RESOURCE: role, "Name": self.name_tag(role), **(extra or {})}

    def tag_list(self, role: str, extra: Mapping[str, str] | None = None) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in self.tags(role, extra).items()]

    def tag_spec(self, resource_type: str, role: str, extra: Mapping[str, str] | None = None) -> list[Any]:
        """TagSpecifications: the resource is born tagged, so a lost response can't leave an untracked one."""
        return [{"ResourceType": resource_type, "Tags": self.tag_list(role, extra)}]

    def mine(self, items: list[Any], role: str | None = None) -> list[Any]:
        """Descriptions whose tags say they are ours (checked here too: not every API honours tag filters)."""
        out = []
        for item in items:
            tags = tag_dict(item.get("Tags"))
            if tags.get(T.WORKSPACE) == self.workspace and (role is None or tags.get(RESOURCE) == role):
                out.append(item)
        return out

    def filters(self, role: str | None = None) -> list[Any]:
        found = [{"Name": f"tag:{T.WORKSPACE}", "Values": [self.workspace]}]
        if role:
            found.append({"Name": f"tag:{RESOURCE}", "Values": [role]})
        return found


def tag_dict(tag_list: list[Mapping[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tag_list or []}
