"""IAM for head and workers is least privilege: read back from IAM (moto), checked statement by statement."""

from __future__ import annotations

from typing import Any

from conftest import MotoAws, policy

from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.aws.identity import INLINE_POLICY

ACCOUNT = "123456789012"  # moto's account


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found = doc["Statement"]
    return [found] if isinstance(found, dict) else list(found)


def _actions(stmt: dict[str, Any]) -> list[str]:
    return [stmt["Action"]] if isinstance(stmt["Action"], str) else list(stmt["Action"])


def _resources(stmt: dict[str, Any]) -> list[str]:
    return [stmt["Resource"]] if isinstance(stmt["Resource"], str) else list(stmt["Resource"])


def test_roles_are_least_privilege(aws: MotoAws) -> None:
    c = aws.clients()
    ws = aws.workspace("ws", clients=c)
    ws.create()
    iam = c.iam
    head_role, worker_role = "cloudtik-ws-head", "cloudtik-ws-worker"
    worker_arn = iam.get_role(RoleName=worker_role)["Role"]["Arn"]
    bucket_arn = f"arn:aws:s3:::{ws.bucket}"

    for role in (head_role, worker_role):
        assert (
            iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
        )  # no IAMFullAccess, none
        assert iam.list_role_policies(RoleName=role)["PolicyNames"] == [INLINE_POLICY]
        trust = _statements(policy(iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]))
        assert trust == [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    profile = iam.get_instance_profile(InstanceProfileName=head_role)["InstanceProfile"]
    assert [r["RoleName"] for r in profile["Roles"]] == [head_role]

    head = _statements(
        policy(iam.get_role_policy(RoleName=head_role, PolicyName=INLINE_POLICY)["PolicyDocument"])
    )
    worker = _statements(
        policy(iam.get_role_policy(RoleName=worker_role, PolicyName=INLINE_POLICY)["PolicyDocument"])
    )
    in_ws = {"StringEquals": {f"aws:ResourceTag/{T.WORKSPACE}": "ws"}}

    assert all(s["Effect"] == "Allow" for s in head + worker)
    for stmt in head + worker:
        assert not any("*" in a for a in _actions(stmt)), stmt  # no wildcard actions
        if _resources(stmt) == ["*"]:
            assert all(a.startswith("ec2:Describe") for a in _actions(stmt)), stmt  # only reads are unscoped
    all_actions = {a for s in head for a in _actions(s)}
    assert {a for a in all_actions if not a.startswith("ec2:Describe")} == {
        "ec2:RunInstances",
        "ec2:CreateTags",
        "ec2:TerminateInstances",
        "iam:PassRole",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
    }

    by_sid = {s["Sid"]: s for s in head}
    # Launch only instances tagged with the workspace, into its (tagged) subnets and security group.
    launch = by_sid["LaunchWorkspaceInstances"]
    assert _resources(launch) == [f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/*"]
    assert launch["Condition"] == {"StringEquals": {f"aws:RequestTag/{T.WORKSPACE}": "ws"}}
    network = by_sid["LaunchIntoWorkspaceNetwork"]
    assert {r.split(":")[-1] for r in _resources(network)} == {"subnet/*", "security-group/*"}
    assert network["Condition"] == in_ws
    # Terminate and tag only the workspace's instances, and never re-tag one out of (or into) it.
    terminate = [s for s in head if "ec2:TerminateInstances" in _actions(s)]
    assert len(terminate) == 1 and terminate[0]["Condition"] == in_ws
    for stmt in (s for s in head if "ec2:CreateTags" in _actions(s)):
        cond = stmt["Condition"]
        assert cond == {"StringEquals": {"ec2:CreateAction": "RunInstances"}} or (
            cond["StringEquals"] == in_ws["StringEquals"]
            and cond["ForAllValues:StringNotEquals"] == {"aws:TagKeys": [T.WORKSPACE]}
        ), stmt
    # Pass only the worker role, only to EC2.
    (pass_role,) = [s for s in head if "iam:PassRole" in _actions(s)]
    assert _resources(pass_role) == [worker_arn]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    # Storage: the workspace bucket and nothing else, for both roles.
    for stmt in head + worker:
        if any(a.startswith("s3:") for a in _actions(stmt)):
            assert set(_resources(stmt)) <= {bucket_arn, f"{bucket_arn}/*"}, stmt
    assert {a.split(":")[0] for s in worker for a in _actions(s)} == {"s3"}
    ws.delete()
