"""Helpers for tests (and benchmarks) that run real virtual nodes: tearing a state dir's nodes down and
checking nothing is left, keys, specs and SSH connections to a node (tests/integration/conftest.py)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import psutil

from cloudtik_jupyter import paths
from cloudtik_jupyter.errors import Timeout
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.base import NodeAddress, NodeSpec
from cloudtik_jupyter.providers.virtual import state
from cloudtik_jupyter.providers.virtual.client import HypervisorClient
from cloudtik_jupyter.providers.virtual.node_provider import VirtualNodeProvider
from cloudtik_jupyter.waiting import wait_for_sync

LEFTOVER_TIMEOUT = 10.0


def processes_using_home(home: Path) -> list[psutil.Process]:
    """Live processes (not zombies) whose environment points at `home`: hypervisor, nodes, commands."""
    found = []
    for proc in psutil.process_iter(["environ", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        environ = proc.info["environ"] or {}
        if environ.get("CLOUDTIK_HOME") == str(home):
            found.append(proc)
    return found


def teardown_virtual(home: Path) -> None:
    """Stop the CLI sessions of `home`, terminate every virtual node under it and stop its hypervisor;
    raise AssertionError (after killing them by pid) if any process using `home` is still running."""
    from cloudtik_jupyter.session.admin import stop_all

    stop_all(str(home))  # by pid; they hold connections to the nodes
    client = HypervisorClient(home)
    try:
        names = sorted(os.listdir(state.nodes_dir(home)))
    except FileNotFoundError:
        names = []
    ids = [n for n in names if state.NODE_ID_PATTERN.match(n)]
    if ids:
        client.terminate(ids)
    client.shutdown()
    try:
        wait_for_sync(
            lambda: not processes_using_home(home),
            timeout=LEFTOVER_TIMEOUT,
            what=f"processes using {home} to exit",
        )
    except Timeout:
        leftovers = processes_using_home(home)
        described = [f"{p.pid} {' '.join(p.cmdline())}" for p in leftovers]
        for proc in leftovers:
            proc.kill()
        raise AssertionError(f"processes left running: {described}") from None


@dataclass(frozen=True)
class ClusterKey:
    private: asyncssh.SSHKey
    public: str  # OpenSSH public key line
    path: Path  # the private key file (0600)


def new_key(path: Path) -> ClusterKey:
    key = asyncssh.generate_private_key("ssh-ed25519")
    paths.write_private(path, key.export_private_key())
    return ClusterKey(key, key.export_public_key().decode().strip(), path)


def node_spec(key: ClusterKey, user: str, node_type: str = "default") -> NodeSpec:
    return NodeSpec(node_type=node_type, ssh_user=user, ssh_public_key=key.public)


def launch_tags(kind: str, seq: int, node_type: str = "default") -> dict[str, str]:
    return {T.NODE_KIND: kind, T.NODE_TYPE: node_type, T.NODE_SEQ: str(seq)}


@dataclass(frozen=True)
class VirtualCluster:
    """A head and workers created straight through the provider (no setup ran on them)."""

    provider: VirtualNodeProvider
    head: str
    workers: list[str]
    key: ClusterKey
    user: str

    def address(self, node_id: str) -> NodeAddress:
        return self.provider.address(node_id)


def create_cluster(
    provider: VirtualNodeProvider, key: ClusterKey, user: str, workers: int = 2
) -> VirtualCluster:
    spec = node_spec(key, user)
    head = provider.create_nodes(spec, launch_tags(T.KIND_HEAD, 1), 1)[0]
    worker_ids = [
        provider.create_nodes(spec, launch_tags(T.KIND_WORKER, 2 + i), 1)[0] for i in range(workers)
    ]
    return VirtualCluster(provider, head, worker_ids, key, user)


@asynccontextmanager
async def ssh_connect(
    address: NodeAddress,
    key: asyncssh.SSHKey,
    user: str,
    *,
    tunnel: asyncssh.SSHClientConnection | None = None,
    login_timeout: float = 30.0,
) -> AsyncIterator[asyncssh.SSHClientConnection]:
    """Connect to a node (the head by its external address; a worker by its internal one through
    `tunnel`), trusting only the host key the provider reported."""
    if not address.host_key:
        raise AssertionError("the provider must vouch for the node's host key")
    host = address.internal_ip if tunnel is not None else (address.external_ip or address.internal_ip)
    async with asyncssh.connect(
        host,
        address.ssh_port,
        tunnel=tunnel or (),
        username=user,
        client_keys=[key],
        known_hosts=([asyncssh.import_public_key(address.host_key)], [], []),
        agent_path=None,
        login_timeout=login_timeout,
    ) as conn:
        yield conn
