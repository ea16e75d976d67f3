"""Host keys pinned per node id: a node that presents another key than the pinned one is never trusted.

First contact: a key the provider vouches for (cloud console output, virtual node record) is required and
pinned; without one the first key seen is pinned (trust on first use). The store is one JSON file (0600),
updated under an exclusive lock so the client and the head's controller can share it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncssh

from .. import paths
from ..errors import CloudtikError, HostKeyChanged

SOURCE_TOFU = "first-use"
SOURCE_PROVIDER = "provider"


@dataclass(frozen=True)
class PinnedHostKey:
    host_key: str  # OpenSSH public key line
    address: str  # where it was first seen, for messages
    source: str  # SOURCE_TOFU or SOURCE_PROVIDER

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.host_key)


def fingerprint(openssh_key: str) -> str:
    """``SHA256:...`` fingerprint of an OpenSSH public key line."""
    return parse_public_key(openssh_key).get_fingerprint("sha256")


def parse_public_key(openssh_key: str) -> asyncssh.SSHKey:
    try:
        return asyncssh.import_public_key(openssh_key)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise CloudtikError(f"invalid SSH host key {openssh_key[:40]!r}: {exc}") from None


def openssh_line(key: asyncssh.SSHKey) -> str:
    """``<alg> <base64>`` without a comment: the form pinned and compared."""
    alg, blob = key.export_public_key("openssh").decode().split()[:2]
    return f"{alg} {blob}"


class HostKeyStore:
    """Pinned host keys of one cluster, keyed by node id."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self, node_id: str) -> PinnedHostKey | None:
        entry = self._read().get(node_id)
        return PinnedHostKey(**entry) if entry else None

    def pin(self, node_id: str, host_key: str, address: str, source: str = SOURCE_TOFU) -> None:
        """Pin `host_key` for `node_id`; pinning a different key over an existing pin is refused."""
        line = openssh_line(parse_public_key(host_key))
        with self._locked():
            nodes = self._read()
            current = nodes.get(node_id)
            if current and current["host_key"] != line:
                raise host_key_changed(node_id, address, PinnedHostKey(**current), line, store_path=self.path)
            nodes[node_id] = asdict(PinnedHostKey(line, address, source))
            self._write(nodes)

    def forget(self, node_id: str) -> bool:
        """Drop the pin (the node was replaced on purpose). Returns whether there was one."""
        with self._locked():
            nodes = self._read()
            existed = nodes.pop(node_id, None) is not None
            if existed:
                self._write(nodes)
            return existed

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise CloudtikError(f"cannot read pinned host keys {self.path}: {exc}") from None
        nodes = data.get("nodes", {}) if isinstance(data, dict) else {}
        return {k: v for k, v in nodes.items() if isinstance(v, dict) and "host_key" in v}

    def _write(self, nodes: dict[str, dict[str, str]]) -> None:
        paths.write_private(self.path, json.dumps({"version": 1, "nodes": nodes}, indent=1, sort_keys=True))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        paths.ensure_private_dir(self.path.parent)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def host_key_changed(
    node_id: str,
    address: str,
    expected: PinnedHostKey,
    presented: str,
    *,
    first_contact: bool = False,
    store_path: Path | None = None,
) -> HostKeyChanged:
    """The error for a presented key that is not the expected one, saying what to do about it."""
    if first_contact:
        return HostKeyChanged(
            f"node {node_id} at {address} presented host key {fingerprint(presented)}, but the provider "
            f"reports {expected.fingerprint} for it. Not connecting: something else may be answering at "
            "this address. Check the node in the cloud console, or terminate and recreate it."
        )
    where = f" in {store_path}" if store_path else ""
    return HostKeyChanged(
        f"host key of node {node_id} at {address} has CHANGED: pinned {expected.fingerprint}, "
        f"presented {fingerprint(presented)}. Someone may be intercepting the connection, or the node was "
        f"rebuilt. Not connecting. If you know the node was replaced, forget its pinned key{where} "
        f"(HostKeyStore.forget({node_id!r})) and connect again."
    )
