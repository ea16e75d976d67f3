"""The workspace bucket: private (public access prevented, uniform bucket-level access), labelled, and
readable and writable by the workspace's own service accounts only."""

from __future__ import annotations

from typing import Any

from ...errors import ProviderError
from . import naming as N
from .clients import GcpClients, is_not_found, status_of
from .identity import bucket_policy, member, update_policy, with_binding
from .naming import GcpNames
from .roles import BUCKET_ROLE


def get_bucket(c: GcpClients, bucket: str) -> Any | None:
    try:
        return c.storage.buckets().get(bucket=bucket).execute()
    except Exception as exc:
        if is_not_found(exc):
            return None
        if status_of(exc) == 403:
            raise ProviderError(f"gcp: bucket name {bucket!r} is taken by another project") from exc
        raise


def ensure_bucket(c: GcpClients, names: GcpNames) -> None:
    """Create if missing; the privacy settings and labels are re-applied on every run."""
    settings = {
        "labels": names.labels(N.BUCKET),
        "iamConfiguration": {
            "uniformBucketLevelAccess": {"enabled": True},
            "publicAccessPrevention": "enforced",
        },
    }
    found = get_bucket(c, names.bucket)
    if found is None:
        body = {"name": names.bucket, "location": c.region, "storageClass": "STANDARD", **settings}
        c.storage.buckets().insert(project=c.project, body=body).execute()
    elif found.get("iamConfiguration", {}).get("publicAccessPrevention") != "enforced" or (
        found.get("labels") != settings["labels"]
    ):
        c.storage.buckets().patch(bucket=names.bucket, body=settings).execute()


def ensure_bucket_access(c: GcpClients, names: GcpNames, emails: list[str], timeout: float) -> None:
    def grant(policy: dict[str, Any]) -> dict[str, Any]:
        for email in emails:
            policy = with_binding(policy, BUCKET_ROLE, member(email))
        return policy

    update_policy(bucket_policy(c, names.bucket), grant, timeout, f"granting access to {names.bucket}")


def object_names(c: GcpClients, bucket: str, limit: int = 1000) -> list[str]:
    found = c.storage.objects().list(bucket=bucket, maxResults=limit).execute()
    return [o["name"] for o in found.get("items", [])]


def delete_bucket(c: GcpClients, names: GcpNames) -> list[str]:
    """Empty and delete the bucket; a missing bucket is already deleted."""
    if get_bucket(c, names.bucket) is None:
        return []
    while True:
        batch = object_names(c, names.bucket)
        if not batch:
            break
        for name in batch:
            c.storage.objects().delete(bucket=names.bucket, object=name).execute()
    c.storage.buckets().delete(bucket=names.bucket).execute()
    return [names.bucket]
