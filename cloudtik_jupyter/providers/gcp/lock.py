"""The workspace's lock in the cloud: an empty bucket named after it, labelled with the holder.

Bucket names are global and Cloud Storage refuses a second bucket of the same name (409): that is the
atomic create a lock needs. It holds no objects and costs nothing.
"""

from __future__ import annotations

from ..common.lock import LockRecord
from .clients import GcpClients, is_conflict, is_not_found
from .naming import GcpNames

LABEL_PREFIX = "cloudtik-lock-"


class BucketLock:
    def __init__(self, c: GcpClients, names: GcpNames) -> None:
        self.c = c
        self.names = names

    def create(self, record: LockRecord) -> bool:
        labels = {
            **self.names.labels("lock"),
            **{LABEL_PREFIX + k: v for k, v in record.tags().items()},
        }
        body = {"name": self.names.lock_bucket, "location": self.c.region, "labels": labels}
        try:
            self.c.storage.buckets().insert(project=self.c.project, body=body).execute()
        except Exception as exc:
            if is_conflict(exc):
                return False
            raise
        return True

    def _get(self) -> dict[str, object] | None:
        try:
            found: dict[str, object] = self.c.storage.buckets().get(bucket=self.names.lock_bucket).execute()
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise
        return found

    def read(self) -> LockRecord | None:
        found = self._get()
        if found is None:
            return None
        labels = found.get("labels") or {}
        assert isinstance(labels, dict)
        fields = {k[len(LABEL_PREFIX) :]: str(v) for k, v in labels.items() if k.startswith(LABEL_PREFIX)}
        return LockRecord.from_tags(fields) or LockRecord("?", "?", "?", 0, 0)

    def delete(self, record: LockRecord) -> None:
        found = self._get()
        if found is None:
            return
        labels = found.get("labels") or {}
        assert isinstance(labels, dict)
        if labels.get(LABEL_PREFIX + "owner", "?") != record.owner:
            return
        try:
            self.c.storage.buckets().delete(bucket=self.names.lock_bucket).execute()
        except Exception as exc:
            if not is_not_found(exc):
                raise
