"""Fixtures for integration tests on real virtual nodes (real processes, real asyncssh).

- `cloudtik_home`: a private state dir (``$CLOUDTIK_HOME``); at teardown every virtual node in it is
  terminated, its hypervisor shut down, and the test fails if any process using it is left.
- `cluster_key`: a fresh ed25519 key pair (private key file 0600).
- `make_provider(cluster, address_block=None)`: a `VirtualNodeProvider` on that state dir.
- `virtual_cluster`: a head and two workers of cluster "test", created through the provider.

Helpers (`ssh_connect`, `new_key`, `node_spec`, ...) live in `tests.virtual_nodes`.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cloudtik_jupyter import paths
from cloudtik_jupyter.config.schema import VirtualProviderConfig
from cloudtik_jupyter.providers.virtual.node_provider import VirtualNodeProvider
from tests.virtual_nodes import (
    ClusterKey,
    VirtualCluster,
    create_cluster,
    new_key,
    teardown_virtual,
)


@pytest.fixture
def cloudtik_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    paths.ensure_private_dir(home)
    monkeypatch.setenv("CLOUDTIK_HOME", str(home))
    # Tests stop the hypervisor themselves; it must not vanish mid-test on its idle timer.
    monkeypatch.setenv("CLOUDTIK_VIRTUAL_IDLE_EXIT", "600")
    try:
        yield home
    finally:
        teardown_virtual(home)


@pytest.fixture
def cluster_key(tmp_path: Path) -> ClusterKey:
    return new_key(tmp_path / "id_ed25519")


@pytest.fixture
def make_provider(cloudtik_home: Path) -> Callable[..., VirtualNodeProvider]:
    def make(cluster: str = "test", address_block: str | None = None) -> VirtualNodeProvider:
        config = VirtualProviderConfig(address_block=address_block)
        return VirtualNodeProvider(config, cluster, home=cloudtik_home)

    return make


@pytest.fixture
def virtual_cluster(
    make_provider: Callable[..., VirtualNodeProvider], cluster_key: ClusterKey
) -> VirtualCluster:
    return create_cluster(make_provider("test"), cluster_key, getpass.getuser(), workers=2)
