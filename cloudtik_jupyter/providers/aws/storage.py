"""The workspace's private bucket: encrypted, public access blocked, tagged."""

from __future__ import annotations

from typing import Any

from ...errors import ProviderError
from .clients import error_code, is_client_error
from .naming import WorkspaceNames

_BLOCK_ALL = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def bucket_exists(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception as exc:
        if is_client_error(exc) and error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        if is_client_error(exc) and error_code(exc) in ("403", "AccessDenied"):
            raise ProviderError(f"aws: bucket name {bucket!r} is taken by another account") from exc
        raise
    return True


def ensure_bucket(s3: Any, names: WorkspaceNames, bucket: str, region: str, role_tag: str) -> None:
    """Create if missing; the security settings are re-applied on every run (they are idempotent)."""
    if not bucket_exists(s3, bucket):
        if region == "us-east-1":  # the one region that rejects its own name as a LocationConstraint
            s3.create_bucket(Bucket=bucket)
        else:
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=_BLOCK_ALL)
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}
            ]
        },
    )
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": names.tag_list(role_tag)})


def object_count(s3: Any, bucket: str, limit: int = 1000) -> int:
    return int(s3.list_objects_v2(Bucket=bucket, MaxKeys=limit).get("KeyCount", 0))


def delete_bucket(s3: Any, bucket: str) -> list[str]:
    """Empty (all versions) and delete the bucket; a missing bucket is already deleted."""
    if not bucket_exists(s3, bucket):
        return []
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket):
        keys = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    s3.delete_bucket(Bucket=bucket)
    return [bucket]
