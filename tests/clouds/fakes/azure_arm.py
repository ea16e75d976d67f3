"""A generic Azure Resource Manager, in memory: resources keyed by id; PUT, GET, PATCH, DELETE and
collection GET; long-running operations in both ARM styles (Azure-AsyncOperation and Location).

What is particular to a resource type (its schema, references, computed properties, what blocks its
deletion) lives in `azure_types.py`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .http import FakeError, Request, Response
from .schema import F, Problem, find_problem, strip_readonly

SYNC, ASYNC, LOCATION = "sync", "async", "location"
RESOURCE_GROUPS = "Microsoft.Resources/resourceGroups"


@dataclass(frozen=True)
class Path:
    id: str  # without a trailing slash, casing as sent
    type: str  # e.g. Microsoft.Network/virtualNetworks/subnets
    name: str | None  # None: the path names a collection
    parent: str  # the id of the parent resource, resource group or scope

    @property
    def key(self) -> str:
        return self.id.lower()


@dataclass
class Resource:
    id: str
    type: str
    parent: str
    body: dict[str, Any]
    failed: bool = False  # its long-running PUT failed: ARM keeps it, provisioningState Failed

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    @property
    def props(self) -> dict[str, Any]:
        props: dict[str, Any] = self.body.setdefault("properties", {})
        return props


Create = Callable[["Arm", Path, dict[str, Any], "Resource | None"], dict[str, Any]]
Delete = Callable[["Arm", "Resource"], None]


@dataclass(frozen=True)
class TypeSpec:
    schema: Mapping[str, F]
    style: str = SYNC  # how PUT and DELETE answer
    create: Create | None = None  # checks references, computes properties; returns the body to store
    delete: Delete | None = None  # refuses while in use (FakeError), cascades to what goes with it
    virtual_parent: bool = False  # the parent is not a stored resource (blobServices/default)
    delete_style: str | None = None  # when DELETE answers otherwise than PUT

    @property
    def deletes(self) -> str:
        return self.delete_style or self.style


def parse(path: str) -> Path:
    segs = [s for s in path.split("/") if s]
    low = [s.lower() for s in segs]
    if len(segs) < 3 or low[0] != "subscriptions":
        raise FakeError(404, "InvalidResourceId", f"no such resource path {path}")
    ident = "/" + "/".join(segs)
    if "providers" not in low[2:]:
        if low[2] != "resourcegroups" or len(segs) > 4:
            raise FakeError(404, "InvalidResourceId", f"no such resource path {path}")
        name = segs[3] if len(segs) == 4 else None
        return Path(ident, RESOURCE_GROUPS, name, "/" + "/".join(segs[:2]))
    k = len(low) - 1 - low[::-1].index("providers")
    base, ns, pairs = segs[:k], segs[k + 1], segs[k + 2 :]
    if not pairs:
        raise FakeError(404, "InvalidResourceId", f"no such resource path {path}")
    rtype = "/".join([ns, *pairs[0::2]])
    item = len(pairs) % 2 == 0
    above = pairs[:-2] if item else pairs[:-1]
    parent = "/" + "/".join([*base, "providers", ns, *above] if above else base)
    return Path(ident, rtype, pairs[-1] if item else None, parent)


def problem_error(problem: Problem, rtype: str) -> FakeError:
    if problem.kind == "unknown":
        return FakeError(
            400,
            "InvalidRequestContent",
            f"The request content was invalid and could not be deserialized: Could not find member "
            f"'{problem.path.split('.')[-1]}' on object of type '{rtype.rsplit('/', 1)[-1]}'. Path '{problem.path}'.",
        )
    if problem.kind == "missing":
        return FakeError(
            400,
            "InvalidRequestFormat",
            f"Cannot parse the request: required property '{problem.path}' is missing.",
        )
    return FakeError(400, "InvalidParameter", f"Property '{problem.path}' is invalid: {problem.detail}")


@dataclass
class Operation:
    style: str
    polls_left: int
    final: Any  # body of the final answer (Location style), or None
    error: dict[str, str] | None = None  # the operation ends Failed with this error


@dataclass
class OperationFault:
    """The long-running operation of the next PUT or DELETE matching `method` and `path` fails."""

    method: str
    path: re.Pattern[str]
    code: str
    message: str
    times: int = 1
    fired: list[str] = field(default_factory=list)


@dataclass
class Arm:
    subscription: str
    tenant: str
    types: dict[str, TypeSpec] = field(default_factory=dict)  # by lowercased type
    resources: dict[str, Resource] = field(default_factory=dict)  # by lowercased id
    operations: dict[str, Operation] = field(default_factory=dict)
    operation_faults: list[OperationFault] = field(default_factory=list)
    _ops: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- the store ------------------------------------------------------------------------------------

    def get(self, ident: str) -> Resource | None:
        return self.resources.get(ident.rstrip("/").lower())

    def require(self, ident: str, where: str) -> Resource:
        found = self.get(ident)
        if found is None:
            raise FakeError(
                400, "InvalidResourceReference", f"Resource {ident} referenced by {where} was not found."
            )
        return found

    def of_type(self, rtype: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type.lower() == rtype.lower()]

    def children(self, parent: str, rtype: str | None = None) -> list[Resource]:
        p = parent.lower()
        return [
            r
            for r in self.resources.values()
            if r.parent.lower() == p and (rtype is None or r.type.lower() == rtype.lower())
        ]

    def remove(self, resource: Resource) -> None:
        spec = self.types.get(resource.type.lower())
        if spec is not None and spec.delete is not None:
            spec.delete(self, resource)
        self.resources.pop(resource.id.lower(), None)

    def view(self, r: Resource) -> dict[str, Any]:
        body = {**r.body, "id": r.id, "name": r.name, "type": r.type}
        if r.type != RESOURCE_GROUPS or "properties" in body:
            state = "Failed" if r.failed else "Succeeded"
            body["properties"] = {**r.body.get("properties", {}), "provisioningState": state}
        return body

    def fail_operation(
        self, method: str, path: str, code: str, message: str, times: int = 1
    ) -> OperationFault:
        """Make the long-running operation of the next `times` requests matching `method` and `path`
        end Failed with `code`: a PUT leaves its resource behind in provisioningState Failed."""
        fault = OperationFault(method, re.compile(path, re.IGNORECASE), code, message, times)
        self.operation_faults.append(fault)
        return fault

    def _operation_fault(self, r: Request) -> OperationFault | None:
        for f in self.operation_faults:
            if f.times > 0 and f.method == r.method and f.path.search(r.path):
                f.times -= 1
                f.fired.append(r.path)
                return f
        return None

    # -- HTTP ----------------------------------------------------------------------------------------

    def handle(self, r: Request) -> Response:
        if "/providers/microsoft.fake/operations/" in r.path.lower():
            return self._poll(r)
        if "api-version" not in r.query:
            raise FakeError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        self._check_api_version(r)
        low = r.path.lower().rstrip("/")
        if low.endswith("/providers/microsoft.resources/tags/default"):
            return self._tags(r, r.path.rstrip("/")[: -len("/providers/Microsoft.Resources/tags/default")])
        if (
            low.count("/") == 5
            and "/resourcegroups/" in low
            and low.endswith("/resources")
            and r.method == "GET"
        ):
            group = r.path.rstrip("/").rsplit("/", 1)[0].lower() + "/"
            inside = [
                x
                for x in self.resources.values()
                if x.id.lower().startswith(group)
                and "/providers/microsoft.authorization/" not in x.id.lower()
            ]
            top = [x for x in inside if x.parent.lower() == group.rstrip("/")]
            return Response(
                200,
                {
                    "value": [
                        {
                            "id": x.id,
                            "name": x.name,
                            "type": x.type,
                            "location": x.body.get("location"),
                            "tags": x.body.get("tags", {}),
                        }
                        for x in top
                    ]
                },
            )
        path = parse(r.path)
        spec = self.types.get(path.type.lower())
        if spec is None:
            raise FakeError(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for type '{path.type}'.",
            )
        if path.name is None:
            if r.method != "GET":
                raise FakeError(405, "MethodNotAllowed", f"{r.method} on a collection")
            return Response(200, {"value": [self.view(x) for x in self.children(path.parent, path.type)]})
        handler = {
            "GET": self._get,
            "HEAD": self._head,
            "PUT": self._put,
            "PATCH": self._patch,
            "DELETE": self._delete,
        }
        return handler[r.method](r, path, spec)

    def _check_api_version(self, r: Request) -> None:
        """Only the api-versions the installed SDKs send to the provider the path names."""
        from .azure_models import api_versions

        low = r.path.lower()
        namespace = (
            low.rsplit("/providers/", 1)[1].split("/", 1)[0]
            if "/providers/" in low
            else "microsoft.resources"
        )
        if low.endswith("/providers/microsoft.resources/tags/default"):
            namespace = "microsoft.resources"
        known = api_versions().get(namespace)
        version = r.query["api-version"]
        if known is not None and version not in known:
            raise FakeError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are '{', '.join(sorted(known))}'.",
            )

    def _get(self, r: Request, path: Path, spec: TypeSpec) -> Response:
        found = self.get(path.id)
        if found is None:
            code = "ResourceGroupNotFound" if path.type == RESOURCE_GROUPS else "ResourceNotFound"
            raise FakeError(
                404, code, f"The Resource '{path.type}/{path.name}' under resource group was not found."
            )
        return Response(200, self.view(found))

    def _head(self, r: Request, path: Path, spec: TypeSpec) -> Response:
        return Response(204 if self.get(path.id) else 404)

    def _check_parent(self, path: Path, spec: TypeSpec) -> None:
        if path.type == RESOURCE_GROUPS or spec.virtual_parent:
            return
        if (
            self.get(path.parent) is None
            and path.parent.lower() != f"/subscriptions/{self.subscription}".lower()
        ):
            rg = "/resourcegroups/" in path.parent.lower() and path.parent.lower().count("/") == 4
            code = "ResourceGroupNotFound" if rg else "ParentResourceNotFound"
            raise FakeError(
                404,
                code,
                f"Can not perform requested operation on nested resource. Parent resource '{path.parent}' not found.",
            )

    def _put(self, r: Request, path: Path, spec: TypeSpec) -> Response:
        self._check_parent(path, spec)
        problem = find_problem(r.body if r.body is not None else {}, spec.schema)
        if problem:
            raise problem_error(problem, path.type)
        existing = self.get(path.id)
        body = strip_readonly(r.body or {}, spec.schema)  # ARM ignores what a client can't set
        body = {k: v for k, v in body.items() if k not in ("id", "name", "type", "etag")}
        stored = spec.create(self, path, body, existing) if spec.create else body
        fault = self._operation_fault(r) if spec.style != SYNC else None
        resource = Resource(
            existing.id if existing else path.id, path.type, path.parent, stored, fault is not None
        )
        self.resources[path.key] = resource
        status = 200 if existing else 201
        error = {"code": fault.code, "message": fault.message} if fault else None
        if spec.style == SYNC:
            return Response(status, self.view(resource))
        if spec.style == LOCATION:
            return Response(202, None, {"Location": self._operation(r, LOCATION, self.view(resource), error)})
        answer = self.view(resource)
        answer["properties"]["provisioningState"] = "Updating"
        return Response(status, answer, {"Azure-AsyncOperation": self._operation(r, ASYNC, None, error)})

    def _patch(self, r: Request, path: Path, spec: TypeSpec) -> Response:
        found = self.get(path.id)
        if found is None:
            raise FakeError(404, "ResourceNotFound", f"The Resource '{path.type}/{path.name}' was not found.")
        from .azure_schemas import VIRTUAL_MACHINE_UPDATE  # only VMs are patched here

        problem = find_problem(r.body or {}, VIRTUAL_MACHINE_UPDATE)
        if problem:
            raise problem_error(problem, path.type)
        if "tags" in (r.body or {}):
            found.body["tags"] = dict(r.body["tags"])
        return Response(200, self.view(found))

    def _delete(self, r: Request, path: Path, spec: TypeSpec) -> Response:
        found = self.get(path.id)
        if found is None:
            return Response(204)
        view = self.view(found)
        self.remove(found)
        if spec.deletes == SYNC:
            return Response(200, view if path.type.startswith("Microsoft.Authorization") else None)
        url = self._operation(r, spec.deletes, None)
        if spec.deletes == LOCATION:
            return Response(202, None, {"Location": url})
        return Response(202, None, {"Azure-AsyncOperation": url, "Location": url})

    def _tags(self, r: Request, scope: str) -> Response:
        """The Tags API on any resource: Merge, Replace or Delete its tags in one request."""
        found = self.get(scope)
        if found is None:
            raise FakeError(404, "ResourceNotFound", f"The Resource {scope} was not found.")
        if r.method == "GET":
            return Response(
                200,
                {
                    "id": f"{found.id}/providers/Microsoft.Resources/tags/default",
                    "name": "default",
                    "properties": {"tags": found.body.get("tags", {})},
                },
            )
        if r.method != "PATCH":
            raise FakeError(405, "MethodNotAllowed", f"{r.method} on tags")
        from .azure_schemas import TAGS_PATCH

        body = r.body or {}
        problem = find_problem(body, TAGS_PATCH)
        if problem:
            raise problem_error(problem, "Tags")
        given, current = body["properties"]["tags"], dict(found.body.get("tags", {}))
        if body["operation"] == "Merge":
            current.update(given)
        elif body["operation"] == "Replace":
            current = dict(given)
        else:
            current = {k: v for k, v in current.items() if k not in given}
        found.body["tags"] = current
        return Response(
            200,
            {
                "id": f"{found.id}/providers/Microsoft.Resources/tags/default",
                "name": "default",
                "properties": {"tags": current},
            },
        )

    def _operation(self, r: Request, style: str, final: Any, error: dict[str, str] | None = None) -> str:
        op = f"op-{next(self._ops)}"
        self.operations[op] = Operation(style, 1, final, error)
        return f"{r.base_url}/subscriptions/{self.subscription}/providers/Microsoft.Fake/operations/{op}?api-version=2024-01-01"

    def _poll(self, r: Request) -> Response:
        op_id = r.path.rstrip("/").rsplit("/", 1)[-1]
        op = self.operations.get(op_id)
        if op is None:
            raise FakeError(404, "OperationNotFound", f"no operation {op_id}")
        running = op.polls_left > 0
        op.polls_left -= 1
        if op.style == ASYNC:
            if running:
                return Response(200, {"status": "InProgress"})
            if op.error is not None:
                return Response(200, {"status": "Failed", "error": op.error})
            return Response(200, {"status": "Succeeded"})
        if running:
            return Response(202, None, {"Location": f"{r.base_url}{r.path}?api-version=2024-01-01"})
        if op.error is not None:
            raise FakeError(400, op.error["code"], op.error["message"])
        return Response(200, op.final) if op.final is not None else Response(204)
