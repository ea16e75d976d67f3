"""Service accounts for the head and workers, the head's custom role, and the IAM bindings that give
them (and only them) their access. Policies are read-modify-write with an etag, retried on conflict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..common.polling import poll
from .clients import GcpClients, is_conflict, is_not_found
from .naming import GcpNames
from .roles import ACT_AS_ROLE, CustomRole

Policy = dict[str, Any]  # the JSON API's policy object, as read and written back


def _get(call: Any) -> Any | None:
    try:
        return call.execute()
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise


def _account_name(c: GcpClients, email: str) -> str:
    return f"projects/{c.project}/serviceAccounts/{email}"


def get_account(c: GcpClients, email: str) -> Any | None:
    return _get(c.iam.projects().serviceAccounts().get(name=_account_name(c, email)))


def ensure_account(c: GcpClients, names: GcpNames, kind: str) -> str:
    email = names.email(kind)
    if get_account(c, email) is None:
        body = {
            "accountId": names.account_id(kind),
            "serviceAccount": {
                "displayName": f"cloudtik {names.workspace} {kind}",
                "description": names.description(f"{kind}-service-account"),
            },
        }
        try:
            c.iam.projects().serviceAccounts().create(name=f"projects/{c.project}", body=body).execute()
        except Exception as exc:
            if not is_conflict(exc):  # created by a run whose answer was lost
                raise
    return email


def delete_account(c: GcpClients, email: str) -> list[str]:
    if get_account(c, email) is None:
        return []
    c.iam.projects().serviceAccounts().delete(name=_account_name(c, email)).execute()
    return [email]


# -- custom role ------------------------------------------------------------------------------------


def get_role(c: GcpClients, names: GcpNames) -> Any | None:
    return _get(c.iam.projects().roles().get(name=names.head_role))


def ensure_role(c: GcpClients, names: GcpNames, role: CustomRole) -> None:
    """Create, undelete (a deleted role keeps its id for a while) or converge the role's permissions."""
    roles = c.iam.projects().roles()
    found = get_role(c, names)
    if found is None:
        body = {"roleId": role.role_id, "role": role.body()}
        roles.create(parent=f"projects/{c.project}", body=body).execute()
        return
    if found.get("deleted"):
        roles.undelete(name=names.head_role, body={}).execute()
    if sorted(found.get("includedPermissions", [])) != sorted(role.permissions) or found.get("deleted"):
        roles.patch(
            name=names.head_role, body=role.body(), updateMask="title,description,includedPermissions,stage"
        ).execute()


def delete_role(c: GcpClients, names: GcpNames) -> list[str]:
    found = get_role(c, names)
    if found is None or found.get("deleted"):
        return []
    c.iam.projects().roles().delete(name=names.head_role).execute()
    return [names.head_role]


# -- policies ---------------------------------------------------------------------------------------


def has_binding(policy: Policy, role: str, member: str) -> bool:
    return any(b["role"] == role and member in b.get("members", []) for b in policy.get("bindings", []))


def with_binding(policy: Policy, role: str, member: str, condition: dict[str, str] | None = None) -> Policy:
    """`policy` with `member` holding `role` (under `condition`, and only under it, when given)."""
    bindings = [dict(b) for b in policy.get("bindings", [])]
    if condition is not None:  # an unconditional grant of the same role would make the condition moot
        bindings = [
            {**b, "members": [m for m in b.get("members", []) if m != member]}
            if b["role"] == role and "condition" not in b
            else b
            for b in bindings
        ]
        bindings = [b for b in bindings if b["members"]]
    for b in bindings:
        if b["role"] == role and b.get("condition") == condition:
            b["members"] = sorted({*b.get("members", []), member})
            break
    else:
        bindings.append(
            {"role": role, "members": [member], **({"condition": condition} if condition else {})}
        )
    out = {**policy, "bindings": bindings}
    if any("condition" in b for b in bindings):
        out["version"] = 3  # conditional bindings need policy version 3
    return out


def without_member(policy: Policy, member: str, role: str | None = None) -> Policy:
    """`policy` less `member` (also in its `deleted:` form, left behind when an account is deleted)."""

    def keep(m: str, b: dict[str, Any]) -> bool:
        ours = m == member or m.startswith(f"deleted:{member}?")
        return not (ours and (role is None or b["role"] == role))

    bindings = []
    for b in policy.get("bindings", []):
        members = [m for m in b.get("members", []) if keep(m, b)]
        if members:
            bindings.append({**b, "members": members})
    return {**policy, "bindings": bindings}


PolicyIO = tuple[Callable[[], Policy], Callable[[Policy], Any]]


def update_policy(io: PolicyIO, change: Callable[[Policy], Policy], timeout: float, what: str) -> bool:
    """Read, change, write back with the read's etag; a concurrent change makes us read again.
    Returns whether anything changed."""
    read, write = io
    changed_any: list[bool] = []

    def attempt() -> bool:
        policy = read()
        changed = change(policy)
        if changed == policy:
            return True
        try:
            write(changed)
        except Exception as exc:
            if is_conflict(exc):
                return False
            raise
        changed_any.append(True)
        return True

    poll(attempt, timeout=timeout, what=what)
    return bool(changed_any)


_V3 = {"options": {"requestedPolicyVersion": 3}}


def project_policy(c: GcpClients) -> PolicyIO:
    projects = c.resource_manager.projects()
    resource = f"projects/{c.project}"
    return (
        # Version 3 so conditional bindings of others survive our read-modify-write.
        lambda: dict(projects.getIamPolicy(resource=resource, body=_V3).execute()),
        lambda p: projects.setIamPolicy(resource=resource, body={"policy": p}).execute(),
    )


def account_policy(c: GcpClients, email: str) -> PolicyIO:
    accounts = c.iam.projects().serviceAccounts()
    resource = _account_name(c, email)
    return (
        lambda: dict(accounts.getIamPolicy(resource=resource).execute()),
        lambda p: accounts.setIamPolicy(resource=resource, body={"policy": p}).execute(),
    )


def bucket_policy(c: GcpClients, bucket: str) -> PolicyIO:
    buckets = c.storage.buckets()
    return (
        lambda: dict(buckets.getIamPolicy(bucket=bucket).execute()),
        lambda p: buckets.setIamPolicy(bucket=bucket, body=p).execute(),
    )


def member(email: str) -> str:
    return f"serviceAccount:{email}"


def ensure_act_as(c: GcpClients, head: str, worker: str, timeout: float) -> None:
    """The head may launch instances as the worker account, and as no other."""
    update_policy(
        account_policy(c, worker),
        lambda p: with_binding(p, ACT_AS_ROLE, member(head)),
        timeout,
        f"granting {head} use of {worker}",
    )
