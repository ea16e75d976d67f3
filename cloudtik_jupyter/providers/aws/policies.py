"""IAM policy documents: the head's and workers' (least privilege, scoped to one workspace by tag), and
the one the user's own credentials need to create and delete workspaces and run clusters in them.

The head may launch, tag and terminate only instances tagged with its workspace, only into the
workspace's subnets and security group (spot requests included), and may pass only the worker role.
Workers get the bucket only. No managed policies (and so no IAMFullAccess) are attached to either role.
tests/clouds/test_aws_permissions.py evaluates these documents against the calls the providers make.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import tags as T

# Describe calls support no resource-level permissions, so these are granted on "*".
HEAD_DESCRIBE_ACTIONS = ("ec2:DescribeInstances", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups")

# What `workspace create/update/delete` and `up`/`down` call on EC2 (Describe* included): on "*", as
# they touch networks the workspace does not tag (a shared VPC, the client's route tables).
USER_EC2_ACTIONS = (
    "ec2:AcceptVpcPeeringConnection",
    "ec2:AllocateAddress",
    "ec2:AssociateRouteTable",
    "ec2:AttachInternetGateway",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CreateInternetGateway",
    "ec2:CreateKeyPair",
    "ec2:CreateNatGateway",
    "ec2:CreateRoute",
    "ec2:CreateRouteTable",
    "ec2:CreateSecurityGroup",
    "ec2:CreateSubnet",
    "ec2:CreateTags",
    "ec2:CreateVpc",
    "ec2:CreateVpcEndpoint",
    "ec2:CreateVpcPeeringConnection",
    "ec2:DeleteInternetGateway",
    "ec2:DeleteKeyPair",
    "ec2:DeleteNatGateway",
    "ec2:DeleteRoute",
    "ec2:DeleteRouteTable",
    "ec2:DeleteSecurityGroup",
    "ec2:DeleteSubnet",
    "ec2:DeleteVpc",
    "ec2:DeleteVpcEndpoints",
    "ec2:DeleteVpcPeeringConnection",
    "ec2:DescribeAddresses",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInstances",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeKeyPairs",
    "ec2:DescribeNatGateways",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeVpcs",
    "ec2:DetachInternetGateway",
    "ec2:DisassociateRouteTable",
    "ec2:ModifyVpcAttribute",
    "ec2:ModifyVpcEndpoint",
    "ec2:ReleaseAddress",
    "ec2:ReplaceRoute",
    "ec2:ReplaceRouteTableAssociation",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:RunInstances",
    "ec2:TerminateInstances",
)
USER_IAM_ACTIONS = (
    "iam:AddRoleToInstanceProfile",
    "iam:CreateInstanceProfile",
    "iam:CreateRole",
    "iam:DeleteInstanceProfile",
    "iam:DeleteRole",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:GetInstanceProfile",
    "iam:GetRole",
    "iam:ListAttachedRolePolicies",
    "iam:ListRolePolicies",
    "iam:PassRole",
    "iam:PutRolePolicy",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:TagInstanceProfile",
    "iam:TagRole",
    "iam:UpdateAssumeRolePolicy",
)
USER_BUCKET_ACTIONS = (
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketTagging",
    "s3:PutEncryptionConfiguration",
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

    def to_json(self, indent: int | None = None) -> str:
        doc = {"Version": "2012-10-17", "Statement": [s.document() for s in self.statements]}
        return json.dumps(doc, indent=indent)


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
                    scope.ec2_arn("spot-instances-request/*"),  # workers on spot (use_spot)
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


def user_policy(partition: str = "aws") -> PolicyDocument:
    """What the user's own credentials need for `workspace create/update/delete` and `up`/`down`."""
    iam, s3 = f"arn:{partition}:iam::*", f"arn:{partition}:s3:::cloudtik-*"
    spot = "spot.amazonaws.com"
    return PolicyDocument(
        [
            Statement("WorkspaceNetworkAndInstances", USER_EC2_ACTIONS, ["*"]),
            # Roles, profiles and buckets: only the ones named cloudtik-* (see naming.py).
            Statement(
                "WorkspaceRolesAndProfiles",
                USER_IAM_ACTIONS,
                [f"{iam}:role/cloudtik-*", f"{iam}:instance-profile/cloudtik-*"],
            ),
            Statement("FindTheSpotServiceLinkedRole", ["iam:ListRoles"], ["*"]),
            Statement(
                "CreateTheSpotServiceLinkedRole",
                ["iam:CreateServiceLinkedRole"],
                [f"{iam}:role/aws-service-role/{spot}/*"],
                {"StringEquals": {"iam:AWSServiceName": spot}},
            ),
            Statement("WorkspaceBuckets", USER_BUCKET_ACTIONS, [s3]),
            Statement("EmptyWorkspaceBuckets", ["s3:DeleteObject", "s3:DeleteObjectVersion"], [f"{s3}/*"]),
        ]
    )
