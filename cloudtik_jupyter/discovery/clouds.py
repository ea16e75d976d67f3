"""The registries on the clouds: one object per cluster, ``cloudtik/services/<cluster>.json``, in the
workspace's bucket (AWS S3, GCP Cloud Storage) or in the ``cloudtik`` blob container of the workspace's
storage account (Azure). The head's and the workers' identities may already read and write there.

Every call is one request and safe to retry; `list` skips what it cannot read (another cluster's
document being replaced, something else written under the prefix).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import CloudtikError
from .records import ClusterServices, object_key

if TYPE_CHECKING:
    from .registry import DiscoveryScope

OBJECT_PREFIX = "cloudtik/services/"
PAGE_SIZE = 1000  # names per listing request (the services' own default)
AZURE_CONTAINER = "cloudtik"  # holds the registry only; the workspace's data check passes it by


class S3Registry:
    """In the AWS workspace's bucket, through boto3."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def put(self, doc: ClusterServices) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=object_key(OBJECT_PREFIX, doc.cluster),
            Body=doc.to_json().encode(),
            ContentType="application/json",
        )

    def get(self, cluster: str) -> ClusterServices | None:
        key = object_key(OBJECT_PREFIX, cluster)
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        return ClusterServices.from_json(body, f"s3://{self.bucket}/{key}")

    def delete(self, cluster: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=object_key(OBJECT_PREFIX, cluster))

    def list(self) -> list[ClusterServices]:
        found = []
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=OBJECT_PREFIX)
        for page in pages:
            for item in page.get("Contents", []):
                with contextlib.suppress(CloudtikError, self.s3.exceptions.NoSuchKey):
                    body = self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                    found.append(ClusterServices.from_json(body, f"s3://{self.bucket}/{item['Key']}"))
        return found


class GcsRegistry:
    """In the GCP workspace's bucket, through the Cloud Storage JSON API client the provider uses."""

    def __init__(self, storage: Any, bucket: str, endpoint_url: str | None = None) -> None:
        self.storage, self.bucket, self.endpoint = storage, bucket, endpoint_url
        self.page_size = PAGE_SIZE

    def _run(self, request: Any, what: str) -> Any:
        from ..providers.gcp.clients import gcp_errors

        with gcp_errors(what):
            return request.execute()

    def put(self, doc: ClusterServices) -> None:
        from googleapiclient.http import MediaInMemoryUpload

        media = MediaInMemoryUpload(doc.to_json().encode(), mimetype="application/json", resumable=False)
        key = object_key(OBJECT_PREFIX, doc.cluster)
        request = self.storage.objects().insert(bucket=self.bucket, name=key, media_body=media)
        if self.endpoint:  # the client keeps Google's https for uploads; an emulator's may be plain http
            url, base = urlsplit(request.uri), urlsplit(self.endpoint)
            request.uri = urlunsplit(url._replace(scheme=base.scheme, netloc=base.netloc))
        self._run(request, f"publishing to gs://{self.bucket}/{key}")

    def _read(self, key: str) -> bytes | None:
        from ..providers.gcp.clients import gcp_errors, is_not_found

        with gcp_errors(f"reading gs://{self.bucket}/{key}"):
            try:
                return bytes(self.storage.objects().get_media(bucket=self.bucket, object=key).execute())
            except Exception as exc:
                if is_not_found(exc):
                    return None
                raise

    def get(self, cluster: str) -> ClusterServices | None:
        key = object_key(OBJECT_PREFIX, cluster)
        data = self._read(key)
        return None if data is None else ClusterServices.from_json(data, f"gs://{self.bucket}/{key}")

    def delete(self, cluster: str) -> None:
        from ..providers.gcp.clients import gcp_errors, is_not_found

        key = object_key(OBJECT_PREFIX, cluster)
        with gcp_errors(f"withdrawing gs://{self.bucket}/{key}"):
            try:
                self.storage.objects().delete(bucket=self.bucket, object=key).execute()
            except Exception as exc:
                if not is_not_found(exc):  # already gone: deleting is idempotent
                    raise

    def _names(self) -> Iterator[str]:
        token: str | None = None
        while True:
            request = self.storage.objects().list(
                bucket=self.bucket, prefix=OBJECT_PREFIX, pageToken=token, maxResults=self.page_size
            )
            page = self._run(request, f"listing gs://{self.bucket}/{OBJECT_PREFIX}")
            yield from (item["name"] for item in page.get("items", []))
            token = page.get("nextPageToken")
            if not token:
                return

    def list(self) -> list[ClusterServices]:
        found = []
        for name in self._names():
            with contextlib.suppress(CloudtikError):
                data = self._read(name)
                if data is not None:
                    found.append(ClusterServices.from_json(data, f"gs://{self.bucket}/{name}"))
        return found


class BlobRegistry:
    """In the ``cloudtik`` container of the Azure workspace's storage account, through azure-storage-blob
    with the node's identity (the account takes no shared keys). The container is made on first use."""

    def __init__(self, container: Any) -> None:
        self.container = container
        self.page_size = PAGE_SIZE

    def _errors(self, what: str) -> Any:
        from ..providers.azure.clients import azure_errors

        return azure_errors(what)

    def put(self, doc: ClusterServices) -> None:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
        from azure.storage.blob import ContentSettings

        key = object_key(OBJECT_PREFIX, doc.cluster)
        settings = ContentSettings(content_type="application/json")

        def upload() -> None:
            self.container.upload_blob(key, doc.to_json().encode(), overwrite=True, content_settings=settings)

        with self._errors(f"publishing to {self.container.container_name}/{key}"):
            try:
                upload()
            except ResourceNotFoundError:  # the workspace's first publication: no container yet
                with contextlib.suppress(ResourceExistsError):
                    self.container.create_container()
                upload()

    def _read(self, key: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._errors(f"reading {self.container.container_name}/{key}"):
            try:
                return bytes(self.container.download_blob(key).readall())
            except ResourceNotFoundError:  # no such blob, or no container yet
                return None

    def get(self, cluster: str) -> ClusterServices | None:
        key = object_key(OBJECT_PREFIX, cluster)
        data = self._read(key)
        return None if data is None else ClusterServices.from_json(data, f"{self.container.url}/{key}")

    def delete(self, cluster: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        key = object_key(OBJECT_PREFIX, cluster)
        with self._errors(f"withdrawing {key}"), contextlib.suppress(ResourceNotFoundError):
            self.container.delete_blob(key)

    def list(self) -> list[ClusterServices]:
        from azure.core.exceptions import ResourceNotFoundError

        found = []
        with self._errors(f"listing {self.container.container_name}/{OBJECT_PREFIX}"):
            try:
                blobs = self.container.list_blobs(name_starts_with=OBJECT_PREFIX, results_per_page=self.page_size)
                names = [b.name for b in blobs]
            except ResourceNotFoundError:
                return []
        for name in names:
            with contextlib.suppress(CloudtikError):
                data = self._read(name)
                if data is not None:
                    found.append(ClusterServices.from_json(data, f"{self.container.url}/{name}"))
        return found


# Made once per scope: views look a consumed service up on every refresh.


@functools.lru_cache(maxsize=16)
def aws_registry(scope: DiscoveryScope) -> S3Registry:
    from ..providers.aws.clients import aws_errors, make_clients
    from ..providers.aws.naming import WorkspaceNames

    provider: Any = scope.provider
    clients = make_clients(provider.region, provider.endpoint_url)
    with aws_errors("finding the workspace bucket"):
        account = clients.sts.get_caller_identity()["Account"]
    return S3Registry(clients.s3, WorkspaceNames(scope.workspace).bucket(account, provider.region))


@functools.lru_cache(maxsize=16)
def gcp_registry(scope: DiscoveryScope) -> GcsRegistry:
    from ..providers.gcp.clients import storage_client
    from ..providers.gcp.naming import GcpNames

    provider: Any = scope.provider
    bucket = GcpNames(scope.workspace, provider.project_id).bucket
    return GcsRegistry(storage_client(provider.endpoint_url), bucket, provider.endpoint_url)


@functools.lru_cache(maxsize=16)
def azure_registry(scope: DiscoveryScope) -> BlobRegistry:
    from ..providers.azure.clients import blob_container
    from ..providers.azure.naming import AzureNames, default_resource_group

    provider: Any = scope.provider
    group = provider.resource_group or default_resource_group(scope.workspace)
    names = AzureNames(scope.workspace, provider.subscription_id, group)
    return BlobRegistry(blob_container(names.storage_account, AZURE_CONTAINER, provider.endpoint_url))
