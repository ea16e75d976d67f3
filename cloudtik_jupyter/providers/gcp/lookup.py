"""What clusters need from a workspace, found by name: its subnetworks, mode, network tag and service
accounts; and the workspace's instances, found by label."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import ProviderError
from .. import tags as T
from . import naming as N
from .clients import GcpClients
from .naming import GcpNames
from .network import find_firewall, find_subnets


@dataclass(frozen=True)
class WorkspaceNetwork:
    workspace: str
    mode: str
    network: str  # self link
    public_subnet: str  # self links
    private_subnet: str
    network_tag: str
    head_account: str  # emails
    worker_account: str


def resolve_network(c: GcpClients, names: GcpNames) -> WorkspaceNetwork:
    """The workspace's network, or a `ProviderError` saying how to create it."""
    subnets = find_subnets(c, names)
    internal = find_firewall(c, names, names.internal_firewall)
    if internal is None or any(role not in subnets for role in N.SUBNETS):
        raise ProviderError(
            f"workspace {names.workspace!r} is missing or incomplete in project {c.project} region "
            f"{c.region} (run `cloudtik workspace create` with its config)"
        )
    return WorkspaceNetwork(
        workspace=names.workspace,
        mode=N.networking_mode(internal.description),
        network=internal.network,
        public_subnet=subnets[N.PUBLIC_SUBNET].link,
        private_subnet=subnets[N.PRIVATE_SUBNET].link,
        network_tag=names.network_tag,
        head_account=names.email("head"),
        worker_account=names.email("worker"),
    )


def label_filter(labels: Mapping[str, str]) -> str:
    return " AND ".join(f'(labels.{k} = "{v}")' for k, v in sorted(labels.items()))


def zone_of(instance: Any) -> str:
    return str(instance.zone).rsplit("/", 1)[-1]


def labelled_instances(c: GcpClients, labels: Mapping[str, str]) -> list[Any]:
    """Instances carrying all `labels`, in any zone (filtered server-side, checked here too)."""
    from google.cloud import compute_v1

    request = compute_v1.AggregatedListInstancesRequest(project=c.project, filter=label_filter(labels))
    found: list[Any] = []
    for _, scoped in c.instances.aggregated_list(request=request):
        found.extend(i for i in scoped.instances if labels.items() <= dict(i.labels).items())
    return found


def workspace_instances(c: GcpClients, workspace: str) -> list[Any]:
    return labelled_instances(c, {T.WORKSPACE: workspace})
