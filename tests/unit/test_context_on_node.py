"""Where a ClusterContext acts from is given to it (`on_node`), never read from the environment on the side:
from a user's machine a worker is reached through the head; from the head itself, directly, from its own
address."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudtik_jupyter.cluster.context import ClusterContext
from cloudtik_jupyter.config import load_config
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.base import ListedNode, NodeAddress
from cloudtik_jupyter.records.node_env import NodeIdentity, here

HEAD = ListedNode("h-1", {T.NODE_KIND: T.KIND_HEAD, T.NODE_SEQ: "1"}, NodeAddress("10.0.0.1", "203.0.113.9"))
WORKER = ListedNode("w-2", {T.NODE_KIND: T.KIND_WORKER, T.NODE_SEQ: "2"}, NodeAddress("10.0.0.2"))
ON_HEAD = NodeIdentity("c", "h-1", T.KIND_HEAD, "head", "10.0.0.1", "10.0.0.1", 1)


def context(tmp_path: Path, on_node: NodeIdentity | None) -> ClusterContext:
    config = load_config(
        {"cluster_name": "c", "head_node_type": "head", "available_node_types": {"head": {}, "w": {}}}
    )
    return ClusterContext(config, state_dir=tmp_path, on_node=on_node)


def test_from_a_users_machine_workers_are_reached_through_the_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in ON_HEAD.to_env().items():  # a stray environment changes nothing
        monkeypatch.setenv(key, value)
    ctx = context(tmp_path, None)
    target = ctx.target(WORKER, HEAD)
    assert target.host == "10.0.0.2" and target.jump is not None and target.jump.host == "203.0.113.9"
    assert ctx.target(HEAD, None).host == "203.0.113.9"
    assert ctx.ssh.local_addr is None


def test_on_the_head_workers_are_reached_directly_from_its_address(tmp_path: Path) -> None:
    ctx = context(tmp_path, ON_HEAD)
    target = ctx.target(WORKER, HEAD)
    assert target.host == "10.0.0.2" and target.jump is None
    assert ctx.ssh.local_addr == "10.0.0.1"


def test_here_reads_the_node_environment_once_and_whole() -> None:
    assert here({}) is None
    assert here({"CLOUDTIK_NODE_ID": "h-1"}) is None  # a partial environment is not a node
    assert here(ON_HEAD.to_env()) == ON_HEAD
