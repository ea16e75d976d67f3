"""What clusters need from a workspace, found by tag: its subnets, security group and instance profiles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import ProviderError
from .. import tags as T
from . import naming as N
from .firewall import find_security_group
from .naming import WorkspaceNames, tag_dict
from .network import find_subnets

# Everything short of terminated: a stopped node still costs storage and still belongs to its cluster.
LIVE_STATES = ["pending", "running", "stopping", "stopped"]


@dataclass(frozen=True)
class WorkspaceNetwork:
    workspace: str
    mode: str
    vpc_id: str
    public_subnet: str
    private_subnets: tuple[str, ...]
    security_group: str
    head_profile: str
    worker_profile: str


def resolve_network(ec2: Any, names: WorkspaceNames) -> WorkspaceNetwork:
    """The workspace's network, or a `ProviderError` saying how to create it."""
    subnets = find_subnets(ec2, names)
    group = find_security_group(ec2, names)
    wanted = [N.PUBLIC_SUBNET, *N.PRIVATE_SUBNETS]
    if group is None or any(role not in subnets for role in wanted):
        raise ProviderError(
            f"workspace {names.workspace!r} is missing or incomplete in region {ec2.meta.region_name} "
            f"(run `cloudtik workspace create` with its config)"
        )
    return WorkspaceNetwork(
        workspace=names.workspace,
        mode=tag_dict(group.get("Tags")).get(N.NETWORKING, "public"),
        vpc_id=group["VpcId"],
        public_subnet=subnets[N.PUBLIC_SUBNET].id,
        private_subnets=tuple(subnets[r].id for r in N.PRIVATE_SUBNETS),
        security_group=group["GroupId"],
        head_profile=names.head_profile,
        worker_profile=names.worker_profile,
    )


def tag_filters(tags: Mapping[str, str]) -> list[Any]:
    return [{"Name": f"tag:{k}", "Values": [v]} for k, v in sorted(tags.items())]


def live_instances(ec2: Any, tags: Mapping[str, str]) -> list[Any]:
    """Non-terminated instances carrying all `tags`, filtered server-side."""
    filters = [*tag_filters(tags), {"Name": "instance-state-name", "Values": LIVE_STATES}]
    found: list[Any] = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            found.extend(
                i
                for i in reservation["Instances"]
                if i["State"]["Name"] in LIVE_STATES and tags.items() <= tag_dict(i.get("Tags")).items()
            )
    return found


def workspace_instances(ec2: Any, workspace: str) -> list[Any]:
    return live_instances(ec2, {T.WORKSPACE: workspace})
