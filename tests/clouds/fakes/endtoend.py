"""`cloudtik workspace ...` and `cloudtik up/down` against a fake cloud, as a user runs them.

`up` stops short of SSH (no SSH server lives at the addresses a fake hands out): the launcher's own
`launch_node` makes the head and workers through the provider a `ClusterContext` is given, and
`cloudtik down` (a real CLI process) takes them away.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from cloudtik_jupyter.cluster import launcher
from cloudtik_jupyter.cluster.context import ClusterContext, NodeRef
from cloudtik_jupyter.config.schema import ClusterConfig
from cloudtik_jupyter.providers import node_provider
from cloudtik_jupyter.providers import tags as T


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`cloudtik ...` in a fresh interpreter (env: the fake's endpoint is in the config, the state dir)."""
    return subprocess.run(
        [sys.executable, "-m", "cloudtik_jupyter.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
    )


def write_yaml(path: Path, data: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def cluster_config(provider: dict[str, Any], head: dict[str, Any], worker: dict[str, Any]) -> ClusterConfig:
    return ClusterConfig.model_validate(
        {
            "cluster_name": "etl",
            "workspace_name": "analytics",
            "provider": provider,
            "auth": {"ssh_user": "spark"},
            "head_node_type": "head",
            "available_node_types": {
                "head": {"node_config": head},
                "worker": {"node_config": worker, "min_workers": 2, "max_workers": 4},
            },
        }
    )


async def launch_cluster(config: ClusterConfig) -> tuple[list[NodeRef], str]:
    """What `up` does up to the SSH step: the head (seq 1) and the minimum workers, through the launcher.
    Returns the nodes and the cluster's public key."""
    ctx = ClusterContext(config, provider=node_provider(config))
    ctx.save_record()
    key = ctx.public_key()
    await launcher.launch_node(ctx, "head", T.KIND_HEAD, launcher.HEAD_SEQ)
    for seq in (2, 3):
        await launcher.launch_node(ctx, "worker", T.KIND_WORKER, seq)
    nodes = await ctx.nodes()
    await ctx.close()
    return nodes, key


def assert_launched(nodes: list[NodeRef], public_key: str) -> None:
    head, *workers = nodes
    assert head.kind == T.KIND_HEAD and head.seq == 1 and head.tags[T.NODE_NAME] == "etl-head-1"
    assert head.address.external_ip and head.address.internal_ip  # never connected to: the fake's
    assert [w.kind for w in workers] == [T.KIND_WORKER] * 2 and [w.seq for w in workers] == [2, 3]
    assert all(w.address.external_ip is None and w.address.internal_ip for w in workers)
    assert all(n.status == "pending" and n.tags[T.CLUSTER] == "etl" for n in nodes)
    assert public_key.startswith("ssh-ed25519 ")
