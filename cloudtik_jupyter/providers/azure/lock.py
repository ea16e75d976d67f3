"""The workspace's lock in the cloud: tags on its resource group naming the holder.

ARM has no create-if-absent for a resource, so the lock is taken by merging the tags in, then reading
them back: of two writers, the one whose tags were overwritten sees it and backs off. (Two writers that
each read back before the other writes can both pass; the local lock still holds on one machine.)
"""

from __future__ import annotations

from typing import Any

from ..common.lock import LockRecord
from . import network
from .clients import AzureClients, finish
from .naming import AzureNames

TAG_PREFIX = "cloudtik-lock-"


class ResourceGroupLock:
    def __init__(self, c: AzureClients, names: AzureNames) -> None:
        self.c = c
        self.names = names

    @property
    def scope(self) -> str:
        return self.names.group_id

    def _patch(self, operation: str, tags: dict[str, str]) -> Any:
        from azure.mgmt.resource.resources.models import Tags, TagsPatchResource

        patch = TagsPatchResource(operation=operation, properties=Tags(tags=tags))
        return finish(self.c.resource.tags.begin_update_at_scope(self.scope, patch))

    def create(self, record: LockRecord) -> bool:
        if network.find_group(self.c, self.names) is None:
            if record.operation != "create":
                return True  # nothing to delete, nothing to lock
            network.ensure_group(self.c, self.names)  # the lock lives on it: made first
        if self.read() is not None:
            return False
        self._patch("Merge", {TAG_PREFIX + k: v for k, v in record.tags().items()})
        held = self.read()
        return held is not None and held.owner == record.owner

    def read(self) -> LockRecord | None:
        group = network.find_group(self.c, self.names)
        tags = dict(group.tags or {}) if group is not None else {}
        fields = {k[len(TAG_PREFIX) :]: v for k, v in tags.items() if k.startswith(TAG_PREFIX)}
        if not fields:
            return None
        return LockRecord.from_tags(fields) or LockRecord("?", "?", "?", 0, 0)

    def delete(self, record: LockRecord) -> None:
        held = self.read()
        if held is None or held.owner != record.owner:
            return
        self._patch("Delete", {TAG_PREFIX + k: v for k, v in held.tags().items()})
