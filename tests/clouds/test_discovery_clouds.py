"""The GCP and Azure service registries: documents in the workspace's bucket (Cloud Storage JSON API) and
in the ``cloudtik`` container of its storage account (azure-storage-blob), through the real SDKs against
the local fakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes.azure import FakeAzure
from fakes.envs import AzureEnv, GcpEnv, azure_fixture, gcp_fixture  # noqa: F401
from fakes.gcp import FakeGcp
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from cloudtik_jupyter.discovery import ClusterServices, DiscoveryScope, PublishedService, registry_for
from cloudtik_jupyter.discovery.clouds import AZURE_CONTAINER, OBJECT_PREFIX, BlobRegistry, GcsRegistry
from cloudtik_jupyter.errors import CloudtikError, ConfigError
from cloudtik_jupyter.providers.azure.naming import AzureNames, default_resource_group
from cloudtik_jupyter.providers.gcp.naming import GcpNames

HOSTILE = ["../x", "a/b", "evil.json", "UPPER", "", "x" * 41, "a\nb", "-lead", "a?b"]


def doc(cluster: str, port: int = 5000) -> ClusterServices:
    service = PublishedService(name="mlflow-tracking", kind="mlflow-tracking", address="10.0.1.5", port=port, protocol="http")
    return ClusterServices(workspace="ws", cluster=cluster, published_at=1.0, services=[service])


def exercise(registry: Any, write_foreign: Any, keys: Any) -> None:
    """The contract every registry keeps, whatever it is stored in."""
    assert registry.list() == [] and registry.get("tracking") is None
    registry.delete("tracking")  # nothing to withdraw yet: still fine

    registry.put(doc("tracking"))
    registry.put(doc("other", 5001))
    registry.put(doc("tracking", 5002))  # a replaced head publishes again: one document per cluster
    assert sorted((d.cluster, d.services[0].port) for d in registry.list()) == [("other", 5001), ("tracking", 5002)]
    assert registry.get("tracking") == doc("tracking", 5002)

    # Written into the prefix by someone else and not a document of ours: skipped by list, refused by get.
    write_foreign(f"{OBJECT_PREFIX}evil.json", b'{"format": 1, "cluster": "x"}')
    write_foreign(f"{OBJECT_PREFIX}junk.json", b"\xff\x00 not json")
    write_foreign(f"{OBJECT_PREFIX}huge.json", b"{" + b" " * 70_000 + b"}")
    assert sorted(d.cluster for d in registry.list()) == ["other", "tracking"]
    for name in ("evil", "junk"):
        with pytest.raises(CloudtikError, match="not a service document"):
            registry.get(name)
    with pytest.raises(CloudtikError, match="over 65536 bytes"):
        registry.get("huge")

    before = sorted(keys())
    for name in HOSTILE:  # never turned into a request for another object
        for call in (registry.get, registry.delete):
            with pytest.raises(ConfigError, match="not a cluster name"):
                call(name)
    assert sorted(keys()) == before

    registry.delete("tracking")
    registry.delete("tracking")  # idempotent
    assert [d.cluster for d in registry.list()] == ["other"]
    assert f"{OBJECT_PREFIX}tracking.json" not in keys()


def test_gcs_registry_in_the_workspace_bucket(gcp: GcpEnv) -> None:
    bucket = GcpNames("ws", gcp.project).bucket
    gcp.clients().storage.buckets().insert(project=gcp.project, body={"name": bucket}).execute()
    registry = registry_for(DiscoveryScope("ws", gcp.provider_config()))
    assert isinstance(registry, GcsRegistry) and registry.bucket == bucket
    assert registry is registry_for(DiscoveryScope("ws", gcp.provider_config()))  # made once per scope

    exercise(registry, lambda key, data: gcp.fake.put_object(bucket, key, data), lambda: list(gcp.fake.iam.objects[bucket]))
    uploads = [r for r in gcp.fake.server.requests if r.path.startswith("/upload/")]
    assert uploads and all(r.query.get("uploadType") == "media" and r.status == 200 for r in uploads)


def test_gcs_registry_pages_through_a_long_listing(gcp: GcpEnv) -> None:
    bucket = GcpNames("ws", gcp.project).bucket
    gcp.clients().storage.buckets().insert(project=gcp.project, body={"name": bucket}).execute()
    gcp.fake.put_object(bucket, "user-data/keep.csv", b"a,b\n")  # outside the prefix: never read
    registry = registry_for(DiscoveryScope("ws", gcp.provider_config()))
    assert isinstance(registry, GcsRegistry)
    registry.page_size = 2
    for i in range(5):
        registry.put(doc(f"c{i}"))
    gcp.fake.server.clear_log()
    assert sorted(d.cluster for d in registry.list()) == [f"c{i}" for i in range(5)]
    lists = [r for r in gcp.fake.server.requests if r.method == "GET" and r.path.endswith("/o")]
    assert len(lists) == 3 and all(r.query.get("prefix") == OBJECT_PREFIX for r in lists)
    reads = [r for r in gcp.fake.server.requests if r.query.get("alt") == "media"]
    assert len(reads) == 5 and not any("user-data" in r.path for r in reads)


def test_blob_registry_pages_through_a_long_listing(azure: AzureEnv) -> None:
    _account(azure)
    registry = registry_for(DiscoveryScope("ws", azure.provider_config()))
    assert isinstance(registry, BlobRegistry)
    registry.page_size = 2
    for i in range(5):
        registry.put(doc(f"c{i}"))
    azure.fake.server.clear_log()
    assert sorted(d.cluster for d in registry.list()) == [f"c{i}" for i in range(5)]
    lists = [r for r in azure.fake.server.requests if r.query.get("comp") == "list"]
    assert len(lists) == 3 and all(r.query.get("prefix") == OBJECT_PREFIX for r in lists)


def test_gcs_registry_without_a_bucket_fails_with_one_line(gcp: GcpEnv) -> None:
    registry = registry_for(DiscoveryScope("nobucket", gcp.provider_config()))
    with pytest.raises(CloudtikError, match=r"^gcp: publishing to gs://cloudtik-nobucket-\w+/cloudtik/services/a.json: 404 [^\n]*$"):
        registry.put(doc("a"))


def _account(azure: AzureEnv, workspace: str = "ws") -> tuple[AzureNames, str]:
    """The workspace's resource group and storage account, as `workspace create` leaves them."""
    names = AzureNames(workspace, azure.subscription, default_resource_group(workspace))
    c = azure.clients()
    c.resource.resource_groups.create_or_update(names.resource_group, {"location": azure.location})
    from cloudtik_jupyter.providers.azure.storage import ensure_account

    ensure_account(c, names)
    return names, names.storage_account_id


def test_blob_registry_in_the_workspace_storage_account(azure: AzureEnv) -> None:
    names, account_id = _account(azure)
    registry = registry_for(DiscoveryScope("ws", azure.provider_config()))
    assert isinstance(registry, BlobRegistry) and registry.container.container_name == AZURE_CONTAINER
    assert registry.container.account_name == names.storage_account

    # The container is made by the first publication; reads before it exists find nothing.
    assert registry.list() == [] and registry.get("x") is None
    registry.put(doc("first"))
    registry.delete("first")
    from cloudtik_jupyter.providers.azure.storage import container_names, data_containers

    c = azure.clients()
    assert container_names(c, names) == [AZURE_CONTAINER]  # seen through ARM too
    assert data_containers(c, names) == []  # the registry alone does not make the account "hold data"

    blobs = lambda: list(azure.fake.blob.blobs.get(f"{account_id}/blobServices/default/containers/{AZURE_CONTAINER}".lower(), {}))  # noqa: E731
    exercise(registry, lambda key, data: azure.fake.put_blob(account_id, AZURE_CONTAINER, key, data), blobs)
    requests = [r for r in azure.fake.server.requests if not r.path.startswith("/subscriptions")]
    assert requests and all(r.path.startswith(f"/{names.storage_account}/{AZURE_CONTAINER}") for r in requests)


def test_blob_registry_refuses_shared_key_and_reports_one_line(azure: AzureEnv) -> None:
    from cloudtik_jupyter.providers.azure.clients import blob_container

    _account(azure)
    missing = registry_for(DiscoveryScope("nostorage", azure.provider_config()))
    with pytest.raises(CloudtikError, match=r"^azure: publishing to cloudtik/cloudtik/services/a.json: ResourceNotFound: The specified resource does not exist.$"):
        missing.put(doc("a"))

    # The fake, like a workspace account, takes identities only: an account key is refused.
    from azure.core.credentials import AzureNamedKeyCredential

    names = AzureNames("ws", azure.subscription, default_resource_group("ws"))
    keyed = BlobRegistry(blob_container(names.storage_account, AZURE_CONTAINER, azure.url, AzureNamedKeyCredential(names.storage_account, "a2V5")))
    with pytest.raises(CloudtikError, match="KeyBasedAuthenticationNotPermitted"):
        keyed.list()


@pytest.mark.parametrize("kind", ["virtual", "gcp", "azure"])  # aws: test_discovery_s3.py (an STS call)
def test_discovery_scope_chooses_the_registry_of_the_provider(kind: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """No request is made choosing one: a registry is a handle on the workspace's storage."""
    from cloudtik_jupyter.config import load_config
    from cloudtik_jupyter.discovery.registry import FileRegistry

    monkeypatch.setenv("CLOUDTIK_HOME", str(tmp_path))
    providers: dict[str, dict[str, Any]] = {
        "virtual": {"type": "virtual"},
        "gcp": {"type": "gcp", "project_id": "p-1", "endpoint_url": "http://127.0.0.1:9"},
        "azure": {"type": "azure", "subscription_id": "s-1", "endpoint_url": "http://127.0.0.1:9"},
    }
    config = load_config(
        {"cluster_name": "c", "workspace_name": "team", "provider": providers[kind], "head_node_type": "h", "available_node_types": {"h": {}}}
    )
    registry = registry_for(DiscoveryScope.of(config))
    expected = {"virtual": FileRegistry, "gcp": GcsRegistry, "azure": BlobRegistry}[kind]
    assert type(registry) is expected
    if isinstance(registry, GcsRegistry):
        assert registry.bucket == GcpNames("team", "p-1").bucket
    if isinstance(registry, BlobRegistry):
        assert registry.container.account_name == AzureNames("team", "s-1", "cloudtik-team").storage_account
    if isinstance(registry, FileRegistry):
        assert registry.dir == tmp_path / "workspaces" / "team" / "services"


CLUSTERS = st.sampled_from(["a", "b", "c"])


class CloudRegistrySequence(RuleBasedStateMachine):
    """Any sequence of publishes (heads moving), withdrawals and foreign objects under the prefix, on a
    cloud registry: it lists exactly the last document of every cluster still published."""

    cloud = "gcp"

    def __init__(self) -> None:
        super().__init__()
        self.model: dict[str, ClusterServices] = {}
        self.stops: list[Any] = []
        if self.cloud == "gcp":
            fake = FakeGcp().start()
            self.stops.append(fake.stop)
            env = GcpEnv(fake, Path("/nonexistent"))
            bucket = GcpNames("ws", env.project).bucket
            env.clients().storage.buckets().insert(project=env.project, body={"name": bucket}).execute()
            self.registry = registry_for(DiscoveryScope("ws", env.provider_config()))
            self.foreign = lambda key, data: fake.put_object(bucket, key, data)
        else:
            afake = FakeAzure().start()
            self.stops.append(afake.stop)
            aenv = AzureEnv(afake, Path("/nonexistent"))
            _, account_id = _account(aenv)
            self.registry = registry_for(DiscoveryScope("ws", aenv.provider_config()))
            self.registry.put(doc("x"))  # the container exists from here on
            self.registry.delete("x")
            self.foreign = lambda key, data: afake.put_blob(account_id, AZURE_CONTAINER, key, data)

    @rule(cluster=CLUSTERS, port=st.integers(1, 65535))
    def publish(self, cluster: str, port: int) -> None:
        self.registry.put(doc(cluster, port))
        self.model[cluster] = doc(cluster, port)

    @rule(cluster=CLUSTERS)
    def withdraw(self, cluster: str) -> None:
        self.registry.delete(cluster)
        self.model.pop(cluster, None)

    @rule(name=st.sampled_from(["x.json", "y.json.tmp", "z"]), data=st.binary(max_size=64))
    def foreign_object(self, name: str, data: bytes) -> None:
        self.foreign(f"{OBJECT_PREFIX}{name}", data)

    @invariant()
    def lists_the_model(self) -> None:
        assert {d.cluster: d for d in self.registry.list()} == self.model
        for cluster in ("a", "b", "c"):
            assert self.registry.get(cluster) == self.model.get(cluster)

    def teardown(self) -> None:
        for stop in self.stops:
            stop()


class AzureRegistrySequence(CloudRegistrySequence):
    cloud = "azure"


SEQUENCE = settings(max_examples=6, stateful_step_count=10, deadline=None)
TestGcsRegistrySequence = CloudRegistrySequence.TestCase
TestGcsRegistrySequence.settings = SEQUENCE
TestBlobRegistrySequence = AzureRegistrySequence.TestCase
TestBlobRegistrySequence.settings = SEQUENCE
