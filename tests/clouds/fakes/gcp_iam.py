"""IAM (service accounts, custom roles, their policies), Resource Manager (the project's policy) and
Cloud Storage buckets, in memory, behind the JSON APIs the discovery clients call.

As on GCP: custom roles are soft-deleted (their id can't be reused until undeleted), policies are
read-modify-write guarded by an etag, and members must be service accounts that exist.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from . import gcp_schemas as S
from .gcp_compute import check
from .http import FakeError, Request, Response, Router

ACCOUNT_ID_RE = re.compile(r"^[a-z](?:[-a-z0-9]{4,28}[a-z0-9])$")
ROLE_ID_RE = re.compile(r"^[a-zA-Z0-9_.]{3,64}$")
PERMISSION_RE = re.compile(r"^[a-z]+\.[a-zA-Z]+\.[a-zA-Z]+$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
PREDEFINED_ROLES = {
    "roles/owner",
    "roles/editor",
    "roles/viewer",
    "roles/compute.admin",
    "roles/compute.instanceAdmin.v1",
    "roles/iam.serviceAccountUser",
    "roles/iam.serviceAccountTokenCreator",
    "roles/storage.admin",
    "roles/storage.objectAdmin",
    "roles/storage.objectViewer",
    "roles/storage.objectUser",
    "roles/logging.logWriter",
    "roles/storage.legacyBucketOwner",
    "roles/storage.legacyBucketReader",
}


@dataclass
class Policy:
    bindings: list[dict[str, Any]] = field(default_factory=list)
    version: int = 1
    serial: int = 1

    @property
    def etag(self) -> str:
        return f"BwY{self.serial:08d}="

    def to_json(self, **extra: Any) -> dict[str, Any]:
        return {
            "version": self.version,
            "etag": self.etag,
            "bindings": [dict(b) for b in self.bindings],
            **extra,
        }


@dataclass
class IamState:
    project: str
    service_accounts: dict[str, dict[str, Any]] = field(default_factory=dict)  # by email
    account_policies: dict[str, Policy] = field(default_factory=dict)
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)  # by role id; "deleted" marks soft delete
    project_policy: Policy = field(default_factory=Policy)
    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    bucket_policies: dict[str, Policy] = field(default_factory=dict)
    objects: dict[str, dict[str, bytes]] = field(default_factory=dict)
    generations: dict[tuple[str, str], int] = field(default_factory=dict)  # (bucket, object) -> generation
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100000000000000000001))

    def email(self, account_id: str) -> str:
        return f"{account_id}@{self.project}.iam.gserviceaccount.com"

    def account_exists(self, email: str) -> bool:
        return email in self.service_accounts


class IamApi:
    def __init__(self, state: IamState) -> None:
        self.s = state

    def routes(self, router: Router) -> None:
        add = router.add
        sa = r"/v1/projects/(?P<project>[^/]+)/serviceAccounts"
        add("POST", sa, self.create_account)
        add("GET", rf"{sa}/(?P<email>[^/:]+)", self.get_account)
        add("DELETE", rf"{sa}/(?P<email>[^/:]+)", self.delete_account)
        add("POST", rf"{sa}/(?P<email>[^/:]+):getIamPolicy", self.get_account_policy)
        add("POST", rf"{sa}/(?P<email>[^/:]+):setIamPolicy", self.set_account_policy)
        roles = r"/v1/projects/(?P<project>[^/]+)/roles"
        add("POST", roles, self.create_role)
        add("GET", rf"{roles}/(?P<role>[^/:]+)", self.get_role)
        add("PATCH", rf"{roles}/(?P<role>[^/:]+)", self.patch_role)
        add("DELETE", rf"{roles}/(?P<role>[^/:]+)", self.delete_role)
        add("POST", rf"{roles}/(?P<role>[^/:]+):undelete", self.undelete_role)
        add("POST", r"/v3/projects/(?P<project>[^/:]+):getIamPolicy", self.get_project_policy)
        add("POST", r"/v3/projects/(?P<project>[^/:]+):setIamPolicy", self.set_project_policy)
        b = r"/storage/v1/b"
        add("POST", b, self.insert_bucket)
        add("GET", rf"{b}/(?P<bucket>[^/]+)", self.get_bucket)
        add("PATCH", rf"{b}/(?P<bucket>[^/]+)", self.patch_bucket)
        add("DELETE", rf"{b}/(?P<bucket>[^/]+)", self.delete_bucket)
        add("GET", rf"{b}/(?P<bucket>[^/]+)/iam", self.get_bucket_policy)
        add("PUT", rf"{b}/(?P<bucket>[^/]+)/iam", self.set_bucket_policy)
        add("GET", rf"{b}/(?P<bucket>[^/]+)/o", self.list_objects)
        add("GET", rf"{b}/(?P<bucket>[^/]+)/o/(?P<name>.+)", self.get_object)
        add("DELETE", rf"{b}/(?P<bucket>[^/]+)/o/(?P<name>.+)", self.delete_object)
        add("POST", rf"/upload{b}/(?P<bucket>[^/]+)/o", self.upload_object)

    def _project(self, project: str) -> None:
        if project not in (self.s.project, "-"):
            raise FakeError(403, "forbidden", f"Permission denied on resource project {project}.")

    # -- service accounts ------------------------------------------------------------------------------

    def _account(self, email: str) -> dict[str, Any]:
        email = unquote(email)
        if email not in self.s.service_accounts:
            raise FakeError(
                404, "notFound", f"Unknown service account: projects/{self.s.project}/serviceAccounts/{email}"
            )
        return self.s.service_accounts[email]

    def create_account(self, r: Request, project: str) -> Response:
        self._project(project)
        body = check(r.body, S.CREATE_SERVICE_ACCOUNT, "request")
        account_id = body["accountId"]
        if not ACCOUNT_ID_RE.match(account_id):
            raise FakeError(
                400,
                "invalid",
                f"Invalid account ID '{account_id}': 6-30 characters, lowercase letters, digits and dashes, starting with a letter",
            )
        email = self.s.email(account_id)
        if email in self.s.service_accounts:
            raise FakeError(
                409,
                "alreadyExists",
                f"Service account {account_id} already exists within project projects/{project}.",
            )
        unique = str(next(self.s._ids))
        account = {
            "name": f"projects/{project}/serviceAccounts/{email}",
            "projectId": project,
            "uniqueId": unique,
            "email": email,
            "oauth2ClientId": unique,
            **body.get("serviceAccount", {}),
        }
        self.s.service_accounts[email] = account
        self.s.account_policies[email] = Policy()
        return Response(200, dict(account))

    def get_account(self, r: Request, project: str, email: str) -> Response:
        return Response(200, dict(self._account(email)))

    def delete_account(self, r: Request, project: str, email: str) -> Response:
        account = self._account(email)
        del self.s.service_accounts[account["email"]]
        self.s.account_policies.pop(account["email"], None)
        member = f"serviceAccount:{account['email']}"
        for policy in [
            self.s.project_policy,
            *self.s.account_policies.values(),
            *self.s.bucket_policies.values(),
        ]:
            for binding in policy.bindings:  # as on GCP: the member stays, marked deleted
                binding["members"] = [
                    f"deleted:{m}?uid={account['uniqueId']}" if m == member else m for m in binding["members"]
                ]
        return Response(200, {})

    def _members_exist(self, policy: dict[str, Any]) -> None:
        for binding in policy.get("bindings", []):
            for member in binding["members"]:
                if (
                    member.startswith("serviceAccount:")
                    and member.split(":", 1)[1] not in self.s.service_accounts
                ):
                    raise FakeError(
                        400, "badRequest", f"Service account {member.split(':', 1)[1]} does not exist."
                    )
            role = binding["role"]
            if role.startswith("projects/"):
                role_id = role.rsplit("/", 1)[-1]
                found = self.s.roles.get(role_id)
                if (
                    not role.startswith(f"projects/{self.s.project}/roles/")
                    or found is None
                    or found.get("deleted")
                ):
                    raise FakeError(
                        400, "badRequest", f"Role ({role}) does not exist in the resource's hierarchy."
                    )
            elif role not in PREDEFINED_ROLES:
                raise FakeError(400, "badRequest", f"Role {role} is not supported for this resource.")
            if binding.get("condition") and policy.get("version") != 3:
                raise FakeError(400, "badRequest", "A policy with conditions must have version 3")

    def _set_policy(self, current: Policy, r: Request) -> Policy:
        body = check(
            r.body, S.SET_ACCOUNT_POLICY if "/serviceAccounts/" in r.path else S.SET_POLICY, "request"
        )
        policy = body["policy"]
        if policy.get("etag") and policy["etag"] != current.etag:
            raise FakeError(
                409,
                "aborted",
                "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.",
            )
        self._members_exist(policy)
        return Policy(
            [dict(b) for b in policy.get("bindings", [])], int(policy.get("version") or 1), current.serial + 1
        )

    def get_account_policy(self, r: Request, project: str, email: str) -> Response:
        account = self._account(email)
        return Response(200, self.s.account_policies[account["email"]].to_json())

    def set_account_policy(self, r: Request, project: str, email: str) -> Response:
        account = self._account(email)
        policy = self._set_policy(self.s.account_policies[account["email"]], r)
        allowed = {"roles/iam.serviceAccountUser", "roles/iam.serviceAccountTokenCreator"}
        if any(b["role"] not in allowed for b in policy.bindings):
            raise FakeError(400, "badRequest", "Role is not supported for this resource (a service account).")
        self.s.account_policies[account["email"]] = policy
        return Response(200, policy.to_json())

    # -- custom roles -----------------------------------------------------------------------------------

    def _role_json(self, role_id: str) -> dict[str, Any]:
        return dict(self.s.roles[role_id])

    def _check_permissions(self, role: dict[str, Any]) -> None:
        for permission in role.get("includedPermissions", []):
            if not PERMISSION_RE.match(permission):
                raise FakeError(400, "badRequest", f"Permission {permission} is not valid.")

    def create_role(self, r: Request, project: str) -> Response:
        self._project(project)
        body = check(r.body, S.CREATE_ROLE, "request")
        role_id = body["roleId"]
        if not ROLE_ID_RE.match(role_id):
            raise FakeError(
                400,
                "badRequest",
                f"The role_id ({role_id}) is not valid: letters, digits, _ and . only, 3-64 characters.",
            )
        existing = self.s.roles.get(role_id)
        if existing is not None:
            state = " in a deleted state" if existing.get("deleted") else ""
            raise FakeError(409, "alreadyExists", f"A role with role_id ({role_id}) already exists{state}.")
        self._check_permissions(body["role"])
        self.s.roles[role_id] = {
            "name": f"projects/{project}/roles/{role_id}",
            "stage": "GA",
            **body["role"],
            "etag": "BwA1",
        }
        return Response(200, self._role_json(role_id))

    def _role(self, role: str) -> dict[str, Any]:
        if role not in self.s.roles:
            raise FakeError(
                404, "notFound", f"The role named projects/{self.s.project}/roles/{role} was not found."
            )
        return self.s.roles[role]

    def get_role(self, r: Request, project: str, role: str) -> Response:
        self._role(role)
        return Response(200, self._role_json(role))

    def patch_role(self, r: Request, project: str, role: str) -> Response:
        current = self._role(role)
        if current.get("deleted"):
            raise FakeError(400, "failedPrecondition", f"You can't update a deleted role: {role}.")
        body = check(r.body, S.PATCH_ROLE, "role")
        self._check_permissions(body)
        mask = [m for m in r.query.get("updateMask", "").split(",") if m]
        for key in mask or list(body):
            if key not in S.PATCH_ROLE:
                raise FakeError(400, "badRequest", f"Invalid update mask path: {key}")
            current[key] = body.get(key)
        return Response(200, self._role_json(role))

    def delete_role(self, r: Request, project: str, role: str) -> Response:
        current = self._role(role)
        if current.get("deleted"):
            raise FakeError(400, "failedPrecondition", f"The role {role} is already deleted.")
        current["deleted"] = True
        return Response(200, self._role_json(role))

    def undelete_role(self, r: Request, project: str, role: str) -> Response:
        current = self._role(role)
        if not current.get("deleted"):
            raise FakeError(400, "failedPrecondition", f"The role {role} is not deleted.")
        current.pop("deleted")
        return Response(200, self._role_json(role))

    # -- project policy ---------------------------------------------------------------------------------

    def get_project_policy(self, r: Request, project: str) -> Response:
        self._project(project)
        return Response(200, self.s.project_policy.to_json())

    def set_project_policy(self, r: Request, project: str) -> Response:
        self._project(project)
        self.s.project_policy = self._set_policy(self.s.project_policy, r)
        return Response(200, self.s.project_policy.to_json())

    # -- buckets ----------------------------------------------------------------------------------------

    def _bucket(self, bucket: str) -> dict[str, Any]:
        if bucket not in self.s.buckets:
            raise FakeError(404, "notFound", "The specified bucket does not exist.")
        return self.s.buckets[bucket]

    def insert_bucket(self, r: Request) -> Response:
        self._project(r.query.get("project", ""))
        body = check(r.body, S.BUCKET)
        name = body["name"]
        if not BUCKET_RE.match(name) or "goog" in name:
            raise FakeError(400, "invalid", f"Invalid bucket name: '{name}'")
        if name in self.s.buckets:
            raise FakeError(
                409,
                "conflict",
                "Your previous request to create the named bucket succeeded and you already own it.",
            )
        self.s.buckets[name] = {
            "kind": "storage#bucket",
            "id": name,
            "name": name,
            "projectNumber": "123456789012",
            "location": str(body.get("location", "US")).upper(),
            "storageClass": "STANDARD",
            **body,
        }
        owner = {"role": "roles/storage.legacyBucketOwner", "members": [f"projectOwner:{self.s.project}"]}
        self.s.bucket_policies[name] = Policy([owner])
        self.s.objects[name] = {}
        return Response(200, dict(self.s.buckets[name]))

    def get_bucket(self, r: Request, bucket: str) -> Response:
        return Response(200, dict(self._bucket(bucket)))

    def patch_bucket(self, r: Request, bucket: str) -> Response:
        current = self._bucket(bucket)
        body = check(r.body, S.BUCKET_PATCH)
        current.update({k: v for k, v in body.items() if k != "name"})
        return Response(200, dict(current))

    def delete_bucket(self, r: Request, bucket: str) -> Response:
        self._bucket(bucket)
        if self.s.objects[bucket]:
            raise FakeError(409, "conflict", "The bucket you tried to delete is not empty.")
        del self.s.buckets[bucket]
        del self.s.bucket_policies[bucket]
        del self.s.objects[bucket]
        return Response(204)

    def get_bucket_policy(self, r: Request, bucket: str) -> Response:
        self._bucket(bucket)
        return Response(
            200,
            self.s.bucket_policies[bucket].to_json(
                kind="storage#policy", resourceId=f"projects/_/buckets/{bucket}"
            ),
        )

    def set_bucket_policy(self, r: Request, bucket: str) -> Response:
        current = self._bucket(bucket)
        body = check(r.body, S.POLICY, "policy")
        if body.get("etag") and body["etag"] != self.s.bucket_policies[bucket].etag:
            raise FakeError(
                412, "conditionNotMet", "At least one of the pre-conditions you specified did not hold."
            )
        members = [m for b in body.get("bindings", []) for m in b["members"]]
        prevention = current.get("iamConfiguration", {}).get("publicAccessPrevention")
        if prevention == "enforced" and {"allUsers", "allAuthenticatedUsers"} & set(members):
            raise FakeError(
                412,
                "conditionNotMet",
                "The member bindings allUsers and allAuthenticatedUsers are not allowed since public access prevention is enforced.",
            )
        for member in members:
            if (
                member.startswith("serviceAccount:")
                and member.split(":", 1)[1] not in self.s.service_accounts
            ):
                raise FakeError(400, "invalid", f"Invalid argument: service account {member} does not exist.")
        policy = Policy(
            [dict(b) for b in body.get("bindings", [])], 1, self.s.bucket_policies[bucket].serial + 1
        )
        self.s.bucket_policies[bucket] = policy
        return Response(200, policy.to_json(kind="storage#policy", resourceId=f"projects/_/buckets/{bucket}"))

    def _object(self, bucket: str, name: str, data: bytes) -> dict[str, Any]:
        generation = self.s.generations.get((bucket, name), 0)
        return {
            "kind": "storage#object",
            "id": f"{bucket}/{name}/{generation}",
            "name": name,
            "bucket": bucket,
            "generation": str(generation),
            "size": str(len(data)),
        }

    def list_objects(self, r: Request, bucket: str) -> Response:
        """Names in lexical order from `pageToken` (the last name of the previous page), as GCS pages."""
        self._bucket(bucket)
        prefix, after = r.query.get("prefix", ""), r.query.get("pageToken", "")
        names = sorted(n for n in self.s.objects[bucket] if n.startswith(prefix) and n > after)
        limit = int(r.query.get("maxResults") or 1000)
        page = names[:limit]
        body: dict[str, Any] = {
            "kind": "storage#objects",
            "items": [self._object(bucket, n, self.s.objects[bucket][n]) for n in page],
        }
        if len(names) > limit:
            body["nextPageToken"] = page[-1]
        return Response(200, body)

    def get_object(self, r: Request, bucket: str, name: str) -> Response:
        self._bucket(bucket)
        name = unquote(name)
        data = self.s.objects[bucket].get(name)
        if data is None:
            raise FakeError(404, "notFound", f"No such object: {bucket}/{name}")
        if r.query.get("alt") == "media":
            return Response(200, data)
        return Response(200, self._object(bucket, name, data))

    def upload_object(self, r: Request, bucket: str) -> Response:
        """A simple (``uploadType=media``) upload: the body is the object's content."""
        self._bucket(bucket)
        if r.query.get("uploadType") != "media":
            raise FakeError(400, "invalid", "this fake takes simple uploads only (uploadType=media)")
        name = r.query.get("name", "")
        if not name or len(name.encode()) > 1024 or "\r" in name or "\n" in name:
            raise FakeError(400, "invalid", f"Invalid object name: {name!r}")
        self.s.objects[bucket][name] = r.raw
        self.s.generations[(bucket, name)] = self.s.generations.get((bucket, name), 0) + 1
        return Response(200, self._object(bucket, name, r.raw))

    def delete_object(self, r: Request, bucket: str, name: str) -> Response:
        self._bucket(bucket)
        if self.s.objects[bucket].pop(unquote(name), None) is None:
            raise FakeError(404, "notFound", "No such object.")
        return Response(204)
