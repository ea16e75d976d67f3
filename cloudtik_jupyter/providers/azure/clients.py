"""The one edge to Azure: a factory for the management clients, and the mapping of Azure errors to ours.

Tests point the same code at a local fake ARM endpoint by passing `endpoint_url`; nothing else changes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ...errors import ProviderError
from ..common import cancel

AUTHORIZATION_API = "2022-04-01"


@dataclass(frozen=True)
class AzureClients:
    """The management clients a provider uses, made once. Typed `Any`: the SDKs are imported lazily."""

    subscription_id: str
    location: str
    resource: Any
    network: Any
    compute: Any
    msi: Any
    authorization: Any
    storage: Any


class LocalEndpointCredential:
    """A placeholder token for a plain-http endpoint (a local emulator or fake): a real token is never
    sent in clear text, so none is fetched for one."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("local-endpoint", int(time.time()) + 3600)


def _allow_http_policy() -> Any:
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class AllowHttp(SansIOHTTPPolicy):
        """Bearer auth refuses plain http unless told the endpoint is meant to be so."""

        def on_request(self, request: Any) -> None:
            request.context["enforce_https"] = False

    return AllowHttp()


def _cancel_policy() -> Any:
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class CheckCancel(SansIOHTTPPolicy):
        """A cancel stops before the next request of the worker thread."""

        def on_request(self, request: Any) -> None:
            cancel.check()

    return CheckCancel()


def finish(poller: Any, interval: float = 0.2) -> Any:
    """A long-running operation's result. The SDK polls in a thread of its own, which does not see the
    cancel token: wait here, checking it, so a cancel does not wait for the operation to end."""
    while not poller.done():
        cancel.check()
        poller.wait(interval)
    return poller.result()


def default_credential(endpoint_url: str | None) -> Any:
    if endpoint_url and endpoint_url.startswith("http://"):
        return LocalEndpointCredential()
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def make_clients(
    subscription_id: str,
    location: str,
    *,
    endpoint_url: str | None = None,
    credential: Any = None,
    client_kwargs: Mapping[str, Any] | None = None,
) -> AzureClients:
    """Management clients for `subscription_id`; `endpoint_url` replaces the ARM endpoint."""
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.compute import ComputeManagementClient
    from azure.mgmt.msi import ManagedServiceIdentityClient
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.mgmt.storage import StorageManagementClient

    local = bool(endpoint_url and endpoint_url.startswith("http://"))
    cred = credential if credential is not None else default_credential(endpoint_url)
    kwargs: dict[str, Any] = {"polling_interval": 0 if local else 5}
    if endpoint_url:
        kwargs["base_url"] = endpoint_url.rstrip("/")
    kwargs["per_call_policies"] = [_cancel_policy(), *([_allow_http_policy()] if local else [])]
    kwargs.update(client_kwargs or {})

    def client(cls: Any, **extra: Any) -> Any:
        return cls(cred, subscription_id, **kwargs, **extra)

    return AzureClients(
        subscription_id=subscription_id,
        location=location,
        resource=client(ResourceManagementClient),
        network=client(NetworkManagementClient),
        compute=client(ComputeManagementClient),
        msi=client(ManagedServiceIdentityClient),
        authorization=client(AuthorizationManagementClient, api_version=AUTHORIZATION_API),
        storage=client(StorageManagementClient),
    )


def blob_endpoint(account: str, endpoint_url: str | None) -> str:
    """A storage account's blob endpoint; with `endpoint_url` (an emulator or a fake) path-style,
    ``<endpoint>/<account>``, as Azurite serves it."""
    if endpoint_url:
        return f"{endpoint_url.rstrip('/')}/{account}"
    return f"https://{account}.blob.core.windows.net"


def blob_container(account: str, container: str, endpoint_url: str | None = None, credential: Any = None) -> Any:
    """A `ContainerClient` authenticated as the node's identity (workspace accounts take no shared keys).

    The storage SDK takes token credentials over https only; a plain-http endpoint (an emulator or a
    fake) gets the same placeholder bearer token as the management clients, set before each request."""
    from azure.storage.blob import ContainerClient

    local = bool(endpoint_url and endpoint_url.startswith("http://"))
    if credential is None:
        credential = None if local else default_credential(endpoint_url)

    def before_auth(request: Any) -> None:  # StorageRequestHook: runs before the credential policy
        cancel.check()
        if local and credential is None:
            token = LocalEndpointCredential().get_token().token
            request.http_request.headers["Authorization"] = f"Bearer {token}"

    return ContainerClient(
        blob_endpoint(account, endpoint_url),
        container,
        credential=credential,
        raw_request_hook=before_auth,
        retry_total=2 if local else 5,
    )


def is_not_found(exc: BaseException) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    return isinstance(exc, ResourceNotFoundError)


def error_code(exc: BaseException) -> str:
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", "") or "")


@contextmanager
def azure_errors(what: str) -> Iterator[None]:
    """Turn Azure failures into one `ProviderError` line that says what we were doing."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

    try:
        yield
    except ClientAuthenticationError as exc:  # before its base class, HttpResponseError
        raise ProviderError(f"azure: {what}: no usable credentials ({exc.message})") from exc
    except HttpResponseError as exc:
        error = getattr(exc, "error", None)
        code = getattr(error, "code", "") or getattr(exc, "error_code", "") or exc.status_code
        message = getattr(error, "message", "") or exc.message or ""
        # The storage SDK's message runs on with "ErrorCode:..." lines: the first says it.
        raise ProviderError(f"azure: {what}: {code}: {message.splitlines()[0] if message else ''}") from exc
    except AzureError as exc:
        raise ProviderError(f"azure: {what}: {exc.message}") from exc
