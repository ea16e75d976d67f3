"""The launch hash: a stable digest of what setup installs on a node, so a changed config re-runs setup."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from ..records.node import KIND_HEAD, KIND_WORKER
from .schema import ClusterConfig

# Cloud tag/label values are short (GCP labels: 63 chars); 128 bits is plenty to detect a change.
HASH_CHARS = 32
_CHUNK = 1 << 20


def _file_digest(path: Path, digest: hashlib._Hash) -> None:
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)


def content_digest(path: Path) -> str:
    """Digest of a file or a directory tree: names, contents and the executable bit; not mtimes or the
    local path itself, so the same files elsewhere (another checkout) hash the same."""
    digest = hashlib.sha256()
    if not path.exists():
        return "missing"
    if path.is_file():
        digest.update(b"file\0" + (b"x" if os.stat(path).st_mode & 0o111 else b"-"))
        _file_digest(path, digest)
        return digest.hexdigest()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        rel_root = Path(root).relative_to(path)
        for name in dirs:
            entry = Path(root) / name
            if entry.is_symlink():  # not descended by os.walk: its target names what it means
                digest.update(f"link\0{rel_root / name}\0{os.readlink(entry)}\0".encode())
        for name in sorted(files):
            entry = Path(root) / name
            try:
                mode = os.stat(entry).st_mode
            except FileNotFoundError:  # a dangling symlink
                digest.update(f"dangling\0{rel_root / name}\0".encode())
                continue
            if not stat.S_ISREG(mode):
                continue  # sockets, fifos: nothing an upload copies
            executable = "x" if mode & 0o111 else "-"
            digest.update(f"file\0{rel_root / name}\0{executable}\0".encode())
            _file_digest(entry, digest)
    return digest.hexdigest()


def config_hash(config: ClusterConfig, node_kind: str) -> str:
    """Stable hash of what setup applies to a node of `node_kind` (``head`` or ``worker``): file mount
    contents, the commands that run on that kind (as they will run: shared then kind-specific) and the
    runtime section. Anything else (counts, idle timeout) can change without re-running setup."""
    if node_kind not in (KIND_HEAD, KIND_WORKER):
        raise ValueError(f"node_kind must be {KIND_HEAD!r} or {KIND_WORKER!r}, got {node_kind!r}")
    head = node_kind == KIND_HEAD
    payload = {
        "file_mounts": {remote: content_digest(Path(local)) for remote, local in config.file_mounts.items()},
        "initialization": config.initialization_commands,
        "setup": [
            *config.setup_commands,
            *(config.head_setup_commands if head else config.worker_setup_commands),
        ],
        "start": [
            *config.start_commands,
            *(config.head_start_commands if head else config.worker_start_commands),
        ],
        "runtime": config.runtime.model_dump(mode="json"),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]
