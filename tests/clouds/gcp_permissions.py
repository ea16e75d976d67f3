"""Which IAM permissions the GCP requests a provider makes need, and whether a principal holds them.

`permissions_of` turns a request the GCP fake logged into the permission checks GCP makes for it: a
permission on a resource (its full name and IAM resource type), including those an insert implies
(an instance with metadata needs setMetadata; with a service account, actAs on that account). `Grants`
evaluates a principal's bindings as the fake's IAM holds them, IAM Conditions included (the CEL
subset our conditions use: ==, !=, &&, ||, parentheses, .extract(), .startsWith()).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fakes.gcp import FakeGcp
from fakes.http import LoggedRequest

COMPUTE = "compute.googleapis.com"


@dataclass(frozen=True)
class Check:
    permission: str
    name: str  # the resource's full name: projects/P/zones/Z/instances/N
    type: str  # its IAM resource type: compute.googleapis.com/Instance

    def __str__(self) -> str:
        return f"{self.permission} on {self.name}"


_VERB = {"GET": "get", "POST": "create", "PATCH": "update", "DELETE": "delete"}
_TYPE = {"networks": "Network", "firewalls": "Firewall", "subnetworks": "Subnetwork", "routers": "Router"}


def _compute(project: str, method: str, rest: str, body: Any) -> list[Check]:
    """`rest`: the path after /compute/v1/projects/P/."""
    p = f"projects/{project}"
    if m := re.fullmatch(r"(zones|regions|global)(?:/[^/]+)?/operations/[^/]+(?:/wait)?", rest):
        kind = {"zones": "zoneOperations", "regions": "regionOperations", "global": "globalOperations"}
        return [Check(f"compute.{kind[m.group(1)]}.get", f"{p}/{rest}", f"{COMPUTE}/Operation")]
    if rest == "aggregated/instances":
        return [Check("compute.instances.list", p, f"{COMPUTE}/Project")]
    if m := re.fullmatch(r"zones/([^/]+)/instances", rest):
        if method == "POST":
            return _insert_instance(project, m.group(1), body)
        return [Check("compute.instances.list", f"{p}/zones/{m.group(1)}", f"{COMPUTE}/Zone")]
    if m := re.fullmatch(r"(zones/[^/]+/instances/[^/]+)(?:/(setLabels))?", rest):
        verb = m.group(2) or _VERB[method]
        return [Check(f"compute.instances.{verb}", f"{p}/{m.group(1)}", f"{COMPUTE}/Instance")]
    if re.fullmatch(r"regions/[^/]+", rest):
        return [Check("compute.regions.get", f"{p}/{rest}", f"{COMPUTE}/Region")]
    if m := re.fullmatch(
        r"((?:regions/[^/]+|global)/(\w+))(?:/([^/]+))?(?:/(addPeering|removePeering))?", rest
    ):
        scope, collection, name, peering = m.groups()
        rtype = f"{COMPUTE}/{_TYPE[collection]}"
        if peering:
            return [Check(f"compute.networks.{peering}", f"{p}/{scope}/{name}", rtype)]
        if name is None and method == "GET":
            return [Check(f"compute.{collection}.list", f"{p}/{scope}", rtype)]
        verb = _VERB[method]
        checks = [Check(f"compute.{collection}.{verb}", f"{p}/{scope}/{name or body['name']}", rtype)]
        if collection == "firewalls" and verb != "get":  # a firewall rule changes its network's policy
            network = (body.get("network") or "").split("/compute/v1/")[-1] or f"{p}/global/networks"
            checks.append(Check("compute.networks.updatePolicy", network, f"{COMPUTE}/Network"))
        return checks
    raise AssertionError(f"unmapped compute request {method} {rest}")


def _insert_instance(project: str, zone: str, body: dict[str, Any]) -> list[Check]:
    instance = f"projects/{project}/zones/{zone}/instances/{body['name']}"
    checks = [Check("compute.instances.create", instance, f"{COMPUTE}/Instance")]
    for disk in body.get("disks", []):
        name = (
            disk.get("initializeParams", {}).get("diskName") or body["name"]
        )  # the boot disk: the VM's name
        checks.append(
            Check("compute.disks.create", f"projects/{project}/zones/{zone}/disks/{name}", f"{COMPUTE}/Disk")
        )
        image = disk.get("initializeParams", {}).get("sourceImage", "")
        if image.startswith(f"projects/{project}/"):  # a public image needs no grant in this project
            checks.append(Check("compute.images.useReadOnly", image, f"{COMPUTE}/Image"))
    for nic in body.get("networkInterfaces", []):
        subnet = nic["subnetwork"].split("/compute/v1/")[-1]
        checks.append(Check("compute.subnetworks.use", subnet, f"{COMPUTE}/Subnetwork"))
        if nic.get("accessConfigs"):
            checks.append(Check("compute.subnetworks.useExternalIp", subnet, f"{COMPUTE}/Subnetwork"))
    implied = {
        "metadata": "setMetadata",
        "labels": "setLabels",
        "tags": "setTags",
        "serviceAccounts": "setServiceAccount",
    }
    for field, verb in implied.items():
        if body.get(field):
            checks.append(Check(f"compute.instances.{verb}", instance, f"{COMPUTE}/Instance"))
    for account in body.get("serviceAccounts", []):
        email = account["email"]
        checks.append(
            Check(
                "iam.serviceAccounts.actAs",
                f"projects/{project}/serviceAccounts/{email}",
                "iam.googleapis.com/ServiceAccount",
            )
        )
    return checks


def permissions_of(project: str, r: LoggedRequest) -> list[Check]:
    path, body = r.path, r.body or {}
    if m := re.fullmatch(rf"/compute/v1/projects/{project}/(.+)", path):
        return _compute(project, r.method, m.group(1), body)
    if m := re.fullmatch(rf"/v1/projects/{project}/serviceAccounts(?:/([^/:]+))?(?::(\w+))?", path):
        action = m.group(2) or {"GET": "get", "POST": "create", "DELETE": "delete"}[r.method]
        name = path.removeprefix("/v1/") if m.group(1) else f"projects/{project}"
        return [Check(f"iam.serviceAccounts.{action}", name, "iam.googleapis.com/ServiceAccount")]
    if m := re.fullmatch(rf"/v1/projects/{project}/roles(?:/([^/:]+))?(?::(\w+))?", path):
        action = (
            m.group(2) or {"GET": "get", "POST": "create", "PATCH": "update", "DELETE": "delete"}[r.method]
        )
        return [
            Check(f"iam.roles.{action}", f"projects/{project}", "cloudresourcemanager.googleapis.com/Project")
        ]
    if m := re.fullmatch(rf"/v3/projects/{project}:(\w+)", path):
        return [
            Check(
                f"resourcemanager.projects.{m.group(1)}",
                f"projects/{project}",
                "cloudresourcemanager.googleapis.com/Project",
            )
        ]
    if m := re.fullmatch(r"/storage/v1/b(?:/([^/]+))?(/iam|/o(?:/.+)?)?", path):
        bucket, sub = m.group(1), m.group(2) or ""
        if sub == "/iam":
            action = "storage.buckets.getIamPolicy" if r.method == "GET" else "storage.buckets.setIamPolicy"
        elif sub.startswith("/o"):
            action = "storage.objects.list" if sub == "/o" else "storage.objects.delete"
        else:
            action = {"POST": "create", "GET": "get", "PATCH": "update", "DELETE": "delete"}[r.method]
            action = f"storage.buckets.{action}"
        name = bucket or body.get("name")
        return [Check(action, f"projects/_/buckets/{name}", "storage.googleapis.com/Bucket")]
    raise AssertionError(f"unmapped request {r.method} {path}")


def requests_since(fake: FakeGcp, mark: int) -> list[LoggedRequest]:
    return [r for r in fake.server.requests[mark:] if r.status < 400]


# -- evaluation ------------------------------------------------------------------------------------------

# Predefined roles the providers grant, with the permissions that matter here.
PREDEFINED = {
    "roles/iam.serviceAccountUser": {
        "iam.serviceAccounts.actAs",
        "iam.serviceAccounts.get",
        "iam.serviceAccounts.list",
    },
    "roles/storage.objectAdmin": {
        "storage.objects.create",
        "storage.objects.delete",
        "storage.objects.get",
        "storage.objects.list",
    },
}


class Cel:
    """Evaluates the CEL subset of our conditions against `resource.name` and `resource.type`."""

    _TOKEN = re.compile(r'\s*(?:(\|\||&&|==|!=|\(|\)|\.)|("(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z_0-9]*))')

    def __init__(self, expression: str, resource: Check) -> None:
        self.tokens = self._lex(expression)
        self.i = 0
        self.resource = {"resource.name": resource.name, "resource.type": resource.type}

    def _lex(self, text: str) -> list[str]:
        out, pos = [], 0
        while pos < len(text.rstrip()):
            m = self._TOKEN.match(text, pos)
            if not m:
                raise AssertionError(f"CEL: can't read {text[pos:]!r}")
            out.append(m.group(0).strip())
            pos = m.end()
        return out

    def _peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _take(self, want: str | None = None) -> str:
        token = self.tokens[self.i]
        assert want is None or token == want, (want, token)
        self.i += 1
        return token

    def value(self) -> bool:
        result = self._or()
        assert self._peek() is None, self.tokens[self.i :]
        return bool(result)

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            left = bool(left) or bool(right)
        return left

    def _and(self) -> Any:
        left = self._cmp()
        while self._peek() == "&&":
            self._take()
            right = self._cmp()
            left = bool(left) and bool(right)
        return left

    def _cmp(self) -> Any:
        left = self._call()
        if self._peek() in ("==", "!="):
            op = self._take()
            right = self._call()
            return left == right if op == "==" else left != right
        return left

    def _call(self) -> Any:
        value = self._atom()
        while self._peek() == ".":
            self._take()
            method = self._take()
            self._take("(")
            arg = self._atom()
            self._take(")")
            if method == "startsWith":
                value = str(value).startswith(arg)
            elif method == "extract":
                prefix, _, suffix = arg.partition("{name}")
                start = str(value).find(prefix)
                value = "" if start < 0 else str(value)[start + len(prefix) :].split("/", 1)[0]
                assert suffix == "", arg
            else:
                raise AssertionError(f"CEL method {method} is not evaluated here")
        return value

    def _atom(self) -> Any:
        token = self._take()
        if token == "(":
            value = self._or()
            self._take(")")
            return value
        if token.startswith('"'):
            return token[1:-1]
        if token == "resource":
            self._take(".")
            return self.resource[f"resource.{self._take()}"]
        raise AssertionError(f"CEL: unexpected {token}")


@dataclass
class Grants:
    """What `member` may do, as the fake's IAM says: project bindings (custom and predefined roles,
    with conditions) and bindings on service accounts and buckets."""

    fake: FakeGcp
    member: str

    def _role(self, role: str) -> set[str]:
        if role in PREDEFINED:
            return PREDEFINED[role]
        custom = self.fake.iam.roles.get(role.rsplit("/", 1)[-1])
        return set(custom["includedPermissions"]) if custom and not custom.get("deleted") else set()

    def _bindings(self, check: Check) -> list[dict[str, Any]]:
        iam = self.fake.iam
        found = list(iam.project_policy.bindings)
        if check.type == "iam.googleapis.com/ServiceAccount":
            email = check.name.rsplit("/", 1)[-1]
            policy = iam.account_policies.get(email)
            found += policy.bindings if policy else []
        if check.type == "storage.googleapis.com/Bucket":
            policy = iam.bucket_policies.get(check.name.rsplit("/", 1)[-1])
            found += policy.bindings if policy else []
        return found

    def allows(self, check: Check) -> bool:
        for b in self._bindings(check):
            if self.member not in b.get("members", []) or check.permission not in self._role(b["role"]):
                continue
            condition = b.get("condition")
            if condition is None or Cel(condition["expression"], check).value():
                return True
        return False

    def denied(self, checks: list[Check]) -> list[str]:
        return sorted({str(c) for c in checks if not self.allows(c)})
