"""IAM policy documents for the head and workers: least privilege, scoped to one workspace by tag.

The head may launch, tag and terminate only instances tagged with its workspace, only into the
workspace's subnets and security group, and may pass only the worker role. Workers get the bucket only.
No managed policies (and so no IAMFullAccess) are attached to either role.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import tags as T

# Describe calls support no resource-level permissions, so these are granted on "*".
HEAD_DESCRIBE_ACTIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeAvailabilityZones",
)


@dataclass(frozen=True)
class Statement:
    sid: str
    actions: Sequence[str]
    resources: Sequence[str]
    conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    effect: str = "Allow"

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": self.effect,
            "Action": list(self.actions),
            "Resource": list(self.resources),
        }
        if self.conditions:
            doc["Condition"] = {op: dict(kv) for op, kv in self.conditions.items()}
        return doc


@dataclass(frozen=True)
class PolicyDocument:
    statements: Sequence[Statement]

    def to_json(self) -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": [s.document() for s in self.statements]})


@dataclass(frozen=True)
class PolicyScope:
    """What a policy is scoped to: the workspace tag, its account/region and its bucket."""

    workspace: str
    account_id: str
    region: str
    bucket: str
    worker_role_arn: str
    partition: str = "aws"

    def ec2_arn(self, resource: str, account: bool = True) -> str:
        return f"arn:{self.partition}:ec2:{self.region}:{self.account_id if account else ''}:{resource}"

    @property
    def bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket}"


def trust_policy() -> str:
    """Only EC2 instances may assume the roles."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
    )


def _bucket_statements(scope: PolicyScope) -> list[Statement]:
    return [
        Statement("ListWorkspaceBucket", ["s3:ListBucket", "s3:GetBucketLocation"], [scope.bucket_arn]),
        Statement(
            "ReadWriteWorkspaceBucket",
            ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            [f"{scope.bucket_arn}/*"],
        ),
    ]


def head_policy(scope: PolicyScope) -> PolicyDocument:
    in_workspace = {"StringEquals": {f"aws:ResourceTag/{T.WORKSPACE}": scope.workspace}}
    return PolicyDocument(
        [
            Statement("Describe", HEAD_DESCRIBE_ACTIONS, ["*"]),
            # A launch must tag its instances with this workspace...
            Statement(
                "LaunchWorkspaceInstances",
                ["ec2:RunInstances"],
                [scope.ec2_arn("instance/*")],
                {"StringEquals": {f"aws:RequestTag/{T.WORKSPACE}": scope.workspace}},
            ),
            # ...into this workspace's subnets and security group (they carry its tag)...
            Statement(
                "LaunchIntoWorkspaceNetwork",
                ["ec2:RunInstances"],
                [scope.ec2_arn("subnet/*"), scope.ec2_arn("security-group/*")],
                in_workspace,
            ),
            # ...with whatever else a launch touches: its own volumes and interfaces, and an image.
            Statement(
                "LaunchResources",
                ["ec2:RunInstances"],
                [
                    scope.ec2_arn("network-interface/*"),
                    scope.ec2_arn("volume/*"),
                    scope.ec2_arn("image/*", account=False),
                ],
            ),
            Statement(
                "TagOnLaunch",
                ["ec2:CreateTags"],
                [
                    scope.ec2_arn("instance/*"),
                    scope.ec2_arn("volume/*"),
                    scope.ec2_arn("network-interface/*"),
                ],
                {"StringEquals": {"ec2:CreateAction": "RunInstances"}},
            ),
            # Tag workspace instances, but never change which workspace they belong to.
            Statement(
                "TagWorkspaceInstances",
                ["ec2:CreateTags"],
                [scope.ec2_arn("instance/*")],
                {
                    **in_workspace,
                    "ForAllValues:StringNotEquals": {"aws:TagKeys": [T.WORKSPACE]},
                },
            ),
            Statement(
                "TerminateWorkspaceInstances",
                ["ec2:TerminateInstances"],
                [scope.ec2_arn("instance/*")],
                in_workspace,
            ),
            Statement(
                "PassWorkerRoleToEc2",
                ["iam:PassRole"],
                [scope.worker_role_arn],
                {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
            ),
            *_bucket_statements(scope),
        ]
    )


def worker_policy(scope: PolicyScope) -> PolicyDocument:
    return PolicyDocument(_bucket_statements(scope))
