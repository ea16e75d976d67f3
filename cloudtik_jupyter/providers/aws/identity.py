"""IAM roles and instance profiles for the head and the workers (inline policies only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .clients import error_code, is_client_error
from .naming import WorkspaceNames
from .policies import PolicyDocument, trust_policy

INLINE_POLICY = "cloudtik-workspace"


@dataclass(frozen=True)
class RoleSpec:
    role: str
    profile: str
    role_tag: str
    profile_tag: str


def _missing(exc: BaseException) -> bool:
    return is_client_error(exc) and error_code(exc) == "NoSuchEntity"


def get_role(iam: Any, name: str) -> Any | None:
    try:
        return iam.get_role(RoleName=name)["Role"]
    except Exception as exc:
        if _missing(exc):
            return None
        raise


def get_profile(iam: Any, name: str) -> Any | None:
    try:
        return iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except Exception as exc:
        if _missing(exc):
            return None
        raise


def ensure_role(iam: Any, names: WorkspaceNames, spec: RoleSpec) -> str:
    """The role (its ARN); the trust policy is re-applied so a hand-edited one converges back."""
    role = get_role(iam, spec.role)
    if role is None:
        role = iam.create_role(
            RoleName=spec.role,
            AssumeRolePolicyDocument=trust_policy(),
            Description=f"cloudtik workspace {names.workspace}",
            Tags=names.tag_list(spec.role_tag),
        )["Role"]
    else:
        iam.update_assume_role_policy(RoleName=spec.role, PolicyDocument=trust_policy())
    return str(role["Arn"])


def ensure_role_policy(iam: Any, spec: RoleSpec, policy: PolicyDocument) -> None:
    iam.put_role_policy(RoleName=spec.role, PolicyName=INLINE_POLICY, PolicyDocument=policy.to_json())


def ensure_profile(iam: Any, names: WorkspaceNames, spec: RoleSpec) -> None:
    profile = get_profile(iam, spec.profile)
    if profile is None:
        profile = iam.create_instance_profile(
            InstanceProfileName=spec.profile, Tags=names.tag_list(spec.profile_tag)
        )["InstanceProfile"]
    if spec.role not in [r["RoleName"] for r in profile.get("Roles", [])]:
        iam.add_role_to_instance_profile(InstanceProfileName=spec.profile, RoleName=spec.role)


def delete_identity(iam: Any, spec: RoleSpec) -> list[str]:
    """The profile, then the role with its policies; returns what was removed."""
    removed = []
    profile = get_profile(iam, spec.profile)
    if profile is not None:
        for role in profile.get("Roles", []):
            iam.remove_role_from_instance_profile(InstanceProfileName=spec.profile, RoleName=role["RoleName"])
        iam.delete_instance_profile(InstanceProfileName=spec.profile)
        removed.append(f"instance-profile/{spec.profile}")
    if get_role(iam, spec.role) is None:
        return removed
    for name in iam.list_role_policies(RoleName=spec.role)["PolicyNames"]:
        iam.delete_role_policy(RoleName=spec.role, PolicyName=name)
    for attached in iam.list_attached_role_policies(RoleName=spec.role)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=spec.role, PolicyArn=attached["PolicyArn"])
    iam.delete_role(RoleName=spec.role)
    return [*removed, f"role/{spec.role}"]


SPOT_SERVICE = "spot.amazonaws.com"


def ensure_spot_role(iam: Any) -> None:
    """EC2 needs its Spot service-linked role (one per account) before the first spot launch; the head
    may not create it (no IAM rights), so the workspace does. Never deleted: the account's, not ours."""
    found = iam.list_roles(PathPrefix=f"/aws-service-role/{SPOT_SERVICE}/")["Roles"]
    if found:
        return
    try:
        iam.create_service_linked_role(AWSServiceName=SPOT_SERVICE)
    except Exception as exc:  # made meanwhile (or by a run whose answer was lost)
        if not (is_client_error(exc) and error_code(exc) in ("InvalidInput", "EntityAlreadyExists")):
            raise
