"""The workspace storage account: no public blob access, no shared keys (identities only), HTTPS and
TLS 1.2 only; tagged."""

from __future__ import annotations

from typing import Any

from . import naming as N
from .clients import AzureClients, finish, is_not_found
from .naming import AzureNames
from .network import failed


def get_account(c: AzureClients, names: AzureNames) -> Any | None:
    try:
        return c.storage.storage_accounts.get_properties(names.resource_group, names.storage_account)
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise


def _private(account: Any) -> bool:
    return (
        account.allow_blob_public_access is False
        and account.allow_shared_key_access is False
        and account.enable_https_traffic_only is True
        and account.minimum_tls_version == "TLS1_2"
    )


def ensure_account(c: AzureClients, names: AzureNames) -> None:
    """Create if missing or re-apply the privacy settings if they drifted (a PUT converges them)."""
    from azure.mgmt.storage.models import (
        Sku,
        StorageAccountCreateParameters,
        StorageAccountPropertiesCreateParameters,
    )

    found = get_account(c, names)
    if found is not None and _private(found) and names.owns(found.tags) and not failed(found):
        return
    params = StorageAccountCreateParameters(
        sku=Sku(name="Standard_LRS"),
        kind="StorageV2",
        location=c.location,
        tags=names.tags(N.STORAGE_ACCOUNT),
        properties=StorageAccountPropertiesCreateParameters(
            allow_blob_public_access=False,
            allow_shared_key_access=False,
            enable_https_traffic_only=True,
            minimum_tls_version="TLS1_2",
        ),
    )
    finish(c.storage.storage_accounts.begin_create(names.resource_group, names.storage_account, params))


def container_names(c: AzureClients, names: AzureNames) -> list[str]:
    return [str(x.name) for x in c.storage.blob_containers.list(names.resource_group, names.storage_account)]


def data_containers(c: AzureClients, names: AzureNames) -> list[str]:
    """Containers that may hold someone's data: all but the service registry's (its documents are
    withdrawn as clusters go down, and a workspace with clusters up is refused before this)."""
    from ...discovery.clouds import AZURE_CONTAINER

    return [n for n in container_names(c, names) if n != AZURE_CONTAINER]


def delete_account(c: AzureClients, names: AzureNames) -> list[str]:
    if get_account(c, names) is None:
        return []
    c.storage.storage_accounts.delete(names.resource_group, names.storage_account)
    return [names.storage_account]
