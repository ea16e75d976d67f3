"""Which IAM permissions the AWS calls a provider makes need, and whether a policy grants them.

`Recorder` hooks a boto3 client and turns each call into the authorization requests AWS makes for it:
an action on each resource it touches, with the condition keys IAM sees (request tags, the resource's
own tags, the create action, the service a role is passed to). `allowed` evaluates a policy document
the way IAM does for our statements (Allow only; action and resource wildcards; StringEquals,
StringLike, ForAllValues:StringNotEquals). A provider that starts making a call its policy does not
allow fails a test: nothing here is a list of what the policy happens to contain.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"  # moto's
Context = dict[str, Any]
# S3 API operations -> the IAM action that authorizes each (they differ in name).
S3_ACTIONS = {
    "HeadBucket": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "CreateBucket": "s3:CreateBucket",
    "DeleteBucket": "s3:DeleteBucket",
    "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "PutBucketTagging": "s3:PutBucketTagging",
    "DeleteObjects": "s3:DeleteObject",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
}
FREE = {"sts:GetCallerIdentity"}  # needs no permission


@dataclass(frozen=True)
class AuthRequest:
    action: str  # "ec2:RunInstances"
    resource: str  # an ARN, or "*" for calls without resource-level permissions
    context: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        ctx = ", ".join(f"{k}={v}" for k, v in self.context)
        return f"{self.action} on {self.resource}" + (f" [{ctx}]" if ctx else "")


def _tags(pairs: list[Mapping[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in pairs or []}


def _ctx(
    request_tags: Mapping[str, str] | None = None,
    resource_tags: Mapping[str, str] | None = None,
    **extra: Any,
) -> tuple[tuple[str, Any], ...]:
    out: Context = dict(extra)
    if request_tags is not None:
        out.update({f"aws:RequestTag/{k}": v for k, v in request_tags.items()})
        out["aws:TagKeys"] = sorted(request_tags)
    if resource_tags is not None:
        out.update({f"aws:ResourceTag/{k}": v for k, v in resource_tags.items()})
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in out.items()))


@dataclass
class Recorder:
    """Records the authorization requests of every call made through `clients` (per operation label)."""

    region: str
    lookup: Any  # an unhooked EC2 client, to read the tags of the resources a call touches
    iam: Any
    label: str = ""
    requests: dict[str, list[AuthRequest]] = field(default_factory=dict)

    def hook(self, *clients: Any) -> Recorder:
        for client in clients:
            service = client.meta.service_model.service_name
            client.meta.events.register(f"before-parameter-build.{service}", self._seen)
        return self

    def arn(self, resource: str, account: bool = True) -> str:
        return f"arn:aws:ec2:{self.region}:{ACCOUNT if account else ''}:{resource}"

    def _seen(self, params: Mapping[str, Any], model: Any, **kwargs: Any) -> None:
        service = model.service_model.service_name
        if service == "s3":
            made = self._s3(model.name, dict(params))
        elif service == "iam":
            made = self._iam(f"iam:{model.name}", dict(params))
        else:
            made = self._requests(f"{service}:{model.name}", dict(params))
        self.requests.setdefault(self.label, []).extend(r for r in made if r.action not in FREE)

    def _s3(self, op: str, p: dict[str, Any]) -> list[AuthRequest]:
        action = S3_ACTIONS[op]  # a KeyError here: a new S3 call, to be mapped (and allowed) first
        bucket = f"arn:aws:s3:::{p['Bucket']}"
        made = [AuthRequest(action, f"{bucket}/*" if action.endswith("Object") else bucket)]
        if op == "DeleteObjects" and any("VersionId" in o for o in p["Delete"]["Objects"]):
            made.append(AuthRequest("s3:DeleteObjectVersion", f"{bucket}/*"))
        return made

    def _iam(self, action: str, p: dict[str, Any]) -> list[AuthRequest]:
        def arn(kind: str, name: str, path: str = "/") -> str:
            return f"arn:aws:iam::{ACCOUNT}:{kind}{path}{name}"

        if action == "iam:CreateServiceLinkedRole":
            service = p["AWSServiceName"]
            return [
                AuthRequest(
                    action,
                    arn("role", "", f"/aws-service-role/{service}/"),
                    _ctx(**{"iam:AWSServiceName": service}),
                )
            ]
        if "InstanceProfileName" in p:
            made = [AuthRequest(action, arn("instance-profile", p["InstanceProfileName"]))]
            if action == "iam:AddRoleToInstanceProfile":  # putting a role in a profile passes it
                made.append(AuthRequest("iam:PassRole", arn("role", p["RoleName"])))
            if p.get("Tags"):  # creating with tags is tagging too
                made.append(AuthRequest("iam:TagInstanceProfile", made[0].resource))
            return made
        if "RoleName" in p:
            made = [AuthRequest(action, arn("role", p["RoleName"]))]
            if p.get("Tags"):
                made.append(AuthRequest("iam:TagRole", made[0].resource))
            return made
        return [AuthRequest(action, "*")]  # ListRoles

    def all(self, *labels: str) -> list[AuthRequest]:
        return [r for label in labels or tuple(self.requests) for r in self.requests.get(label, [])]

    # -- what AWS authorizes for each call ----------------------------------------------------------

    def _instance_tags(self, instance_id: str) -> dict[str, str]:
        found = self.lookup.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return _tags(found[0]["Instances"][0].get("Tags")) if found else {}

    def _requests(self, action: str, p: dict[str, Any]) -> list[AuthRequest]:
        if action == "ec2:RunInstances":
            return self._run_instances(p)
        if action == "ec2:TerminateInstances":
            return [
                AuthRequest(action, self.arn(f"instance/{i}"), _ctx(resource_tags=self._instance_tags(i)))
                for i in p["InstanceIds"]
            ]
        if action == "ec2:CreateTags":
            tags = _tags(p["Tags"])
            out = []
            for rid in p["Resources"]:
                kind = {"i": "instance", "vpc": "vpc", "subnet": "subnet", "sg": "security-group"}.get(
                    rid.split("-")[0], rid.split("-")[0]
                )
                current = self._instance_tags(rid) if kind == "instance" else {}
                out.append(AuthRequest(action, self.arn(f"{kind}/{rid}"), _ctx(tags, current)))
            return out
        made = [AuthRequest(action, "*")]  # Describe*, and calls the evaluation here does not refine
        for spec in p.get("TagSpecifications", []):  # born tagged: authorized as CreateTags too
            op = action.split(":")[1]
            made.append(
                AuthRequest(
                    "ec2:CreateTags",
                    self.arn(f"{spec['ResourceType']}/*"),
                    _ctx(_tags(spec["Tags"]), **{"ec2:CreateAction": op}),
                )
            )
        return made

    def _run_instances(self, p: dict[str, Any]) -> list[AuthRequest]:
        action = "ec2:RunInstances"
        specs = {s["ResourceType"]: _tags(s["Tags"]) for s in p.get("TagSpecifications", [])}
        iface = (p.get("NetworkInterfaces") or [{}])[0]
        subnet = p.get("SubnetId") or iface.get("SubnetId")
        groups = p.get("SecurityGroupIds") or iface.get("Groups") or []
        subnet_tags = _tags(self.lookup.describe_subnets(SubnetIds=[subnet])["Subnets"][0].get("Tags"))
        out = [
            AuthRequest(action, self.arn("instance/*"), _ctx(specs.get("instance", {}))),
            AuthRequest(action, self.arn("volume/*"), _ctx(specs.get("volume", {}))),
            AuthRequest(action, self.arn("network-interface/*")),
            AuthRequest(action, self.arn(f"subnet/{subnet}"), _ctx(resource_tags=subnet_tags)),
            AuthRequest(action, self.arn(f"image/{p['ImageId']}", account=False)),
        ]
        for group in groups:
            found = self.lookup.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
            out.append(
                AuthRequest(
                    action, self.arn(f"security-group/{group}"), _ctx(resource_tags=_tags(found.get("Tags")))
                )
            )
        if p.get("InstanceMarketOptions", {}).get("MarketType") == "spot":
            out.append(AuthRequest(action, self.arn("spot-instances-request/*")))
        for rtype, tags in specs.items():  # tags on create are authorized as CreateTags too
            out.append(
                AuthRequest(
                    "ec2:CreateTags",
                    self.arn(f"{rtype}/*"),
                    _ctx(tags, **{"ec2:CreateAction": "RunInstances"}),
                )
            )
        profile = p.get("IamInstanceProfile", {}).get("Name")
        if profile:  # launching with a profile passes its role
            roles = self.iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Roles"]
            for role in roles:
                out.append(
                    AuthRequest(
                        "iam:PassRole", role["Arn"], _ctx(**{"iam:PassedToService": "ec2.amazonaws.com"})
                    )
                )
        return out


# -- evaluation -------------------------------------------------------------------------------------------


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _condition(op: str, wanted: Mapping[str, Any], ctx: Context) -> bool:
    for key, values in wanted.items():
        values = _list(values)
        have = ctx.get(key)
        if op == "StringEquals":
            if have is None or not any(h in values for h in _list(have)):
                return False
        elif op == "StringLike":
            if have is None or not any(fnmatch.fnmatchcase(str(h), v) for h in _list(have) for v in values):
                return False
        elif op == "ForAllValues:StringNotEquals":
            if have is not None and any(h in values for h in _list(have)):
                return False
        else:
            raise AssertionError(f"condition operator {op} is not evaluated here")
    return True


def _matches(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value.lower() if ":" not in pattern else value, pattern)


def allowed(policy: Mapping[str, Any] | str, request: AuthRequest) -> bool:
    doc = json.loads(policy) if isinstance(policy, str) else policy
    statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    ctx = dict(request.context)
    for s in statements:
        assert s["Effect"] == "Allow", s  # our policies only allow
        actions, resources = _list(s["Action"]), _list(s["Resource"])
        if not any(fnmatch.fnmatchcase(request.action, a) for a in actions):
            continue
        if not any(fnmatch.fnmatchcase(request.resource, r) for r in resources):
            continue
        if all(_condition(op, kv, ctx) for op, kv in s.get("Condition", {}).items()):
            return True
    return False


def denied(policy: Mapping[str, Any] | str, requests: list[AuthRequest]) -> list[str]:
    """The requests `policy` does not allow (what a test asserts is empty)."""
    return sorted({str(r) for r in requests if not allowed(policy, r)})
