"""Which Azure RBAC actions the ARM requests a provider makes need, and whether a principal holds them.

`actions_of` turns a request the Azure fake logged into the checks ARM makes: `<type>/read|write|delete`
on the resource, plus the linked-access checks for what a body references (a NIC joining a subnet, a
VM joining its NIC and being assigned an identity, a subnet joining its NSG and NAT gateway, a NAT
joining its public IP, a peering peering with the remote network). `Grants` evaluates a principal's
role assignments as the fake holds them: scope covers the resource, the role's actions match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fakes import azure_types as AT
from fakes.azure import FakeAzure
from fakes.azure_arm import RESOURCE_GROUPS, parse
from fakes.http import LoggedRequest

_VERB = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}
# The built-in roles the providers assign, with their actions (as Azure documents them).
BUILT_IN_ACTIONS = {
    "f1a07417-d97a-45cb-824c-7a7467783830": [  # Managed Identity Operator
        "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
        "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
        "Microsoft.Authorization/*/read",
        "Microsoft.Insights/alertRules/*",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        "Microsoft.Resources/deployments/*",
        "Microsoft.Support/*",
    ],
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": ["Microsoft.Storage/storageAccounts/blobServices/containers/*"],
}


@dataclass(frozen=True)
class Check:
    action: str
    resource: str  # a resource id (the scope an assignment must cover)

    def __str__(self) -> str:
        return f"{self.action} on {self.resource}"


def _type_of(resource_id: str) -> str:
    return parse(resource_id).type


def _refs(body: Any) -> list[str]:
    """Every `{"id": ...}` a body references."""
    found: list[str] = []
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "id" and isinstance(value, str) and value.startswith("/subscriptions/"):
                found.append(value)
            else:
                found.extend(_refs(value))
    elif isinstance(body, list):
        for item in body:
            found.extend(_refs(item))
    return found


def actions_of(r: LoggedRequest) -> list[Check]:
    path = r.path.rstrip("/")
    if "/providers/microsoft.fake/operations/" in path.lower():
        return []  # polling an operation: authorized with the request that started it
    if path.lower().endswith("/providers/microsoft.resources/tags/default"):
        scope = path[: -len("/providers/Microsoft.Resources/tags/default")]
        return [Check(f"Microsoft.Resources/tags/{_VERB[r.method]}", scope)]
    if re.fullmatch(r"/subscriptions/[^/]+/resourceGroups/[^/]+/resources", path, re.IGNORECASE):
        return [
            Check("Microsoft.Resources/subscriptions/resourceGroups/resources/read", path.rsplit("/", 1)[0])
        ]
    p = parse(path)
    rtype = "Microsoft.Resources/subscriptions/resourceGroups" if p.type == RESOURCE_GROUPS else p.type
    if p.name is None:  # listing a collection: read at its parent
        return [Check(f"{rtype}/read", p.parent)]
    checks = [Check(f"{rtype}/{_VERB[r.method]}", p.id)]
    if r.method != "PUT":
        return checks
    for ref in _refs(r.body):
        if ref.lower() == p.id.lower():
            continue
        ref_type = _type_of(ref)
        if p.type == AT.PEERING:
            checks.append(Check(f"{AT.VNET}/peer/action", ref))
        elif ref_type == AT.IDENTITY:
            checks.append(Check(f"{AT.IDENTITY}/assign/action", ref))
        elif ref_type.startswith("Microsoft.Network/"):
            checks.append(Check(f"{ref_type}/join/action", ref))
    if p.type == AT.VM:  # the identities a VM is given are keys of a map, not {"id": ...} references
        for ident in (r.body or {}).get("identity", {}).get("userAssignedIdentities", {}):
            checks.append(Check(f"{AT.IDENTITY}/assign/action", ident))
    return checks


def requests_since(fake: FakeAzure, mark: int) -> list[LoggedRequest]:
    return [r for r in fake.server.requests[mark:] if r.status < 400]


# -- evaluation ------------------------------------------------------------------------------------------


def _matches(pattern: str, action: str) -> bool:
    """Azure's action wildcards: `*` matches anything, `/*/` also nothing at all."""
    regex = re.escape(pattern).replace("/\\*/", "/(?:.*/)?").replace("\\*", ".*")
    return re.fullmatch(regex, action, re.IGNORECASE) is not None


def _covers(scope: str, resource: str) -> bool:
    s, r = scope.lower().rstrip("/"), resource.lower().rstrip("/")
    return r == s or r.startswith(s + "/")


@dataclass
class Grants:
    fake: FakeAzure
    principal: str

    def _actions(self, role_definition_id: str) -> list[str]:
        guid = role_definition_id.rsplit("/", 1)[-1].lower()
        if guid in BUILT_IN_ACTIONS:
            return BUILT_IN_ACTIONS[guid]
        (role,) = [d for d in self.fake.of_type(AT.ROLE_DEFINITION) if d.name.lower() == guid]
        return [a for p in role.props["permissions"] for a in p["actions"]]

    def allows(self, check: Check) -> bool:
        for a in self.fake.of_type(AT.ROLE_ASSIGNMENT):
            props = a.props
            if props["principalId"] != self.principal or not _covers(props["scope"], check.resource):
                continue
            if any(_matches(pattern, check.action) for pattern in self._actions(props["roleDefinitionId"])):
                return True
        return False

    def denied(self, checks: list[Check]) -> list[str]:
        return sorted({str(c) for c in checks if not self.allows(c)})
