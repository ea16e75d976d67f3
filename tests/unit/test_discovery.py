"""Discovery records and the file registry: hostile documents, and random sequences of publish/withdraw."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from cloudtik_jupyter.config.schema import VirtualProviderConfig
from cloudtik_jupyter.discovery import ClusterServices, DiscoveryScope, PublishedService, lookup, registry_for
from cloudtik_jupyter.discovery.registry import FileRegistry
from cloudtik_jupyter.errors import CloudtikError


def service(kind: str = "mlflow-tracking", port: int = 5000, address: str = "127.57.0.1") -> PublishedService:
    return PublishedService(name=kind, kind=kind, address=address, port=port, protocol="http")


def doc(cluster: str, *services: PublishedService) -> ClusterServices:
    return ClusterServices(workspace="default", cluster=cluster, published_at=1.0, services=list(services))


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"not json", "not a service document"),
        (b"[]", "not a service document"),
        (json.dumps({"format": 2, "workspace": "w", "cluster": "c", "published_at": 1}).encode(), "format"),
        (b'{"format": 1, "workspace": "w", "cluster": "../etc", "published_at": 1}', "not a service document"),
        (
            json.dumps(
                {"format": 1, "workspace": "w", "cluster": "c", "published_at": 1, "services": [
                    {"name": "x", "kind": "x", "address": "evil.example.com", "port": 1, "protocol": "http"}]}
            ).encode(),
            "not a service document",
        ),
        (
            json.dumps(
                {"format": 1, "workspace": "w", "cluster": "c", "published_at": 1, "services": [
                    {"name": "x", "kind": "x", "address": "10.0.0.1", "port": 1, "protocol": "http://a@b"}]}
            ).encode(),
            "not a service document",
        ),
        (b" " * (64 * 1024 + 1), "over 65536 bytes"),
    ],
)
def test_hostile_documents_are_refused(payload: bytes, why: str) -> None:
    with pytest.raises(CloudtikError, match=why):
        ClusterServices.from_json(payload, "somewhere")


def test_file_registry_is_private_and_skips_bad_documents(tmp_path: Path) -> None:
    registry = FileRegistry(tmp_path / "services")
    registry.put(doc("tracking", service()))
    path = tmp_path / "services" / "tracking.json"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    (tmp_path / "services" / "junk.json").write_text("{")
    assert [d.cluster for d in registry.list()] == ["tracking"]
    with pytest.raises(Exception, match="not a cluster name"):
        registry.get("../tracking")


def test_lookup_names_the_key_when_nothing_or_the_wrong_kind_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDTIK_HOME", str(tmp_path))
    scope = DiscoveryScope("default", VirtualProviderConfig())
    with pytest.raises(CloudtikError, match=r"^k: cluster 'lab' publishes no services in workspace 'default'"):
        lookup(scope, "lab", "mlflow-tracking", where="k")
    registry_for(scope).put(doc("lab", service("dask-scheduler", 8786)))
    with pytest.raises(CloudtikError, match=r"publishes no mlflow-tracking \(it has: dask-scheduler\)"):
        lookup(scope, "lab", "mlflow-tracking", where="k")
    registry_for(scope).put(doc("lab", service("dask-scheduler", 8786), service()))
    assert lookup(scope, "lab", "mlflow-tracking", where="k").url == "http://127.57.0.1:5000"
    assert (tmp_path / "workspaces" / "default" / "services" / "lab.json").is_file()


CLUSTERS = st.sampled_from(["a", "b", "c"])


class RegistrySequence(RuleBasedStateMachine):
    """Any sequence of publishes (heads moving), withdrawals and stray files: the registry lists exactly the
    last document of every cluster still published, and lookups agree with it."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.dir = Path(tempfile.mkdtemp(prefix="registry-"))
        self.registry = FileRegistry(self.dir)
        self.model: dict[str, ClusterServices] = {}

    @rule(cluster=CLUSTERS, octet=st.integers(1, 254), port=st.integers(1, 65535))
    def publish(self, cluster: str, octet: int, port: int) -> None:
        d = doc(cluster, service(port=port, address=f"127.57.0.{octet}"))
        self.registry.put(d)
        self.model[cluster] = d

    @rule(cluster=CLUSTERS)
    def withdraw(self, cluster: str) -> None:
        self.registry.delete(cluster)
        self.model.pop(cluster, None)

    @rule(name=st.sampled_from(["x.json", "y.json.tmp", "z.txt"]), data=st.binary(max_size=64))
    def stray_file(self, name: str, data: bytes) -> None:
        (self.dir / name).write_bytes(data)
        os.chmod(self.dir / name, 0o600)

    @invariant()
    def lists_the_model(self) -> None:
        assert {d.cluster: d for d in self.registry.list()} == self.model
        for cluster, d in self.model.items():
            assert self.registry.get(cluster) == d

    def teardown(self) -> None:
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


TestRegistrySequence = RegistrySequence.TestCase
TestRegistrySequence.settings = settings(max_examples=40, stateful_step_count=20, deadline=None)
