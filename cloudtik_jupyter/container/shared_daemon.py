"""Virtual nodes in container mode: their containers share this machine's Docker daemon.

On a cloud, terminating a VM ends its containers with it. A virtual node is a process tree whose
directory the hypervisor deletes right after killing the tree, while its container (a child of the
daemon, not of the tree) would outlive it by the moment its keeper takes to close it, writing into that
directory meanwhile. So terminating a virtual node removes its container first, through the same daemon.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping, Sequence

from ..config.schema import ClusterConfig
from ..providers.base import ListedNode, NodeAddress, NodeId, NodeProvider, NodeSpec
from .spec import container_name

log = logging.getLogger(__name__)
REMOVE_TIMEOUT = 60.0


def remove_containers(names: Sequence[str]) -> None:
    """``docker rm -f`` (missing ones are skipped); a daemon that cannot be reached leaves the keepers to it."""
    if not names:
        return
    try:
        done = subprocess.run(
            ["docker", "rm", "-f", *names], capture_output=True, text=True, timeout=REMOVE_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("cannot remove containers %s: %s", ", ".join(names), exc)
        return
    for line in done.stderr.splitlines():
        if "No such container" not in line:
            log.warning("docker rm: %s", line)


class ContainersEndWithNodes:
    """A virtual NodeProvider whose `terminate_nodes` removes the nodes' containers first."""

    def __init__(self, inner: NodeProvider, cluster: str) -> None:
        self.inner = inner
        self.cluster_name = inner.cluster_name
        self._cluster = cluster

    def list_nodes(self, tags: Mapping[str, str]) -> list[ListedNode]:
        return self.inner.list_nodes(tags)

    def non_terminated_nodes(self, tags: Mapping[str, str]) -> list[NodeId]:
        return self.inner.non_terminated_nodes(tags)

    def create_nodes(self, spec: NodeSpec, tags: Mapping[str, str], count: int) -> list[NodeId]:
        return self.inner.create_nodes(spec, tags, count)

    def terminate_nodes(self, ids: Sequence[NodeId]) -> None:
        remove_containers([container_name(self._cluster, node_id) for node_id in ids])
        self.inner.terminate_nodes(ids)

    def node_tags(self, node_id: NodeId) -> dict[str, str]:
        return self.inner.node_tags(node_id)

    def set_node_tags(self, node_id: NodeId, tags: Mapping[str, str]) -> None:
        self.inner.set_node_tags(node_id, tags)

    def address(self, node_id: NodeId) -> NodeAddress:
        return self.inner.address(node_id)


def node_provider_for(config: ClusterConfig, provider: NodeProvider) -> NodeProvider:
    """`provider`, wrapped when its nodes' containers share this machine's daemon."""
    if config.docker.enabled and config.provider.type == "virtual":
        return ContainersEndWithNodes(provider, config.cluster_name)
    return provider
