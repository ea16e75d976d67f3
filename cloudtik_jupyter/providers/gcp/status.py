"""Per-resource status of a GCP workspace: present or missing, with the name or state as detail.

Compute lookups run concurrently (one REST session per client); IAM and storage lookups share one
thread, since the discovery clients' HTTP transport is not thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..base import ResourceStatus
from . import identity, network, storage
from . import naming as N
from .clients import GcpClients
from .naming import GcpNames
from .roles import ACT_AS_ROLE, BUCKET_ROLE

Check = Callable[[], list[ResourceStatus]]


def _of(name: str, kind: str, found: str | None, detail: str = "") -> ResourceStatus:
    return ResourceStatus(name, kind, bool(found), detail or (found or ""))


def _network(c: GcpClients, names: GcpNames, shared: str | None) -> list[ResourceStatus]:
    net = network.find_network(c, names, shared)
    shown = f"{net.name} (shared)" if net and not net.owned else ""
    return [_of(N.NETWORK, "network", net.name if net else None, shown)]


def _subnets(c: GcpClients, names: GcpNames) -> list[ResourceStatus]:
    found = network.find_subnets(c, names)
    return [
        _of(role, "subnetwork", s.name if (s := found.get(role)) else None, f"{s.name} {s.cidr}" if s else "")
        for role in N.SUBNETS
    ]


def _firewalls(c: GcpClients, names: GcpNames) -> list[ResourceStatus]:
    out = []
    for role, name in ((N.SSH_FIREWALL, names.ssh_firewall), (N.INTERNAL_FIREWALL, names.internal_firewall)):
        rule = network.find_firewall(c, names, name)
        detail = f"{name} from {','.join(rule.source_ranges or rule.source_tags)}" if rule else ""
        out.append(_of(role, "firewall", name if rule else None, detail))
    return out


def _router(c: GcpClients, names: GcpNames) -> list[ResourceStatus]:
    router = network.find_router(c, names)
    return [
        _of(N.ROUTER, "router", names.router if router else None),
        _of(N.NAT, "cloud-nat", names.nat if network.has_nat(router, names) else None),
    ]


def _peering(c: GcpClients, names: GcpNames) -> list[ResourceStatus]:
    peer = network.peerings_of(c, names.network).get(names.peering)
    return [_of(N.PEERING, "network-peering", peer.rsplit("/", 1)[-1] if peer else None)]


def _iam_and_bucket(c: GcpClients, names: GcpNames) -> list[ResourceStatus]:
    head, worker = names.email("head"), names.email("worker")
    out = [
        _of(N.HEAD_ACCOUNT, "service-account", head if identity.get_account(c, head) else None),
        _of(N.WORKER_ACCOUNT, "service-account", worker if identity.get_account(c, worker) else None),
    ]
    role = identity.get_role(c, names)
    live_role = role is not None and not role.get("deleted")
    out.append(_of(N.HEAD_ROLE, "custom-role", names.head_role if live_role else None))
    read_project, _ = identity.project_policy(c)
    bound = identity.has_binding(read_project(), names.head_role, identity.member(head))
    out.append(_of(N.HEAD_BINDING, "iam-binding", names.head_role if bound else None))
    act_as = False
    if out[1].present:
        read_account, _ = identity.account_policy(c, worker)
        act_as = identity.has_binding(read_account(), ACT_AS_ROLE, identity.member(head))
    out.append(_of(N.ACT_AS_WORKER, "iam-binding", ACT_AS_ROLE if act_as else None))
    bucket = storage.get_bucket(c, names.bucket)
    private = (
        bucket is not None and bucket.get("iamConfiguration", {}).get("publicAccessPrevention") == "enforced"
    )
    shown = "" if private or not bucket else "public access not prevented"
    out.append(_of(N.BUCKET, "bucket", names.bucket if private else None, shown))
    granted = False
    if bucket is not None:
        read_bucket, _ = identity.bucket_policy(c, names.bucket)
        policy = read_bucket()
        granted = all(identity.has_binding(policy, BUCKET_ROLE, identity.member(e)) for e in (head, worker))
    out.append(_of(N.BUCKET_ACCESS, "iam-binding", BUCKET_ROLE if granted else None))
    return out


def workspace_status(c: GcpClients, names: GcpNames, mode: str, shared: str | None) -> list[ResourceStatus]:
    checks: list[Check] = [
        lambda: _network(c, names, shared if mode == "shared-vpc" else None),
        lambda: _subnets(c, names),
        lambda: _firewalls(c, names),
        lambda: _router(c, names),
        *([lambda: _peering(c, names)] if mode == "peering" else []),
        lambda: _iam_and_bucket(c, names),
    ]
    with ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="gcp-status") as pool:
        results = [pool.submit(check) for check in checks]
        return [status for result in results for status in result.result()]
