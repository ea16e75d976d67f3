"""The checks `delete` makes before touching anything: no running clusters, no data, unless forced."""

from __future__ import annotations

from collections.abc import Collection

from ...errors import ProviderError


def refuse_busy_delete(workspace: str, instances: int, clusters: Collection[str], force: bool) -> None:
    if instances and not force:
        raise ProviderError(
            f"workspace {workspace!r} has {instances} instance(s) running "
            f"(clusters: {', '.join(sorted(clusters)) or '?'}); take them down first, or delete with force"
        )


def refuse_data_delete(workspace: str, store: str, holds_data: bool, force: bool) -> None:
    if holds_data and not force:
        raise ProviderError(
            f"{store} of workspace {workspace!r} still holds objects; empty it first, or delete with force"
        )
