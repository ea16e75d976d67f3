"""The GCP fake: Compute Engine, IAM, Resource Manager and Storage on one local HTTP server.

Point the real SDK clients at `url` (compute: ClientOptions(api_endpoint=url), transport="rest"; the
discovery clients likewise; storage under /storage/v1/). Instances get addresses that are never
connected to: internal 10.x from their subnet, external from 198.51.100.0/24 (TEST-NET-2).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from .gcp_compute import ComputeApi, ComputeState
from .gcp_iam import IamApi, IamState
from .http import FakeError, FakeServer, LoggedRequest, Request, Response, Router

PROJECT = "cloudtik-test"
OWNER = "user:owner@example.com"
REGIONS = {
    "us-central1": ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"],
    "europe-west1": ["europe-west1-b", "europe-west1-c", "europe-west1-d"],
}
_STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
}

Inventory = dict[str, set[str]]


def _error_body(exc: FakeError) -> Any:
    return {
        "error": {
            "code": exc.status,
            "message": f"{exc.message} [{exc.code}]",
            "status": _STATUS.get(exc.status, "UNKNOWN"),
            "errors": [{"message": exc.message, "domain": "global", "reason": exc.code}],
        }
    }


@dataclass
class OperationFault:
    """The operation of the next request matching `method` and `path` ends DONE with `code`: the
    change never happened (a quota exceeded, a resource GCP could not make)."""

    method: str
    path: re.Pattern[str]
    code: str
    message: str
    times: int = 1
    fired: list[str] = field(default_factory=list)


_STATE = ("networks", "subnetworks", "firewalls", "routers", "instances", "disks")


@dataclass
class FakeGcp:
    project: str = PROJECT
    compute: ComputeState = field(init=False)
    iam: IamState = field(init=False)
    server: FakeServer = field(init=False)
    operation_faults: list[OperationFault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.iam = IamState(self.project)
        self.iam.project_policy.bindings.append({"role": "roles/owner", "members": [OWNER]})
        self.compute = ComputeState(self.project, {k: list(v) for k, v in REGIONS.items()})
        self.compute.service_account_exists = self.iam.account_exists
        router = Router()
        ComputeApi(self.compute).routes(router)
        IamApi(self.iam).routes(router)
        self.server = FakeServer(self._handle(router), _error_body)

    def _handle(self, router: Router) -> Any:
        def handle(request: Request) -> Response:
            fault = next(
                (
                    f
                    for f in self.operation_faults
                    if f.times > 0 and f.method == request.method and f.path.search(request.path)
                ),
                None,
            )
            if fault is None:
                return router.dispatch(request)
            before = {k: copy.deepcopy(getattr(self.compute, k)) for k in _STATE}
            response = router.dispatch(request)
            if not isinstance(response.body, dict) or response.body.get("kind") != "compute#operation":
                return response
            for k, v in before.items():  # the change is undone: the operation failed
                setattr(self.compute, k, v)
            fault.times -= 1
            fault.fired.append(request.path)
            link = response.body["selfLink"].split(f"projects/{self.project}/", 1)[1]
            scope, _, name = link.rpartition("/operations/")
            op = self.compute.operations[f"{scope}/{name}"]
            op["error"] = {"errors": [{"code": fault.code, "message": fault.message}]}
            op["httpErrorStatusCode"] = 403 if fault.code == "QUOTA_EXCEEDED" else 400
            return response

        return handle

    def fail_operation(
        self, method: str, path: str, code: str, message: str, times: int = 1
    ) -> OperationFault:
        """Make the operation of the next `times` requests matching `method` and `path` fail."""
        fault = OperationFault(method, re.compile(path), code, message, times)
        self.operation_faults.append(fault)
        return fault

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> FakeGcp:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    # -- test helpers -------------------------------------------------------------------------------

    def mutations(self) -> list[LoggedRequest]:
        """Requests that change something (GCP reads a policy or waits for an operation with a POST)."""
        reads = (":getIamPolicy", "/wait")
        return [r for r in self.server.mutations() if not r.path.endswith(reads)]

    def put_object(self, bucket: str, name: str, data: bytes = b"x") -> None:
        self.iam.objects[bucket][name] = data

    def add_network(self, name: str, subnets: dict[str, str], region: str = "us-central1") -> str:
        """A network someone else made (the client's, or a shared one); returns its self link."""
        link = self.compute.link(f"global/networks/{name}")
        self.compute.networks[name] = {
            "name": name,
            "selfLink": link,
            "autoCreateSubnetworks": False,
            "subnetworks": [],
            "peerings": [],
        }
        for sub, cidr in subnets.items():
            sub_link = self.compute.link(f"regions/{region}/subnetworks/{sub}")
            self.compute.subnetworks[(region, sub)] = {
                "name": sub,
                "network": link,
                "ipCidrRange": cidr,
                "selfLink": sub_link,
                "region": self.compute.link(f"regions/{region}"),
            }
            self.compute.networks[name]["subnetworks"].append(sub_link)
        return link

    def inventory(self) -> Inventory:
        """Everything in the project, whoever made it (compare before/after to find leaks)."""
        c, i = self.compute, self.iam
        live = lambda m: not m.startswith("deleted:")  # noqa: E731
        return {
            "networks": set(c.networks),
            "subnetworks": {n for _, n in c.subnetworks},
            "firewalls": set(c.firewalls),
            "routers": {n for _, n in c.routers},
            "nats": {f"{r['name']}/{n['name']}" for r in c.routers.values() for n in r.get("nats", [])},
            "peerings": {
                f"{net['name']}/{p['name']}" for net in c.networks.values() for p in net["peerings"]
            },
            "instances": {n for _, n in c.instances},
            "disks": {n for _, n in c.disks},
            "service_accounts": set(i.service_accounts),
            "roles": {r for r, v in i.roles.items() if not v.get("deleted")},
            "project_bindings": {
                f"{b['role']} {m}"
                for b in i.project_policy.bindings
                for m in b["members"]
                if live(m) and m != OWNER
            },
            "account_bindings": {
                f"{e} {b['role']} {m}"
                for e, p in i.account_policies.items()
                for b in p.bindings
                for m in b["members"]
                if live(m)
            },
            "buckets": set(i.buckets),
            "bucket_bindings": {
                f"{n} {b['role']} {m}"
                for n, p in i.bucket_policies.items()
                for b in p.bindings
                for m in b["members"]
                if live(m) and not m.startswith("project")
            },
        }


def counts(inv: Inventory) -> dict[str, int]:
    return {kind: len(ids) for kind, ids in inv.items() if ids}


def leaks(before: Inventory, after: Inventory) -> Inventory:
    return {k: after[k] - before.get(k, set()) for k in after if after[k] - before.get(k, set())}


# A public-mode workspace, by kind.
EXPECTED_GCP = {
    "networks": 1,
    "subnetworks": 2,
    "firewalls": 2,
    "routers": 1,
    "nats": 1,
    "service_accounts": 2,
    "roles": 1,
    "project_bindings": 1,
    "account_bindings": 1,
    "buckets": 1,
    "bucket_bindings": 2,
}
