"""Fixtures for container-mode tests: a private Docker daemon and a registry-free skeleton image.

- `dockerd` (session): dockerd with its data, exec root and socket in a temp dir (no bridge, no iptables);
  at teardown it is stopped by PID, nothing of it may be left running, its mounts and dirs are removed.
  Tests skip, saying why, only where no daemon can be started.
- `skeleton_image` (session): the skeleton image (container/skeleton.py) imported into that daemon.
- `docker_home`: `cloudtik_home` (tests/integration/conftest.py) with DOCKER_HOST pointing at the daemon,
  so the hypervisor and every node it starts talk to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudtik_jupyter.container.skeleton import build_skeleton_image
from tests.container.dockerd import DockerUnavailable, PrivateDockerd, start_private_dockerd
from tests.integration.conftest import cloudtik_home  # noqa: F401 - a fixture used here

SKELETON_TAG = "cloudtik-skeleton:test"


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateDockerd]:
    root = tmp_path_factory.mktemp("dockerd")
    try:
        daemon = start_private_dockerd(root)
    except DockerUnavailable as exc:
        pytest.skip(f"no Docker daemon can be started here: {exc}")
    try:
        yield daemon
        left = daemon.containers()
        assert left == [], f"containers left in the daemon: {left}"
    finally:
        leaked = daemon.stop()
        daemon.remove()
        assert not leaked, f"daemon processes had to be killed: {leaked}"
        assert not daemon.mounts(), f"mounts left under {root}: {daemon.mounts()}"


@pytest.fixture(scope="session")
def skeleton_image(dockerd: PrivateDockerd) -> str:
    build_skeleton_image(SKELETON_TAG, env=dockerd.env())
    return SKELETON_TAG


@pytest.fixture
def docker_home(
    dockerd: PrivateDockerd,
    cloudtik_home: Path,  # noqa: F811 - the imported fixture
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    monkeypatch.setenv("DOCKER_HOST", dockerd.host)
    return cloudtik_home
