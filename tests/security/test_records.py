"""A cluster record that no longer loads (another version's bounds, a hand edit) can still be listed,
looked at and taken down; `up` from it refuses, naming why. No node is needed for any of this."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudtik_jupyter import paths
from cloudtik_jupyter.api import Cluster
from cloudtik_jupyter.errors import ConfigError
from tests.virtual_nodes import teardown_virtual


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    state = tmp_path / "state"
    monkeypatch.setenv("CLOUDTIK_HOME", str(state))
    yield state
    teardown_virtual(state)  # and nothing may be left running


def record(name: str, text: str) -> Path:
    path = paths.cluster_dir(name) / "cluster.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


OLD = (
    "cluster_name: old\nprovider: {type: virtual}\nhead_node_type: head\n"
    "available_node_types: {head: {}, worker: {max_workers: 1000000000000}}\n"
    "head: {heartbeat_interval: 0.000001}\nauth: {ssh_user: 'not a user'}\n"
)


def test_an_unloadable_record_is_listed_and_taken_down(home: Path) -> None:
    record("old", OLD)
    assert [c.name for c in Cluster.list()] == ["old"]
    with pytest.raises(ConfigError, match="the record of cluster 'old' no longer loads"):
        Cluster("old").up()
    assert Cluster("old").status().nodes == []
    env = {**os.environ, "CLOUDTIK_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "cloudtik_jupyter.cli", "down", "old", "--yes"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert not paths.cluster_dir("old").exists()


def test_a_cloud_record_whose_provider_no_longer_loads_is_not_guessed(home: Path) -> None:
    path = record("cloudy", "cluster_name: cloudy\nprovider: {type: aws, region: 'bad region!'}\n")
    with pytest.raises(ConfigError, match=f"fix or remove {path}"):
        Cluster("cloudy")
    assert path.exists()  # its nodes may be somewhere: nothing is forgotten silently
