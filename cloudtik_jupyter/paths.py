"""Where this machine keeps cluster state (keys, pinned host keys, virtual nodes)."""

from __future__ import annotations

import os
import re
from pathlib import Path

# Cluster and workspace names: they name directories here, tags and resources in clouds.
NAME_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
_NAME = re.compile(NAME_PATTERN)


def is_name(text: str) -> bool:
    """Whether `text` can be a cluster or workspace name (and so never a path outside the state dir)."""
    return bool(_NAME.match(text))


def _checked(name: str, what: str) -> str:
    if not is_name(name):
        from .errors import ConfigError

        raise ConfigError(
            "",
            f"{what} {name[:60]!r} is not a valid name (a lowercase letter, then lowercase letters, "
            "digits and '-'; at most 40 characters)",
        )
    return name


def home() -> Path:
    """The state dir: ``$CLOUDTIK_HOME`` or ``~/.cloudtik``."""
    env = os.environ.get("CLOUDTIK_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cloudtik"


def clusters_dir() -> Path:
    return home() / "clusters"


def cluster_dir(name: str) -> Path:
    return clusters_dir() / _checked(name, "cluster name")


def workspaces_dir() -> Path:
    return home() / "workspaces"


def workspace_dir(name: str) -> Path:
    return workspaces_dir() / _checked(name, "workspace name")


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by the owner only."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: str | bytes) -> None:
    """Write a secret file with mode 0600 from the start (never world-readable, even briefly)."""
    ensure_private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    fd = os.open(tmp, flags, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def node_state_dir() -> Path:
    """On a cluster node: the node's own state (cluster config, head key, redis, agent), under its $HOME.

    Distinct from `home()`, which on a virtual node still names the provider's state dir.
    """
    return Path.home() / ".cloudtik" / "node"
