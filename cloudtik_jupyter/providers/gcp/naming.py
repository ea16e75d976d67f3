"""Names and labels of a workspace's GCP resources.

Networks, subnetworks, firewalls and routers carry no labels on GCP, so ownership is a deterministic
name plus a description that says whose they are; a shared network (not described as ours) is never
changed beyond our own subnetworks and never deleted. Instances, disks and the bucket carry labels.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ...errors import ProviderError
from .. import tags as T

RESOURCE = "cloudtik-resource"

PUBLIC_SUBNET = "public-subnet"
PRIVATE_SUBNET = "private-subnet"
SUBNETS = (PUBLIC_SUBNET, PRIVATE_SUBNET)
NETWORK = "network"
SSH_FIREWALL = "ssh-firewall"
INTERNAL_FIREWALL = "internal-firewall"
ROUTER = "router"
NAT = "nat"
PEERING = "peering"
HEAD_ACCOUNT = "head-service-account"
WORKER_ACCOUNT = "worker-service-account"
HEAD_ROLE = "head-role"
HEAD_BINDING = "head-role-binding"
ACT_AS_WORKER = "head-act-as-worker"
BUCKET = "bucket"
BUCKET_ACCESS = "bucket-access"

_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_NETWORKING = re.compile(r"networking=([a-z-]+)")


@dataclass(frozen=True)
class GcpNames:
    """Deterministic names: the same workspace in the same project always gets the same ones."""

    workspace: str
    project: str

    def _name(self, suffix: str) -> str:
        return f"cloudtik-{self.workspace}-{suffix}"

    @property
    def network(self) -> str:
        return f"cloudtik-{self.workspace}"

    def subnet(self, role: str) -> str:
        return self._name(role.removesuffix("-subnet"))

    @property
    def ssh_firewall(self) -> str:
        return self._name("ssh")

    @property
    def internal_firewall(self) -> str:
        return self._name("internal")

    @property
    def router(self) -> str:
        return self._name("router")

    @property
    def nat(self) -> str:
        return self._name("nat")

    @property
    def peering(self) -> str:
        return self._name("peering")

    @property
    def instance_prefix(self) -> str:
        """How every instance (and boot disk) name of the workspace begins: what the head's role is
        conditioned on. Fixed length, so no workspace's prefix begins another's."""
        return f"ct-{hashlib.sha256(self.workspace.encode()).hexdigest()[:8]}-"

    def instance_name(self, cluster: str, kind: str, suffix: str) -> str:
        room = 63 - len(self.instance_prefix) - len(kind) - len(suffix) - 2  # GCP names: <= 63
        return f"{self.instance_prefix}{cluster[:room].rstrip('-')}-{kind}-{suffix}"

    @property
    def network_tag(self) -> str:
        """The network tag on every instance of the workspace: what the firewall rules apply to."""
        return f"cloudtik-{self.workspace}"

    def account_id(self, kind: str) -> str:
        """Service account ids are 6-30 characters: long workspace names get a digest instead."""
        plain = f"cloudtik-{self.workspace}-{kind}"
        if len(plain) <= 30:
            return plain
        digest = hashlib.sha256(self.workspace.encode()).hexdigest()[:6]
        return f"ct-{self.workspace[: 30 - 3 - 1 - 6 - 1 - len(kind)]}-{digest}-{kind}".replace("--", "-")

    def email(self, kind: str) -> str:
        return f"{self.account_id(kind)}@{self.project}.iam.gserviceaccount.com"

    @property
    def head_role_id(self) -> str:
        return f"cloudtik_{self.workspace.replace('-', '_')}_head"

    @property
    def head_role(self) -> str:
        return f"projects/{self.project}/roles/{self.head_role_id}"

    @property
    def bucket(self) -> str:
        # Bucket names are global: a digest of the project keeps them unique per project.
        digest = hashlib.sha256(self.project.encode()).hexdigest()[:8]
        return f"cloudtik-{self.workspace}-{digest}"

    @property
    def lock_bucket(self) -> str:
        """The empty bucket that is the workspace's lock while a create or delete runs."""
        return f"{self.bucket}-lock"

    def description(self, role: str, mode: str | None = None) -> str:
        text = f"cloudtik workspace {self.workspace}: {role}"
        return f"{text}; networking={mode}" if mode else text

    def owns(self, description: str | None) -> bool:
        return (description or "").startswith(f"cloudtik workspace {self.workspace}:")

    def labels(self, role: str) -> dict[str, str]:
        return {T.WORKSPACE: self.workspace, RESOURCE: role}


def networking_mode(description: str | None) -> str:
    found = _NETWORKING.search(description or "")
    return found.group(1) if found else "public"


def check_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """GCP label values are at most 63 lowercase letters, digits, _ and -: refuse anything else clearly."""
    for key, value in labels.items():
        if not _LABEL_VALUE.match(value):
            raise ProviderError(
                f"gcp: tag {key}={value!r} can't be a GCP label (lowercase letters, digits, _ and -, <= 63)"
            )
    return dict(labels)
