"""The workspace security group: SSH only from the given CIDRs, all traffic between workspace members."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from . import naming as N
from .naming import WorkspaceNames
from .network import DEPENDENCY_CODES
from .polling import retry_while

SSH_PORT = 22


@dataclass(frozen=True)
class Rule:
    """One ingress rule: from a CIDR or from a security group (`source`)."""

    protocol: str  # "tcp" or "-1" (all)
    from_port: int | None
    to_port: int | None
    source: str

    @property
    def is_cidr(self) -> bool:
        return not self.source.startswith("sg-")

    def permission(self) -> dict[str, Any]:
        perm: dict[str, Any] = {"IpProtocol": self.protocol}
        if self.from_port is not None:
            perm.update(FromPort=self.from_port, ToPort=self.to_port)
        if self.is_cidr:
            perm["IpRanges"] = [{"CidrIp": self.source, "Description": "cloudtik: ssh"}]
        else:
            perm["UserIdGroupPairs"] = [
                {"GroupId": self.source, "Description": "cloudtik: within the workspace"}
            ]
        return perm


def desired_rules(group_id: str, ssh_cidrs: Sequence[str]) -> set[Rule]:
    rules = {Rule("tcp", SSH_PORT, SSH_PORT, cidr) for cidr in ssh_cidrs}
    rules.add(Rule("-1", None, None, group_id))
    return rules


def current_rules(group: Any) -> set[Rule]:
    rules: set[Rule] = set()
    for perm in group.get("IpPermissions", []):
        proto = str(perm["IpProtocol"])
        lo, hi = perm.get("FromPort"), perm.get("ToPort")
        if proto == "-1":
            lo = hi = None
        for r in perm.get("IpRanges", []):
            rules.add(Rule(proto, lo, hi, r["CidrIp"]))
        for p in perm.get("UserIdGroupPairs", []):
            rules.add(Rule(proto, lo, hi, p["GroupId"]))
    return rules


def find_security_groups(ec2: Any, names: WorkspaceNames) -> list[Any]:
    groups = names.mine(
        ec2.describe_security_groups(Filters=names.filters(N.SECURITY_GROUP))["SecurityGroups"],
        N.SECURITY_GROUP,
    )
    return sorted(groups, key=lambda g: g["GroupId"])


def find_security_group(ec2: Any, names: WorkspaceNames) -> Any | None:
    groups = find_security_groups(ec2, names)
    return groups[0] if groups else None


def ensure_security_group(
    ec2: Any, names: WorkspaceNames, vpc_id: str, mode: str, ssh_cidrs: Sequence[str]
) -> str:
    """Create the group if missing, then converge its SSH rules on `ssh_cidrs` (`update` can narrow them)."""
    group = find_security_group(ec2, names)
    if group is None:
        group_id = ec2.create_security_group(
            GroupName=names.security_group,
            Description=f"cloudtik workspace {names.workspace}",
            VpcId=vpc_id,
            TagSpecifications=names.tag_spec("security-group", N.SECURITY_GROUP, {N.NETWORKING: mode}),
        )["GroupId"]
        group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    group_id = group["GroupId"]
    # The mode can change on `update` (e.g. public -> peering); the node provider reads it from here.
    ec2.create_tags(Resources=[group_id], Tags=[{"Key": N.NETWORKING, "Value": mode}])
    want, have = desired_rules(group_id, ssh_cidrs), current_rules(group)
    missing = want - have
    stale = {r for r in have - want if r.is_cidr and r.protocol == "tcp" and r.from_port == SSH_PORT}
    if missing:
        ec2.authorize_security_group_ingress(
            GroupId=group_id, IpPermissions=[r.permission() for r in sorted(missing, key=str)]
        )
    if stale:
        ec2.revoke_security_group_ingress(
            GroupId=group_id, IpPermissions=[r.permission() for r in sorted(stale, key=str)]
        )
    return str(group_id)


def delete_security_groups(ec2: Any, names: WorkspaceNames, timeout: float) -> list[str]:
    removed = []
    for group in find_security_groups(ec2, names):
        gid = str(group["GroupId"])
        retry_while(
            DEPENDENCY_CODES,
            partial(ec2.delete_security_group, GroupId=gid),
            timeout=timeout,
            what=f"deleting {gid}",
        )
        removed.append(gid)
    return removed
