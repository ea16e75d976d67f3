"""On-disk state of virtual nodes: the "cloud's" inventory, shared by every process using a state dir.

Layout under ``<state dir>/virtual/``::

    nodes/<node id>/node.json   the record (id, ip, port, pid, create_time, tags, kind, ...)
    nodes/<node id>/ssh_host_ed25519_key, authorized_keys, node.log
    hypervisor.sock / .token / .lock / .log

Any process (client, the head's controller, a test) reads records directly; only the hypervisor creates
and deletes them. Tag updates are read-modify-write under a lock on the node's directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ... import paths
from ...errors import ProviderError
from .process_tree import is_running

NODE_ID_PATTERN = re.compile(r"^vn-[0-9a-f]{10}$")
RECORD_FILE = "node.json"
HOST_KEY_FILE = "ssh_host_ed25519_key"
AUTHORIZED_KEYS_FILE = "authorized_keys"
NODE_LOG_FILE = "node.log"
# Unix socket paths are limited to ~104 bytes (macOS) / 108 (Linux); longer ones move to the temp dir.
_MAX_SOCKET_PATH = 100


def virtual_dir(home: Path | None = None) -> Path:
    return (home or paths.home()) / "virtual"


def nodes_dir(home: Path) -> Path:
    return virtual_dir(home) / "nodes"


def node_dir(home: Path, node_id: str) -> Path:
    if not NODE_ID_PATTERN.match(node_id):
        raise ProviderError(f"not a virtual node id: {node_id!r}")
    return nodes_dir(home) / node_id


def scratch_dir(node_id: str) -> Path:
    """The node's short private directory in the temp dir (records/node_env.py SCRATCH), gone with it."""
    if not NODE_ID_PATTERN.match(node_id):
        raise ProviderError(f"not a virtual node id: {node_id!r}")
    return Path(tempfile.gettempdir()) / f"cloudtik-{os.getuid()}-{node_id}"


def make_scratch_dir(node_id: str) -> Path:
    """Create it 0700, refusing a path someone else made first (the temp dir is shared)."""
    path = scratch_dir(node_id)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        info = path.lstat()
        if not path.is_dir() or path.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise ProviderError(f"{path} exists and is not this user's private directory") from None
    return path


def socket_path(home: Path) -> Path:
    path = virtual_dir(home) / "hypervisor.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"cloudtik-{os.getuid()}-{digest}.sock"


def token_path(home: Path) -> Path:
    return virtual_dir(home) / "hypervisor.token"


def lock_path(home: Path) -> Path:
    return virtual_dir(home) / "hypervisor.lock"


def hypervisor_log_path(home: Path) -> Path:
    return virtual_dir(home) / "hypervisor.log"


@dataclass(frozen=True)
class NodeRecord:
    """One virtual node as persisted in ``node.json``."""

    node_id: str
    cluster: str
    workspace: str
    kind: str  # head | worker: decides who may connect (public head, private workers)
    ip: str
    port: int
    pid: int
    create_time: float  # of the root process, as psutil reports it (clock-tick resolution)
    launched_at: float  # wall clock at creation, fine-grained: orders nodes made in the same tick
    host_key: str  # OpenSSH public host key
    ssh_user: str
    tags: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        data["id"] = data.pop("node_id")
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> NodeRecord:
        data = json.loads(text)
        return cls(
            node_id=str(data["id"]),
            cluster=str(data["cluster"]),
            workspace=str(data["workspace"]),
            kind=str(data["kind"]),
            ip=str(data["ip"]),
            port=int(data["port"]),
            pid=int(data["pid"]),
            create_time=float(data["create_time"]),
            launched_at=float(data.get("launched_at", data["create_time"])),
            host_key=str(data["host_key"]),
            ssh_user=str(data.get("ssh_user", "")),
            tags={str(k): str(v) for k, v in dict(data.get("tags", {})).items()},
        )

    def has_tags(self, tags: Mapping[str, str]) -> bool:
        return all(self.tags.get(k) == v for k, v in tags.items())


def read_record(home: Path, node_id: str) -> NodeRecord | None:
    """The node's record, or None when it does not exist (never created, terminated, or half-created)."""
    try:
        return NodeRecord.from_json((node_dir(home, node_id) / RECORD_FILE).read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise ProviderError(f"corrupt record for virtual node {node_id}: {exc}") from exc


def write_record(home: Path, record: NodeRecord) -> None:
    paths.write_private(node_dir(home, record.node_id) / RECORD_FILE, record.to_json())


def list_records(home: Path) -> list[NodeRecord]:
    """Every node with a record, alive or not, sorted by id."""
    try:
        names = sorted(os.listdir(nodes_dir(home)))
    except FileNotFoundError:
        return []
    records = []
    for name in names:
        if NODE_ID_PATTERN.match(name):
            with contextlib.suppress(ProviderError):  # a corrupt record is no node
                record = read_record(home, name)
                if record is not None:
                    records.append(record)
    return records


def is_alive(record: NodeRecord) -> bool:
    """The node's root process still runs: same pid AND same start time (a reused pid is another process)."""
    return is_running(record.pid, record.create_time)


def live_records(home: Path) -> list[NodeRecord]:
    return [r for r in list_records(home) if is_alive(r)]


@contextlib.contextmanager
def node_locked(home: Path, node_id: str) -> Iterator[Path]:
    """Hold the node's lock (a flock on its directory): tag updates and removal never interleave."""
    directory = node_dir(home, node_id)
    try:
        fd = os.open(directory, os.O_RDONLY)
    except FileNotFoundError:
        raise ProviderError(f"no such virtual node: {node_id}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield directory
    finally:
        os.close(fd)  # releases the lock


def update_tags(home: Path, node_id: str, tags: Mapping[str, str]) -> NodeRecord:
    """Merge `tags` into the node's record; concurrent writers (client, head's controller) lose nothing."""
    with node_locked(home, node_id):
        record = read_record(home, node_id)
        if record is None:
            raise ProviderError(f"no such virtual node: {node_id}")
        updated = replace(record, tags={**record.tags, **{str(k): str(v) for k, v in tags.items()}})
        write_record(home, updated)
        return updated
