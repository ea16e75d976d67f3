"""The one edge to GCP: a factory for the SDK clients, and the mapping of GCP errors to ours.

Compute goes through google-cloud-compute's REST transport; IAM, Resource Manager and Storage through
Google's discovery clients (google-cloud-iam speaks only gRPC). Tests point all of them at a local fake
by passing `endpoint_url`; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ...errors import ProviderError
from ..common import cancel

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)


@dataclass(frozen=True)
class GcpClients:
    """The clients a provider uses, made once. Typed `Any`: the SDKs' classes are imported lazily."""

    project: str
    region: str
    regions: Any
    networks: Any
    subnetworks: Any
    firewalls: Any
    routers: Any
    instances: Any
    global_operations: Any
    region_operations: Any
    zone_operations: Any
    iam: Any  # discovery: iam v1
    resource_manager: Any  # discovery: cloudresourcemanager v3
    storage: Any  # discovery: storage v1


def default_credentials(endpoint_url: str | None) -> Any:
    """Application default credentials; none for a plain-http endpoint (a local emulator or fake):
    a real token is never sent in clear text."""
    if endpoint_url and endpoint_url.startswith("http://"):
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _ = google.auth.default(scopes=list(SCOPES))
    except DefaultCredentialsError as exc:
        raise ProviderError(
            "gcp: no credentials found (run `gcloud auth application-default login` "
            "or set GOOGLE_APPLICATION_CREDENTIALS)"
        ) from exc
    return credentials


def cancellable(credentials: Any) -> Any:
    """`credentials` that check the cancel token before every request (both kinds of client call
    `before_request` on their credentials first), so a cancel stops before the next cloud call."""
    from google.auth.credentials import Credentials

    class CancellableCredentials(Credentials):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner
            self._universe_domain = getattr(inner, "universe_domain", self._universe_domain)

        @property
        def valid(self) -> bool:
            return bool(self.inner.valid)

        @property
        def expired(self) -> bool:
            return bool(self.inner.expired)

        @property
        def quota_project_id(self) -> Any:
            return self.inner.quota_project_id

        def refresh(self, request: Any) -> None:
            self.inner.refresh(request)

        def apply(self, headers: Any, token: Any = None) -> None:
            self.inner.apply(headers, token)

        def before_request(self, request: Any, method: Any, url: Any, headers: Any) -> None:
            cancel.check()
            self.inner.before_request(request, method, url, headers)

    return CancellableCredentials(credentials)


def make_clients(
    project: str,
    region: str,
    *,
    endpoint_url: str | None = None,
    credentials: Any = None,
    client_options: Mapping[str, Any] | None = None,
) -> GcpClients:
    """Clients for `project`; `endpoint_url` replaces every Google endpoint (compute, IAM, storage)."""
    from google.api_core.client_options import ClientOptions
    from google.cloud import compute_v1
    from googleapiclient import discovery

    creds = cancellable(credentials if credentials is not None else default_credentials(endpoint_url))
    extra = dict(client_options or {})
    base = endpoint_url.rstrip("/") if endpoint_url else None

    def compute(cls: Any) -> Any:
        options = ClientOptions(api_endpoint=base, **extra) if base else ClientOptions(**extra)
        return cls(credentials=creds, transport="rest", client_options=options)

    def api(name: str, version: str, path: str = "") -> Any:
        options = {**extra, "api_endpoint": f"{base}{path}"} if base else extra
        return discovery.build(
            name,
            version,
            credentials=creds,
            client_options=options or None,
            static_discovery=True,
            cache_discovery=False,
        )

    return GcpClients(
        project=project,
        region=region,
        regions=compute(compute_v1.RegionsClient),
        networks=compute(compute_v1.NetworksClient),
        subnetworks=compute(compute_v1.SubnetworksClient),
        firewalls=compute(compute_v1.FirewallsClient),
        routers=compute(compute_v1.RoutersClient),
        instances=compute(compute_v1.InstancesClient),
        global_operations=compute(compute_v1.GlobalOperationsClient),
        region_operations=compute(compute_v1.RegionOperationsClient),
        zone_operations=compute(compute_v1.ZoneOperationsClient),
        iam=api("iam", "v1"),
        resource_manager=api("cloudresourcemanager", "v3"),
        storage=api("storage", "v1", "/storage/v1/"),
    )


def storage_client(endpoint_url: str | None = None, credentials: Any = None) -> Any:
    """The Cloud Storage client alone (service discovery on a node needs no compute clients)."""
    from googleapiclient import discovery

    creds = cancellable(credentials if credentials is not None else default_credentials(endpoint_url))
    options = {"api_endpoint": f"{endpoint_url.rstrip('/')}/storage/v1/"} if endpoint_url else None
    return discovery.build(
        "storage", "v1", credentials=creds, client_options=options, static_discovery=True, cache_discovery=False
    )


def status_of(exc: BaseException) -> int:
    """The HTTP status of a GCP error from either kind of client (0 for anything else)."""
    code = getattr(exc, "code", None)  # google.api_core exceptions
    if isinstance(code, int):
        return code
    resp = getattr(exc, "resp", None)  # googleapiclient HttpError
    status = getattr(resp, "status", None)
    return int(status) if status is not None else 0


def is_not_found(exc: BaseException) -> bool:
    return _is_gcp_error(exc) and status_of(exc) == 404


def is_conflict(exc: BaseException) -> bool:
    return _is_gcp_error(exc) and status_of(exc) in (409, 412)


def _is_gcp_error(exc: BaseException) -> bool:
    from google.api_core.exceptions import GoogleAPICallError
    from googleapiclient.errors import HttpError

    return isinstance(exc, GoogleAPICallError | HttpError)


def _message(exc: BaseException) -> str:
    from googleapiclient.errors import HttpError

    if isinstance(exc, HttpError):
        return f"{exc.status_code} {exc.reason}"
    return str(exc)


@contextmanager
def gcp_errors(what: str) -> Iterator[None]:
    """Turn GCP failures into one `ProviderError` line that says what we were doing."""
    from google.api_core.exceptions import GoogleAPICallError
    from google.auth.exceptions import GoogleAuthError
    from googleapiclient.errors import HttpError

    try:
        yield
    except (GoogleAPICallError, HttpError) as exc:
        raise ProviderError(f"gcp: {what}: {_message(exc)}") from exc
    except GoogleAuthError as exc:
        raise ProviderError(f"gcp: {what}: {exc}") from exc
