"""Where a workspace's published services live: a directory on `virtual`, the workspace's storage on a
cloud (clouds.py)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .. import paths
from ..errors import CloudtikError
from .records import ClusterServices, PublishedService, object_key

if TYPE_CHECKING:
    from ..config.schema import ClusterConfig, ProviderConfig

SERVICES_DIR = "services"


class Registry(Protocol):
    """One document per cluster; every call is safe to retry."""

    def put(self, doc: ClusterServices) -> None: ...
    def get(self, cluster: str) -> ClusterServices | None: ...
    def delete(self, cluster: str) -> None: ...  # idempotent
    def list(self) -> list[ClusterServices]: ...  # unreadable documents are skipped


@dataclass(frozen=True)
class DiscoveryScope:
    """Which workspace's registry a cluster uses: its workspace name and its provider's config."""

    workspace: str
    provider: ProviderConfig

    @classmethod
    def of(cls, config: ClusterConfig) -> DiscoveryScope:
        return cls(config.workspace_name, config.provider)


class FileRegistry:
    """``<dir>/<cluster>.json``, written atomically (0600, like the rest of the state dir)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def _file(self, cluster: str) -> Path:
        return self.dir / object_key("", cluster)

    def put(self, doc: ClusterServices) -> None:
        paths.write_private(self._file(doc.cluster), doc.to_json())

    def get(self, cluster: str) -> ClusterServices | None:
        path = self._file(cluster)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return ClusterServices.from_json(data, str(path))

    def delete(self, cluster: str) -> None:
        self._file(cluster).unlink(missing_ok=True)

    def list(self) -> list[ClusterServices]:
        found = []
        for path in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else []:
            with contextlib.suppress(OSError, CloudtikError):
                found.append(ClusterServices.from_json(path.read_bytes(), str(path)))
        return found


def registry_for(scope: DiscoveryScope) -> Registry:
    kind = scope.provider.type
    if kind == "virtual":
        return FileRegistry(paths.workspaces_dir() / scope.workspace / SERVICES_DIR)
    from . import clouds

    if kind == "aws":
        return clouds.aws_registry(scope)
    if kind == "gcp":
        return clouds.gcp_registry(scope)
    if kind == "azure":
        return clouds.azure_registry(scope)
    raise CloudtikError(f"service discovery is not available on {kind}")


def document(config: ClusterConfig, head_ip: str) -> ClusterServices:
    """What a cluster whose head is at `head_ip` publishes: every enabled runtime's endpoints."""
    from ..runtimes import enabled_runtimes

    services = [
        PublishedService(name=e.name, kind=e.kind, address=head_ip, port=e.port, protocol=e.protocol)
        for runtime, cfg in enabled_runtimes(config)
        for e in runtime.published(cfg, head_ip)
    ]
    return ClusterServices(
        workspace=config.workspace_name, cluster=config.cluster_name, published_at=time.time(), services=services
    )


def publish(config: ClusterConfig, head_ip: str) -> ClusterServices:
    doc = document(config, head_ip)
    registry_for(DiscoveryScope.of(config)).put(doc)
    return doc


def withdraw(config: ClusterConfig) -> None:
    registry_for(DiscoveryScope.of(config)).delete(config.cluster_name)


def lookup(scope: DiscoveryScope, cluster: str, kind: str, *, where: str) -> PublishedService:
    """The `kind` service `cluster` publishes in the scope's workspace; `where` names the config key."""
    doc = registry_for(scope).get(cluster)
    if doc is None:
        raise CloudtikError(
            f"{where}: cluster {cluster!r} publishes no services in workspace {scope.workspace!r} (is it up?)"
        )
    found = next((s for s in doc.services if s.kind == kind), None)
    if found is None:
        kinds = ", ".join(s.kind for s in doc.services) or "none"
        raise CloudtikError(f"{where}: cluster {cluster!r} publishes no {kind} (it has: {kinds})")
    return found

