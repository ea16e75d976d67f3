"""The workspace's lock in the cloud: an EC2 key pair named after it, tagged with the holder.

EC2 refuses a second key pair of the same name (`InvalidKeyPair.Duplicate`): that is the atomic
create a lock needs, in the region, for free. Its private key is never kept; nothing logs in with it.
"""

from __future__ import annotations

from typing import Any

from ..common.lock import LockRecord
from .clients import error_code, is_client_error
from .naming import WorkspaceNames, tag_dict

LOCK_TAG_PREFIX = "cloudtik-lock-"


class KeyPairLock:
    def __init__(self, ec2: Any, names: WorkspaceNames) -> None:
        self.ec2 = ec2
        self.names = names

    @property
    def name(self) -> str:
        return self.names.lock

    def create(self, record: LockRecord) -> bool:
        tags = [
            *self.names.tag_list("lock"),
            *({"Key": LOCK_TAG_PREFIX + k, "Value": v} for k, v in record.tags().items()),
        ]
        try:
            self.ec2.create_key_pair(
                KeyName=self.name,
                KeyType="ed25519",
                TagSpecifications=[{"ResourceType": "key-pair", "Tags": tags}],
            )
        except Exception as exc:
            if is_client_error(exc) and error_code(exc) == "InvalidKeyPair.Duplicate":
                return False
            raise
        return True

    def _describe(self) -> Any | None:
        try:
            found = self.ec2.describe_key_pairs(KeyNames=[self.name])["KeyPairs"]
        except Exception as exc:
            if is_client_error(exc) and error_code(exc) == "InvalidKeyPair.NotFound":
                return None
            raise
        return found[0] if found else None

    def read(self) -> LockRecord | None:
        found = self._describe()
        if found is None:
            return None
        tags = tag_dict(found.get("Tags"))
        fields = {k[len(LOCK_TAG_PREFIX) :]: v for k, v in tags.items() if k.startswith(LOCK_TAG_PREFIX)}
        # A lock without a readable record is nobody's: it reads as expired, so it is taken over.
        return LockRecord.from_tags(fields) or LockRecord("?", "?", "?", 0, 0)

    def delete(self, record: LockRecord) -> None:
        found = self._describe()
        if found is None:
            return
        tags = tag_dict(found.get("Tags"))
        if tags.get(LOCK_TAG_PREFIX + "owner", "?") == record.owner:
            self.ec2.delete_key_pair(KeyName=self.name)
