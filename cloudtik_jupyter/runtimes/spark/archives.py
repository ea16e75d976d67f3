"""Where the daemons' class-data-sharing archives live and which are missing (standard library only: the
setup step checks this on every node and `up`, and builds archives through cds.py only when one is missing)."""

from __future__ import annotations

import hashlib
import os
import pwd
from collections.abc import Sequence
from pathlib import Path

from .classes import DAEMON_JVM_FLAGS, ROLE_CLASSES
from .install import SparkInstall

CACHE_ENV = "CLOUDTIK_SPARK_CDS_DIR"  # where the archives go, instead of the user's cache


def cache_dir() -> Path:
    """A per-user machine cache, shared by every cluster and state dir on the machine.

    From the account's home (not $HOME, which virtual nodes point at their own directory), so the nodes of
    every virtual cluster, and every test's private state dir, find the archives made once.
    """
    if override := os.environ.get(CACHE_ENV):
        return Path(override).expanduser()
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return Path(xdg) / "cloudtik" / "spark-cds"
    return Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "cloudtik" / "spark-cds"


def archive_path(install: SparkInstall, role: str, directory: Path | None = None) -> Path:
    libjvm = install.java_home / "lib" / "server" / "libjvm.so"
    identity = [
        str(install.java_home.resolve()),
        install.java_version,
        str(libjvm.stat().st_mtime_ns) if libjvm.exists() else "",
        str(install.spark_home.resolve()),
        install.spark_version,
        str((install.spark_home / "jars").stat().st_mtime_ns),
        ROLE_CLASSES[role],
        *DAEMON_JVM_FLAGS,
    ]
    key = hashlib.sha256("\0".join(identity).encode()).hexdigest()[:16]
    return (directory or cache_dir()) / f"{role}-{key}.jsa"


def missing_archives(install: SparkInstall, roles: Sequence[str], directory: Path | None = None) -> list[str]:
    return [r for r in roles if not archive_path(install, r, directory).is_file()]
