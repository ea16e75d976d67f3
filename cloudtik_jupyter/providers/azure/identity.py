"""User-assigned identities for the head and workers, the head's custom role, and the role assignments
that give them (and only them) their access: all scoped to the workspace's resource group or below."""

from __future__ import annotations

from typing import Any

from ..common.polling import poll
from . import naming as N
from .clients import AzureClients, error_code, is_not_found
from .naming import AzureNames
from .roles import Assignment, RoleDocument

IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"


def get_identity(c: AzureClients, names: AzureNames, kind: str) -> Any | None:
    try:
        return c.msi.user_assigned_identities.get(names.resource_group, names.identity(kind))
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise


def ensure_identity(c: AzureClients, names: AzureNames, kind: str) -> str:
    """The identity's principal id (what role assignments name)."""
    from azure.mgmt.msi.models import Identity

    found = get_identity(c, names, kind)
    if found is None:
        tags = names.tags(N.HEAD_IDENTITY if kind == "head" else N.WORKER_IDENTITY)
        found = c.msi.user_assigned_identities.create_or_update(
            names.resource_group, names.identity(kind), Identity(location=c.location, tags=tags)
        )
    return str(found.principal_id)


def delete_identity(c: AzureClients, names: AzureNames, kind: str) -> list[str]:
    if get_identity(c, names, kind) is None:
        return []
    c.msi.user_assigned_identities.delete(names.resource_group, names.identity(kind))
    return [names.identity(kind)]


# -- the head's custom role -------------------------------------------------------------------------


def get_role(c: AzureClients, names: AzureNames) -> Any | None:
    try:
        return c.authorization.role_definitions.get(names.group_id, names.head_role_guid)
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise


def ensure_role(c: AzureClients, names: AzureNames, doc: RoleDocument) -> None:
    """Create the role, or put its permissions back if they drifted (a PUT of the same id converges)."""
    from azure.mgmt.authorization.v2022_04_01.models import Permission, RoleDefinition

    found = get_role(c, names)
    want, scopes = sorted(doc.actions), [names.group_id, *doc.scopes]
    if (
        found is not None
        and sorted(found.permissions[0].actions) == want
        and sorted(s.lower() for s in found.assignable_scopes) == sorted(s.lower() for s in scopes)
    ):
        return
    role = RoleDefinition(
        role_name=names.head_role_name,
        description=doc.description,
        role_type="CustomRole",
        permissions=[Permission(actions=want, not_actions=[], data_actions=[], not_data_actions=[])],
        assignable_scopes=scopes,
    )
    c.authorization.role_definitions.create_or_update(names.group_id, names.head_role_guid, role)


def delete_role(c: AzureClients, names: AzureNames) -> list[str]:
    if get_role(c, names) is None:
        return []
    c.authorization.role_definitions.delete(names.group_id, names.head_role_guid)
    return [names.head_role_name]


# -- role assignments -------------------------------------------------------------------------------


def assignment_name(names: AzureNames, a: Assignment) -> str:
    return names.guid("assignment", a.scope.lower(), a.role, a.identity)


def get_assignment(c: AzureClients, names: AzureNames, a: Assignment) -> Any | None:
    try:
        return c.authorization.role_assignments.get(a.scope, assignment_name(names, a))
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise


def ensure_assignment(
    c: AzureClients, names: AzureNames, a: Assignment, principal: str, timeout: float
) -> None:
    """Assign, or re-assign when the identity was re-created (an assignment's principal can't change)."""
    from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

    name = assignment_name(names, a)
    found = get_assignment(c, names, a)
    if found is not None and found.principal_id == principal:
        return
    if found is not None:
        c.authorization.role_assignments.delete(a.scope, name)
    params = RoleAssignmentCreateParameters(
        role_definition_id=names.role_id(a.role), principal_id=principal, principal_type="ServicePrincipal"
    )

    def attempt() -> bool:
        try:
            c.authorization.role_assignments.create(a.scope, name, params)
        except Exception as exc:
            if error_code(exc) == "PrincipalNotFound":  # a new identity takes a moment to replicate
                return False
            raise
        return True

    poll(attempt, timeout=timeout, what=f"the {a.identity} identity to be assignable")


def delete_assignment(c: AzureClients, names: AzureNames, a: Assignment) -> list[str]:
    if get_assignment(c, names, a) is None:
        return []
    c.authorization.role_assignments.delete(a.scope, assignment_name(names, a))
    return [f"{a.identity} {a.role} at {a.scope}"]
