"""Everything needed to act on one cluster from here: its config, provider, SSH runner and local record."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .. import paths
from ..config.schema import ClusterConfig
from ..errors import CloudtikError, ConfigError
from ..providers import node_provider
from ..providers import tags as T
from ..providers.base import ListedNode, NodeAddress, NodeProvider
from ..records.layout import CONFIG_FILE
from ..records.node_env import NodeIdentity

if TYPE_CHECKING:
    from asyncssh import SSHClientConnection

    from ..container.runner import HostRunner
    from ..ssh.node_runner import NodeRunner
    from ..ssh.runner import SshTarget
    from ..state.store import StateStore

KEY_FILE = "id_ed25519"
HOST_KEYS_FILE = "host_keys.json"
HEAD_FILE = "head.json"  # the head as the last listing saw it: views reach its store without listing


# A node as the launcher, status and controller see it: what one provider listing returned.
NodeRef = ListedNode


class ClusterContext:
    """Client-side (or head-side) handle; the provider and SSH runner are made once and reused."""

    def __init__(
        self,
        config: ClusterConfig,
        *,
        provider: NodeProvider | None = None,
        state_dir: Path | None = None,
        key_path: Path | None = None,
        extra_authorized_keys: tuple[str, ...] = (),
        on_node: NodeIdentity | None = None,
    ) -> None:
        self.config = config
        # The node this context acts from (the head's controller), else None (a user's machine): SSH then
        # leaves from the node's own address, and workers are reached directly, not through the head.
        self.on_node = on_node
        self.name = config.cluster_name
        self.dir = state_dir or paths.cluster_dir(self.name)
        self._provider = provider
        self._key_path = key_path
        # Also accepted by nodes this context launches: on the head, the client's key beside the head's own.
        self.extra_authorized_keys = extra_authorized_keys
        self._ssh: HostRunner | None = None
        self._runner: NodeRunner | None = None
        self._store: StateStore | None = None
        self._store_head: str | None = None
        self._store_link: SSHClientConnection | None = None  # the connection the store's forwards ride on
        self._store_closer: Callable[[], object] | None = None
        self._closers: list[Callable[[], object]] = []
        self._known_head: NodeRef | None = None

    # -- local record -------------------------------------------------------------------------

    @property
    def key_path(self) -> Path:
        if self._key_path is not None:
            return self._key_path
        if self.config.auth.ssh_private_key:
            return Path(self.config.auth.ssh_private_key).expanduser()
        return self.dir / KEY_FILE

    @property
    def config_file(self) -> Path:
        return self.dir / CONFIG_FILE

    def save_record(self) -> None:
        from ..config import dump_config

        paths.ensure_private_dir(self.dir)
        paths.write_private(self.dir / CONFIG_FILE, dump_config(self.config))

    def authorized_keys(self) -> str:
        """What nodes launched from here accept (authorized_keys lines)."""
        return "\n".join([self.public_key(), *self.extra_authorized_keys])

    def public_key(self) -> str:
        from ..ssh.keys import ensure_keypair, public_key

        if self._key_path is None and self.config.auth.ssh_private_key:
            if not self.key_path.exists():
                raise CloudtikError(f"auth.ssh_private_key: file not found: {self.key_path}")
            return public_key(self.key_path)
        return ensure_keypair(self.key_path)

    # -- channels -----------------------------------------------------------------------------

    @property
    def provider(self) -> NodeProvider:
        if self._provider is None:
            from ..container.shared_daemon import node_provider_for

            self._provider = node_provider_for(self.config, node_provider(self.config))
        return self._provider

    @property
    def ssh(self) -> HostRunner:
        """The SSH channel to the nodes themselves (initialization commands run here in every mode)."""
        if self._ssh is None:
            from ..container.runner import HostRunner
            from ..ssh.host_keys import HostKeyStore

            # On a node (the head's controller) connect from the node's own address, as a VM would.
            self._ssh = HostRunner(
                self.key_path,
                HostKeyStore(self.dir / HOST_KEYS_FILE),
                local_addr=self.on_node.ip if self.on_node else None,
            )
        return self._ssh

    @property
    def runner(self) -> NodeRunner:
        """Where the nodes' commands, file mounts and services run: the node, or its container."""
        if self._runner is None:
            from ..container.runner import node_runner

            self._runner = node_runner(self.config, self.ssh)
        return self._runner

    def on_close(self, closer: Callable[[], object]) -> None:
        self._closers.append(closer)

    async def store(self, head: NodeRef) -> StateStore:
        """The head's state store (opened once, through SSH forwards; reopened if the head changed or the
        connection under the forwards closed: a long-lived process such as the CLI session outlives both)."""
        from .live import open_store

        link = self._store_link
        if self._store is None or self._store_head != head.node_id or link is None or link.is_closed():
            await self._close_store()
            target = self.target(head, None)
            self._store_link = await self.ssh.connection(target)
            self._store, self._store_closer = await open_store(self, head)
            self._store_head = head.node_id
        return self._store

    async def _close_store(self) -> None:
        store, closer = self._store, self._store_closer
        self._store = self._store_closer = self._store_link = None
        if store is not None:
            with contextlib.suppress(Exception):
                await store.close()
        if closer is not None:
            closer()

    async def close(self) -> None:
        await self._close_store()
        for closer in self._closers:
            closer()
        self._closers.clear()
        self._runner = None  # holds no connections of its own
        if self._ssh is not None:
            await self._ssh.close()
            self._ssh = None

    # -- nodes --------------------------------------------------------------------------------

    def cluster_tags(self, **extra: str) -> dict[str, str]:
        return {T.CLUSTER: self.name, **extra}

    async def nodes(self, **tag_filter: str) -> list[NodeRef]:
        """Live nodes of this cluster (optionally filtered), ordered head first then by seq id."""
        return sorted(await self.nodes_unordered(**tag_filter), key=_head_first_then_seq)

    async def nodes_unordered(self, **tag_filter: str) -> list[NodeRef]:
        """`nodes` in the provider's order: for the controller, which orders only what it chooses from
        (10,000 sort keys fewer per tick)."""
        # One provider call whatever the cluster's size: no per-node follow-up for tags or addresses.
        refs = await asyncio.to_thread(self.provider.list_nodes, self.cluster_tags(**tag_filter))
        if not tag_filter or tag_filter == {T.NODE_KIND: T.KIND_HEAD}:  # a listing that would show the head
            self.remember_head(next((r for r in refs if r.kind == T.KIND_HEAD), None))
        return refs

    def known_head(self) -> NodeRef | None:
        """The head as the last listing (of this process, or of any before it) saw it; None if unknown."""
        if self._known_head is None:
            self._known_head = load_head(self.dir / HEAD_FILE)
        return self._known_head

    def remember_head(self, head: NodeRef | None) -> None:
        """Keep the head a listing found (in memory, and in the local record so the next process reaches
        its store without a listing); None forgets it."""
        unchanged = head == self._known_head
        self._known_head = head
        if not (self.dir / CONFIG_FILE).exists():
            return  # no local record (yet, or any more: `down`)
        if unchanged and head is not None and (self.dir / HEAD_FILE).exists():
            return
        if head is None:
            with contextlib.suppress(OSError):
                (self.dir / HEAD_FILE).unlink()
            return
        with contextlib.suppress(OSError):
            paths.write_private(self.dir / HEAD_FILE, dump_head(head))

    async def head(self) -> NodeRef | None:
        heads = await self.nodes(**{T.NODE_KIND: T.KIND_HEAD})
        return heads[0] if heads else None

    def target(self, node: NodeRef, head: NodeRef | None) -> SshTarget:
        """SSH target: the head by its public address, a worker through the head (as on a cloud)."""
        from ..ssh.runner import SshTarget

        endpoint = getattr(self.config.provider, "endpoint_url", None)
        if endpoint:  # the one way to SSH: no connection ever goes to what a local endpoint returns
            raise ConfigError(
                "provider.endpoint_url",
                f"is set ({endpoint}): the addresses that endpoint hands out are not machines of yours, so "
                f"cloudtik does not connect to them (nodes are launched, nothing runs on them; "
                f"`cloudtik down {self.name}` removes them; the virtual provider runs clusters here)",
            )
        user = self.config.auth.ssh_user
        addr = node.address
        if node.kind == T.KIND_HEAD or head is None:
            host = addr.external_ip or addr.internal_ip
            return SshTarget(node.node_id, host, addr.ssh_port, user, host_key=addr.host_key)
        jump = self.target(head, None)
        on_head = self.on_node is not None and self.on_node.node_id == head.node_id
        return SshTarget(
            node.node_id,
            addr.internal_ip,
            addr.ssh_port,
            user,
            jump=None if on_head else jump,
            host_key=addr.host_key,
        )


def record_exists(name: str) -> bool:
    return (paths.cluster_dir(name) / CONFIG_FILE).exists()


def load_record(name: str) -> tuple[ClusterConfig, str | None]:
    """The recorded config of cluster `name`, and why it no longer loads if it doesn't.

    A record another version wrote (or someone edited) may fail today's validation. The cluster must
    still be reachable to take it down, so such a record is read for what finding its nodes needs —
    name, workspace, provider, auth, head type — and the problem is returned beside it (`up` refuses to
    run from it). Only a cloud provider section that itself fails is not guessed at: that raises.
    """
    from ..config import load_config
    from ..config.yaml_io import parse_yaml, read_config_text

    record = paths.cluster_dir(name) / CONFIG_FILE
    try:
        return load_config(record, check_files=False), None
    except ConfigError as exc:
        problem = str(exc)
    data = parse_yaml(read_config_text(record), str(record))
    data = data if isinstance(data, dict) else {}
    head = data.get("head_node_type")
    head = head if isinstance(head, str) and len(head) <= 64 else "head"
    base = {"cluster_name": name, "head_node_type": head, "available_node_types": {head: {}}}
    attempts = [
        {k: data[k] for k in ("workspace_name", "provider", "auth") if k in data},
        {k: data[k] for k in ("workspace_name", "provider") if k in data},
    ]
    provider = data.get("provider")
    if not isinstance(provider, dict) or provider.get("type", "virtual") == "virtual":
        attempts.append({})  # a virtual record: its nodes are found by cluster name in the state dir
    for extra in attempts:
        try:
            return load_config({**base, **extra}, check_files=False), problem
        except ConfigError:
            continue
    raise ConfigError(
        "", f"the record of cluster {name!r} no longer loads ({problem}); fix or remove {record}"
    )


def _head_first_then_seq(node: NodeRef) -> tuple[bool, int, str]:
    """The order of `nodes()`; reads the tags once (10,000 of these per controller tick)."""
    tags = node.tags
    seq = tags.get(T.NODE_SEQ, "")
    return tags.get(T.NODE_KIND) != T.KIND_HEAD, int(seq) if seq.isdecimal() else 0, node.node_id


def dump_head(head: NodeRef) -> str:
    a = head.address
    return json.dumps(
        {
            "node_id": head.node_id,
            "tags": dict(head.tags),
            "address": [a.internal_ip, a.external_ip, a.ssh_port, a.host_key],
        }
    )


def load_head(path: Path) -> NodeRef | None:
    """The remembered head, or None (no file, or one this version cannot read: the next listing redoes it)."""
    try:
        raw = json.loads(path.read_text())
        internal, external, port, host_key = raw["address"]
        if not isinstance(raw["tags"], dict):
            return None
        tags = {str(k): str(v) for k, v in raw["tags"].items()}
        address = NodeAddress(
            str(internal), external and str(external), int(port), host_key and str(host_key)
        )
        head = ListedNode(str(raw["node_id"]), tags, address)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return head if head.kind == T.KIND_HEAD else None
