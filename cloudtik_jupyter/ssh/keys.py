"""The cluster's SSH key pair: created once, private (0600 in a 0700 dir), never copied to nodes."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import asyncssh

from .. import paths
from ..errors import CloudtikError


def ensure_keypair(path: Path) -> str:
    """Create an ed25519 private key at `path` if missing; return its OpenSSH public key string.

    Safe when several processes race: the key is written to a private temp file and linked into place,
    so exactly one key wins and every caller returns that one.
    """
    if path.exists():
        return public_key(path)
    paths.ensure_private_dir(path.parent)
    key = asyncssh.generate_private_key("ssh-ed25519")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.export_private_key("openssh"))
    try:
        os.link(tmp, path)  # fails if another process created the key meanwhile: keep theirs
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return public_key(path)


def public_key(path: Path) -> str:
    """The OpenSSH public key (``ssh-ed25519 AAAA...``) of the private key at `path`."""
    return load_private_key(path).export_public_key("openssh").decode().strip()


def load_private_key(path: Path) -> asyncssh.SSHKey:
    try:
        return asyncssh.read_private_key(path)
    except FileNotFoundError:
        raise CloudtikError(f"SSH private key not found: {path}") from None
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise CloudtikError(f"cannot read SSH private key {path}: {exc}") from None
