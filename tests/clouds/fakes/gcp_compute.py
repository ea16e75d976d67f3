"""Compute Engine, in memory: networks, subnetworks, firewalls, routers (Cloud NAT), instances, disks and
the operations that track every change.

Operations start RUNNING and turn DONE when polled, so the provider's own operation waiting is exercised.
References (network, subnetwork, service account) must name existing resources, as on GCP.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from . import gcp_schemas as S
from .http import FakeError, Request, Response, Router
from .schema import F, Problem, find_problem

COMPUTE = "https://www.googleapis.com/compute/v1/"
_PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
_LABEL_CLAUSE = re.compile(r'^\(?\s*labels\.([a-z][a-z0-9_-]*)\s*=\s*"?([a-z0-9_-]*)"?\s*\)?$')


def payload_error(problem: Problem, resource: str) -> FakeError:
    if problem.kind == "unknown":
        return FakeError(
            400,
            "invalid",
            f'Invalid JSON payload received. Unknown name "{problem.path.split(".")[-1]}" at '
            f"'{resource}': Cannot find field.",
        )
    if problem.kind == "missing":
        return FakeError(400, "required", f"Required field '{resource}.{problem.path}' not specified")
    return FakeError(400, "invalid", f"Invalid value for field '{resource}.{problem.path}': {problem.detail}")


def check(body: Any, fields: dict[str, F], resource: str = "resource") -> dict[str, Any]:
    problem = find_problem(body, fields)
    if problem:
        raise payload_error(problem, resource)
    return dict(body)


def relative(link: str, base_url: str = "") -> str:
    """A reference as GCP accepts it (full URL, projects/..., or global/...), made project-relative."""
    prefixes = [COMPUTE, "https://compute.googleapis.com/compute/v1/"]
    if base_url:
        prefixes.append(f"{base_url}/compute/v1/")
    for prefix in prefixes:
        if link.startswith(prefix):
            link = link[len(prefix) :]
    return link


def fingerprint(data: Any) -> str:
    return hashlib.sha256(repr(data).encode()).hexdigest()[:16]


@dataclass
class ComputeState:
    project: str
    regions: dict[str, list[str]]
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    subnetworks: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    firewalls: dict[str, dict[str, Any]] = field(default_factory=dict)
    routers: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    instances: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    disks: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    service_account_exists: Any = None  # callable(email) -> bool, wired by the GCP fake
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    _public: itertools.count[int] = field(default_factory=lambda: itertools.count(10))
    _created: itertools.count[int] = field(default_factory=itertools.count)

    def link(self, path: str) -> str:
        return f"{COMPUTE}projects/{self.project}/{path}"

    def region_of_zone(self, zone: str) -> str:
        for region, zones in self.regions.items():
            if zone in zones:
                return region
        raise FakeError(400, "invalid", f"Invalid value for field 'zone': '{zone}'. Unknown zone.")


class ComputeApi:
    def __init__(self, state: ComputeState) -> None:
        self.s = state

    def routes(self, router: Router) -> None:
        p = r"/compute/v1/projects/(?P<project>[^/]+)"
        add = router.add
        add("GET", rf"{p}/regions/(?P<region>[^/]+)", self.get_region)
        for kind in ("networks", "firewalls"):
            add("POST", rf"{p}/global/{kind}", getattr(self, f"insert_{kind}"))
            add("GET", rf"{p}/global/{kind}", lambda r, project, k=kind: self.list_global(r, project, k))
            add(
                "GET",
                rf"{p}/global/{kind}/(?P<name>[^/]+)",
                lambda r, project, name, k=kind: self.get_global(k, name),
            )
            add("DELETE", rf"{p}/global/{kind}/(?P<name>[^/]+)", getattr(self, f"delete_{kind}"))
        add("PATCH", rf"{p}/global/firewalls/(?P<name>[^/]+)", self.patch_firewall)
        add("POST", rf"{p}/global/networks/(?P<name>[^/]+)/addPeering", self.add_peering)
        add("POST", rf"{p}/global/networks/(?P<name>[^/]+)/removePeering", self.remove_peering)
        for kind in ("subnetworks", "routers"):
            add("POST", rf"{p}/regions/(?P<region>[^/]+)/{kind}", getattr(self, f"insert_{kind}"))
            add(
                "GET",
                rf"{p}/regions/(?P<region>[^/]+)/{kind}",
                lambda r, project, region, k=kind: self.list_regional(k, region),
            )
            add(
                "GET",
                rf"{p}/regions/(?P<region>[^/]+)/{kind}/(?P<name>[^/]+)",
                lambda r, project, region, name, k=kind: self.get_regional(k, region, name),
            )
            add(
                "DELETE",
                rf"{p}/regions/(?P<region>[^/]+)/{kind}/(?P<name>[^/]+)",
                getattr(self, f"delete_{kind}"),
            )
        add("PATCH", rf"{p}/regions/(?P<region>[^/]+)/routers/(?P<name>[^/]+)", self.patch_router)
        add("POST", rf"{p}/zones/(?P<zone>[^/]+)/instances", self.insert_instance)
        add("GET", rf"{p}/zones/(?P<zone>[^/]+)/instances", self.list_instances)
        add("GET", rf"{p}/aggregated/instances", self.aggregated_instances)
        add("GET", rf"{p}/zones/(?P<zone>[^/]+)/instances/(?P<name>[^/]+)", self.get_instance)
        add("DELETE", rf"{p}/zones/(?P<zone>[^/]+)/instances/(?P<name>[^/]+)", self.delete_instance)
        add("POST", rf"{p}/zones/(?P<zone>[^/]+)/instances/(?P<name>[^/]+)/setLabels", self.set_labels)
        for scope in (r"global", r"regions/[^/]+", r"zones/[^/]+"):
            add("GET", rf"{p}/(?P<scope>{scope})/operations/(?P<name>[^/]+)", self.get_operation)
            add("POST", rf"{p}/(?P<scope>{scope})/operations/(?P<name>[^/]+)/wait", self.wait_operation)

    # -- helpers ------------------------------------------------------------------------------------

    def _project(self, project: str) -> None:
        if project != self.s.project:
            raise FakeError(403, "forbidden", f"Project {project} not found or permission denied")

    def _operation(self, kind: str, target: str, scope: str) -> Response:
        name = f"operation-{next(self.s._ids)}"
        op = {
            "kind": "compute#operation",
            "id": str(next(self.s._ids)),
            "name": name,
            "operationType": kind,
            "targetLink": self.s.link(target),
            "status": "RUNNING",
            "progress": 0,
            "selfLink": self.s.link(f"{scope}/operations/{name}"),
        }
        if scope.startswith("zones/"):
            op["zone"] = self.s.link(scope)
        elif scope.startswith("regions/"):
            op["region"] = self.s.link(scope)
        self.s.operations[f"{scope}/{name}"] = op
        return Response(200, dict(op))

    def get_operation(self, r: Request, project: str, scope: str, name: str) -> Response:
        op = self.s.operations.get(f"{scope}/{name}")
        if op is None:
            raise FakeError(404, "notFound", f"The resource '{scope}/operations/{name}' was not found")
        answer = dict(op)
        op.update(status="DONE", progress=100)  # done from the next look on
        return Response(200, answer)

    def wait_operation(self, r: Request, project: str, scope: str, name: str) -> Response:
        """`wait` answers when the operation is done (GCP blocks up to two minutes)."""
        self.get_operation(r, project, scope, name)
        return self.get_operation(r, project, scope, name)

    def _network(self, ref: str, base_url: str) -> dict[str, Any]:
        rel = relative(ref, base_url)
        m = re.match(rf"^(?:projects/{re.escape(self.s.project)}/)?global/networks/([^/]+)$", rel)
        if not m or m.group(1) not in self.s.networks:
            raise FakeError(
                400,
                "invalid",
                f"Invalid value for field 'resource.network': '{ref}'. The referenced network resource cannot be found.",
            )
        return self.s.networks[m.group(1)]

    def _subnetwork(self, ref: str, base_url: str, region: str | None = None) -> dict[str, Any]:
        rel = relative(ref, base_url)
        m = re.match(rf"^(?:projects/{re.escape(self.s.project)}/)?regions/([^/]+)/subnetworks/([^/]+)$", rel)
        found = self.s.subnetworks.get((m.group(1), m.group(2))) if m else None
        if found is None or (region and m and m.group(1) != region):
            raise FakeError(
                400,
                "invalid",
                f"Invalid value for field 'subnetwork': '{ref}'. The referenced subnetwork resource cannot be found.",
            )
        return found

    def _require(self, table: dict[Any, dict[str, Any]], key: Any, what: str) -> dict[str, Any]:
        if key not in table:
            raise FakeError(404, "notFound", f"The resource '{what}' was not found")
        return table[key]

    def _conflict(self, table: dict[Any, Any], key: Any, what: str) -> None:
        if key in table:
            raise FakeError(409, "alreadyExists", f"The resource '{what}' already exists")

    # -- regions ------------------------------------------------------------------------------------

    def get_region(self, r: Request, project: str, region: str) -> Response:
        self._project(project)
        if region not in self.s.regions:
            raise FakeError(
                404, "notFound", f"The resource 'projects/{project}/regions/{region}' was not found"
            )
        zones = [self.s.link(f"zones/{z}") for z in self.s.regions[region]]
        return Response(200, {"kind": "compute#region", "name": region, "status": "UP", "zones": zones})

    # -- global resources ---------------------------------------------------------------------------

    def list_global(self, r: Request, project: str, kind: str) -> Response:
        self._project(project)
        table = getattr(self.s, kind)
        return Response(200, {"kind": f"compute#{kind[:-1]}List", "items": [dict(v) for v in table.values()]})

    def get_global(self, kind: str, name: str) -> Response:
        return Response(200, dict(self._require(getattr(self.s, kind), name, f"global/{kind}/{name}")))

    def insert_networks(self, r: Request, project: str) -> Response:
        self._project(project)
        body = check(r.body, S.NETWORK)
        self._conflict(self.s.networks, body["name"], f"global/networks/{body['name']}")
        if body.get("autoCreateSubnetworks") is not False:
            raise FakeError(
                400,
                "invalid",
                "Invalid value for field 'resource.autoCreateSubnetworks': this fake serves custom-mode networks only",
            )
        link = self.s.link(f"global/networks/{body['name']}")
        self.s.networks[body["name"]] = {
            **body,
            "kind": "compute#network",
            "id": str(next(self.s._ids)),
            "selfLink": link,
            "subnetworks": [],
            "peerings": [],
        }
        return self._operation("insert", f"global/networks/{body['name']}", "global")

    def delete_networks(self, r: Request, project: str, name: str) -> Response:
        net = self._require(self.s.networks, name, f"global/networks/{name}")
        users = [s["name"] for s in self.s.subnetworks.values() if s["network"] == net["selfLink"]]
        users += [f["name"] for f in self.s.firewalls.values() if f["network"] == net["selfLink"]]
        users += [x["name"] for x in self.s.routers.values() if x["network"] == net["selfLink"]]
        if users or net["peerings"]:
            raise FakeError(
                400,
                "resourceInUseByAnotherResource",
                f"The network resource 'projects/{project}/global/networks/{name}' is already being used by '{(users or [p['name'] for p in net['peerings']])[0]}'",
            )
        del self.s.networks[name]
        return self._operation("delete", f"global/networks/{name}", "global")

    def add_peering(self, r: Request, project: str, name: str) -> Response:
        net = self._require(self.s.networks, name, f"global/networks/{name}")
        peering = check(r.body, S.ADD_PEERING)["networkPeering"]
        if peering["exchangeSubnetRoutes"] is not True:
            raise FakeError(400, "invalid", "exchangeSubnetRoutes must be true")
        other = self._network(peering["network"], r.base_url)
        if any(p["name"] == peering["name"] for p in net["peerings"]):
            raise FakeError(400, "invalid", f"There is already a peering {peering['name']} on network {name}")
        mine = [s["ipCidrRange"] for s in self.s.subnetworks.values() if s["network"] == net["selfLink"]]
        theirs = [s["ipCidrRange"] for s in self.s.subnetworks.values() if s["network"] == other["selfLink"]]
        if any(ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b)) for a in mine for b in theirs):
            raise FakeError(
                400,
                "invalid",
                "An IP range in the peer network overlaps with an IP range in the local network",
            )
        back = any(p["network"] == net["selfLink"] for p in other["peerings"])
        net["peerings"].append(
            {**peering, "network": other["selfLink"], "state": "ACTIVE" if back else "INACTIVE"}
        )
        if back:
            for p in other["peerings"]:
                if p["network"] == net["selfLink"]:
                    p["state"] = "ACTIVE"
        return self._operation("addPeering", f"global/networks/{name}", "global")

    def remove_peering(self, r: Request, project: str, name: str) -> Response:
        net = self._require(self.s.networks, name, f"global/networks/{name}")
        want = check(r.body, S.REMOVE_PEERING)["name"]
        gone = [p for p in net["peerings"] if p["name"] == want]
        if not gone:
            raise FakeError(400, "invalid", f"There is no peering {want} on network {name}")
        net["peerings"] = [p for p in net["peerings"] if p["name"] != want]
        for other in self.s.networks.values():
            for p in other["peerings"]:
                if p["network"] == net["selfLink"]:
                    p["state"] = "INACTIVE"
        return self._operation("removePeering", f"global/networks/{name}", "global")

    def insert_firewalls(self, r: Request, project: str) -> Response:
        self._project(project)
        body = check(r.body, S.FIREWALL)
        self._conflict(self.s.firewalls, body["name"], f"global/firewalls/{body['name']}")
        rule = self._firewall(body, r.base_url)
        self.s.firewalls[body["name"]] = rule
        return self._operation("insert", f"global/firewalls/{body['name']}", "global")

    def _firewall(self, body: dict[str, Any], base_url: str) -> dict[str, Any]:
        net = self._network(body.get("network") or "global/networks/default", base_url)
        if not body.get("allowed") and not body.get("denied"):
            raise FakeError(
                400, "invalid", "Invalid value for field 'resource': a firewall needs allowed or denied rules"
            )
        rule = {"direction": "INGRESS", "priority": 1000, **body, "network": net["selfLink"]}
        if rule["direction"] == "INGRESS" and not any(
            rule.get(k) for k in ("sourceRanges", "sourceTags", "sourceServiceAccounts")
        ):
            rule["sourceRanges"] = ["0.0.0.0/0"]  # GCP's default: open to everyone
        for cidr in rule.get("sourceRanges", []):
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                raise FakeError(
                    400, "invalid", f"Invalid value for field 'resource.sourceRanges': '{cidr}'"
                ) from None
        for email in rule.get("targetServiceAccounts", []) + rule.get("sourceServiceAccounts", []):
            if not self.s.service_account_exists(email):
                raise FakeError(
                    400,
                    "invalid",
                    f"Invalid value for field 'resource.targetServiceAccounts': '{email}'. The service account does not exist.",
                )
        return {
            **rule,
            "kind": "compute#firewall",
            "id": str(next(self.s._ids)),
            "selfLink": self.s.link(f"global/firewalls/{body['name']}"),
        }

    def patch_firewall(self, r: Request, project: str, name: str) -> Response:
        current = self._require(self.s.firewalls, name, f"global/firewalls/{name}")
        body = check(r.body, S.FIREWALL_PATCH)
        if body.get("name", name) != name:
            raise FakeError(400, "invalid", "Invalid value for field 'resource.name': the name can't change")
        merged = {k: v for k, v in current.items() if k not in ("kind", "id", "selfLink")}
        merged.update(body)
        if "sourceRanges" in body or "sourceTags" in body:  # a patch replaces the sources it names
            for key in ("sourceRanges", "sourceTags"):
                if key not in body:
                    merged.pop(key, None)
        self.s.firewalls[name] = self._firewall(merged, r.base_url)
        return self._operation("patch", f"global/firewalls/{name}", "global")

    def delete_firewalls(self, r: Request, project: str, name: str) -> Response:
        self._require(self.s.firewalls, name, f"global/firewalls/{name}")
        del self.s.firewalls[name]
        return self._operation("delete", f"global/firewalls/{name}", "global")

    # -- regional resources ---------------------------------------------------------------------------

    def list_regional(self, kind: str, region: str) -> Response:
        items = [dict(v) for (reg, _), v in getattr(self.s, kind).items() if reg == region]
        return Response(200, {"kind": f"compute#{kind[:-1]}List", "items": items})

    def get_regional(self, kind: str, region: str, name: str) -> Response:
        return Response(
            200, dict(self._require(getattr(self.s, kind), (region, name), f"regions/{region}/{kind}/{name}"))
        )

    def insert_subnetworks(self, r: Request, project: str, region: str) -> Response:
        self._project(project)
        body = check(r.body, S.SUBNETWORK)
        self._conflict(
            self.s.subnetworks, (region, body["name"]), f"regions/{region}/subnetworks/{body['name']}"
        )
        net = self._network(body["network"], r.base_url)
        try:
            cidr = ipaddress.ip_network(body["ipCidrRange"])
        except ValueError:
            raise FakeError(400, "invalid", f"Invalid IPCidrRange: {body['ipCidrRange']}") from None
        if not any(cidr.subnet_of(p) for p in _PRIVATE):  # type: ignore[arg-type]
            raise FakeError(400, "invalid", f"Invalid IPCidrRange: {cidr} is not in a private range")
        for other in self.s.subnetworks.values():
            if other["network"] == net["selfLink"] and cidr.overlaps(
                ipaddress.ip_network(other["ipCidrRange"])
            ):
                raise FakeError(
                    400,
                    "invalid",
                    f"Invalid IPCidrRange: {cidr} conflicts with existing subnetwork '{other['name']}'",
                )
        link = self.s.link(f"regions/{region}/subnetworks/{body['name']}")
        self.s.subnetworks[(region, body["name"])] = {
            **body,
            "network": net["selfLink"],
            "region": self.s.link(f"regions/{region}"),
            "kind": "compute#subnetwork",
            "id": str(next(self.s._ids)),
            "selfLink": link,
            "gatewayAddress": str(next(cidr.hosts())),
        }
        net["subnetworks"].append(link)
        return self._operation("insert", f"regions/{region}/subnetworks/{body['name']}", f"regions/{region}")

    def delete_subnetworks(self, r: Request, project: str, region: str, name: str) -> Response:
        sub = self._require(self.s.subnetworks, (region, name), f"regions/{region}/subnetworks/{name}")
        users = [
            i["name"]
            for i in self.s.instances.values()
            if any(n["subnetwork"] == sub["selfLink"] for n in i["networkInterfaces"])
        ]
        users += [
            x["name"]
            for x in self.s.routers.values()
            if any(sub["selfLink"] == s["name"] for n in x.get("nats", []) for s in n.get("subnetworks", []))
        ]
        if users:
            raise FakeError(
                400,
                "resourceInUseByAnotherResource",
                f"The subnetwork resource '{name}' is already being used by '{users[0]}'",
            )
        del self.s.subnetworks[(region, name)]
        for net in self.s.networks.values():
            net["subnetworks"] = [s for s in net["subnetworks"] if s != sub["selfLink"]]
        return self._operation("delete", f"regions/{region}/subnetworks/{name}", f"regions/{region}")

    def _router(self, body: dict[str, Any], region: str, base_url: str) -> dict[str, Any]:
        net = self._network(body["network"], base_url)
        nats = []
        for nat in body.get("nats", []):
            subnets = []
            if nat["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS" and not nat.get("subnetworks"):
                raise FakeError(
                    400,
                    "invalid",
                    "Invalid value for field 'resource.nats[0].subnetworks': a NAT for LIST_OF_SUBNETWORKS needs subnetworks",
                )
            for s in nat.get("subnetworks", []):
                sub = self._subnetwork(s["name"], base_url, region)
                if sub["network"] != net["selfLink"]:
                    raise FakeError(400, "invalid", f"Subnetwork {s['name']} is not in the router's network")
                subnets.append({**s, "name": sub["selfLink"]})
            nats.append({**nat, "subnetworks": subnets} if subnets else nat)
        return {
            **body,
            "nats": nats,
            "network": net["selfLink"],
            "region": self.s.link(f"regions/{region}"),
            "kind": "compute#router",
            "id": str(next(self.s._ids)),
            "selfLink": self.s.link(f"regions/{region}/routers/{body['name']}"),
        }

    def insert_routers(self, r: Request, project: str, region: str) -> Response:
        self._project(project)
        body = check(r.body, S.ROUTER)
        self._conflict(self.s.routers, (region, body["name"]), f"regions/{region}/routers/{body['name']}")
        self.s.routers[(region, body["name"])] = self._router(body, region, r.base_url)
        return self._operation("insert", f"regions/{region}/routers/{body['name']}", f"regions/{region}")

    def patch_router(self, r: Request, project: str, region: str, name: str) -> Response:
        current = self._require(self.s.routers, (region, name), f"regions/{region}/routers/{name}")
        body = check(r.body, S.ROUTER_PATCH)
        merged = {k: v for k, v in current.items() if k not in ("kind", "id", "selfLink", "region")}
        merged.update(body)
        self.s.routers[(region, name)] = self._router(merged, region, r.base_url)
        return self._operation("patch", f"regions/{region}/routers/{name}", f"regions/{region}")

    def delete_routers(self, r: Request, project: str, region: str, name: str) -> Response:
        self._require(self.s.routers, (region, name), f"regions/{region}/routers/{name}")
        del self.s.routers[(region, name)]
        return self._operation("delete", f"regions/{region}/routers/{name}", f"regions/{region}")

    # -- instances ------------------------------------------------------------------------------------

    def insert_instance(self, r: Request, project: str, zone: str) -> Response:
        self._project(project)
        region = self.s.region_of_zone(zone)
        body = check(r.body, S.INSTANCE)
        name = body["name"]
        self._conflict(self.s.instances, (zone, name), f"projects/{project}/zones/{zone}/instances/{name}")
        machine = relative(body["machineType"], r.base_url)
        if not re.match(rf"^(?:projects/{project}/)?zones/{zone}/machineTypes/[a-z0-9-]+$", machine):
            raise FakeError(
                400,
                "invalid",
                f"Invalid value for field 'resource.machineType': '{body['machineType']}'. Machine type with name '{machine}' does not exist in zone '{zone}'.",
            )
        sched = body.get("scheduling", {})
        spot = sched.get("preemptible") or sched.get("provisioningModel") == "SPOT"
        restarts = (
            sched.get("automaticRestart", True) or sched.get("onHostMaintenance", "MIGRATE") != "TERMINATE"
        )
        if spot and restarts:
            raise FakeError(
                400,
                "invalid",
                "Invalid value for field 'resource.scheduling': Scheduling must have preemptible to be false when OnHostMaintenance isn't TERMINATE, and automaticRestart must be false.",
            )
        boot = [d for d in body["disks"] if d.get("boot")]
        if len(boot) != 1:
            raise FakeError(
                400, "invalid", "Invalid value for field 'resource.disks': exactly one boot disk is required"
            )
        image = boot[0].get("initializeParams", {}).get("sourceImage", "")
        if not re.match(r"^(https://.*/)?projects/[a-z0-9-]+/global/images/(family/)?[a-z0-9-]+$", image):
            raise FakeError(
                400,
                "invalid",
                f"Invalid value for field 'resource.disks[0].initializeParams.sourceImage': '{image}'. The referenced image resource cannot be found.",
            )
        for sa in body.get("serviceAccounts", []):
            if not self.s.service_account_exists(sa["email"]):
                raise FakeError(
                    400, "invalid", f"The resource '{sa['email']}' of type 'serviceAccount' was not found."
                )
        nics = []
        for i, nic in enumerate(body["networkInterfaces"]):
            if "subnetwork" not in nic:
                raise FakeError(
                    400,
                    "invalid",
                    "Invalid value for field 'resource.networkInterfaces[0].subnetwork': custom-mode networks need a subnetwork",
                )
            sub = self._subnetwork(nic["subnetwork"], r.base_url, region)
            taken = {n["networkIP"] for x in self.s.instances.values() for n in x["networkInterfaces"]}
            hosts = (str(h) for h in ipaddress.ip_network(sub["ipCidrRange"]).hosts())
            ip = next(h for j, h in enumerate(hosts) if j >= 1 and h not in taken)
            out = {
                **nic,
                "name": f"nic{i}",
                "network": sub["network"],
                "subnetwork": sub["selfLink"],
                "networkIP": ip,
            }
            if nic.get("accessConfigs"):
                out["accessConfigs"] = [
                    {**a, "natIP": f"198.51.100.{next(self.s._public) % 250 + 2}"}
                    for a in nic["accessConfigs"]
                ]
            nics.append(out)
        disks = []
        for d in body["disks"]:
            disk_name = d.get("initializeParams", {}).get("diskName") or name
            self._conflict(self.s.disks, (zone, disk_name), f"zones/{zone}/disks/{disk_name}")
            link = self.s.link(f"zones/{zone}/disks/{disk_name}")
            self.s.disks[(zone, disk_name)] = {
                "name": disk_name,
                "selfLink": link,
                "users": [self.s.link(f"zones/{zone}/instances/{name}")],
                "labels": d.get("initializeParams", {}).get("labels", {}),
            }
            disks.append(
                {
                    **{k: v for k, v in d.items() if k != "initializeParams"},
                    "source": link,
                    "autoDelete": d.get("autoDelete", False),
                }
            )
        labels = body.get("labels", {})
        self.s.instances[(zone, name)] = {
            **body,
            "kind": "compute#instance",
            "id": str(next(self.s._ids)),
            "zone": self.s.link(f"zones/{zone}"),
            "selfLink": self.s.link(f"zones/{zone}/instances/{name}"),
            "status": "RUNNING",
            "creationTimestamp": f"2030-01-01T00:00:00.{next(self.s._created):06d}-07:00",
            "machineType": self.s.link(machine.split(f"projects/{project}/")[-1]),
            "networkInterfaces": nics,
            "disks": disks,
            "labels": labels,
            "labelFingerprint": fingerprint(labels),
        }
        return self._operation("insert", f"zones/{zone}/instances/{name}", f"zones/{zone}")

    def _matches(self, instance: dict[str, Any], filter_text: str) -> bool:
        if not filter_text.strip():
            return True
        for clause in re.split(r"\s+AND\s+", filter_text.strip()):
            m = _LABEL_CLAUSE.match(clause.strip())
            if not m:
                raise FakeError(400, "invalid", f"Invalid list filter expression '{filter_text}'.")
            if instance.get("labels", {}).get(m.group(1)) != m.group(2):
                return False
        return True

    def list_instances(self, r: Request, project: str, zone: str) -> Response:
        self._project(project)
        f = r.query.get("filter", "")
        items = [dict(i) for (z, _), i in self.s.instances.items() if z == zone and self._matches(i, f)]
        return Response(200, {"kind": "compute#instanceList", "items": items})

    def aggregated_instances(self, r: Request, project: str) -> Response:
        self._project(project)
        f = r.query.get("filter", "")
        scoped: dict[str, Any] = {}
        for zones in self.s.regions.values():
            for zone in zones:
                found = [
                    dict(i) for (z, _), i in self.s.instances.items() if z == zone and self._matches(i, f)
                ]
                scoped[f"zones/{zone}"] = (
                    {"instances": found}
                    if found
                    else {
                        "warning": {"code": "NO_RESULTS_ON_PAGE", "message": "There are no results for scope"}
                    }
                )
        return Response(200, {"kind": "compute#instanceAggregatedList", "items": scoped})

    def get_instance(self, r: Request, project: str, zone: str, name: str) -> Response:
        return Response(
            200,
            dict(
                self._require(
                    self.s.instances, (zone, name), f"projects/{project}/zones/{zone}/instances/{name}"
                )
            ),
        )

    def delete_instance(self, r: Request, project: str, zone: str, name: str) -> Response:
        instance = self._require(
            self.s.instances, (zone, name), f"projects/{project}/zones/{zone}/instances/{name}"
        )
        for d in instance["disks"]:
            key = (zone, d["source"].rsplit("/", 1)[-1])
            if d.get("autoDelete"):
                self.s.disks.pop(key, None)
            elif key in self.s.disks:
                self.s.disks[key]["users"] = []
        del self.s.instances[(zone, name)]
        return self._operation("delete", f"zones/{zone}/instances/{name}", f"zones/{zone}")

    def set_labels(self, r: Request, project: str, zone: str, name: str) -> Response:
        instance = self._require(
            self.s.instances, (zone, name), f"projects/{project}/zones/{zone}/instances/{name}"
        )
        body = check(r.body, S.SET_LABELS)
        if body["labelFingerprint"] != instance["labelFingerprint"]:
            raise FakeError(
                412, "conditionNotMet", "Labels fingerprint either invalid or resource labels have changed"
            )
        instance["labels"] = dict(body.get("labels", {}))
        instance["labelFingerprint"] = fingerprint(instance["labels"])
        return self._operation("setLabels", f"zones/{zone}/instances/{name}", f"zones/{zone}")
