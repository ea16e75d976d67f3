"""`Workspace`: create, update, delete and inspect a workspace from a config (path, dict or model) or a name.

The provider's calls block (cloud SDKs do), so they run in threads; every method has a sync form (through
the package's private loop) and an ``*_async`` twin.
"""

from __future__ import annotations

import asyncio
import builtins
import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import aio, paths
from ..config.schema import NAME_PATTERN
from ..config.workspace import WorkspaceConfig, dump_workspace_config, load_workspace_config
from ..errors import CloudtikError, ConfigError
from ..providers.base import ResourceStatus, WorkspaceProvider

if TYPE_CHECKING:
    from ..discovery import ClusterServices

RECORD_FILE = "workspace.yaml"
DEFAULT_WORKSPACE = "default"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class WorkspaceStatus:
    name: str
    provider: str
    resources: list[ResourceStatus]

    @property
    def ready(self) -> bool:
        return bool(self.resources) and all(r.present for r in self.resources)

    @property
    def missing(self) -> list[str]:
        return [r.name for r in self.resources if not r.present]


@dataclass(frozen=True)
class WorkspaceSummary:
    name: str
    provider: str


def _record(name: str) -> Path:
    return paths.workspace_dir(name) / RECORD_FILE


def _resolve(source: WorkspaceConfig | Mapping[str, Any] | str | Path) -> WorkspaceConfig:
    """A model, a mapping or a YAML file; any other string names a workspace known on this machine."""
    if isinstance(source, WorkspaceConfig | Mapping):
        return load_workspace_config(source)
    path = Path(source).expanduser()
    if path.is_file() or path.suffix in (".yaml", ".yml"):
        return load_workspace_config(path)
    name = str(source)
    if not re.fullmatch(NAME_PATTERN, name):  # never a path into (or out of) the state dir
        raise ConfigError(
            "", f"{name!r} is neither a config file nor a workspace name (lowercase letters, digits and '-')"
        )
    if _record(name).is_file():
        return load_workspace_config(_record(name))
    if name == DEFAULT_WORKSPACE:  # the virtual default needs no config at all
        return WorkspaceConfig(workspace_name=DEFAULT_WORKSPACE)
    raise ConfigError("", f"no workspace named {name!r} on this machine (give its config file)")


def _forget(record: Path) -> None:
    record.unlink(missing_ok=True)
    if record.parent.is_dir() and not any(record.parent.iterdir()):
        record.parent.rmdir()


def _make_provider(config: WorkspaceConfig, progress: Progress | None) -> WorkspaceProvider:
    # The registry's public factory passes no networking config or progress sink; load the class directly.
    from ..providers import _WORKSPACE_PROVIDERS

    kind = config.provider.type
    if kind not in _WORKSPACE_PROVIDERS:
        raise ConfigError("provider.type", f"no workspace support for provider {kind!r}")
    module, _, attr = _WORKSPACE_PROVIDERS[kind].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    provider: WorkspaceProvider = cls(config.provider, config.workspace_name, config, progress=progress)
    return provider


def local_clusters(workspace: str, provider_type: str) -> list[str]:
    """Clusters known on this machine that live in `workspace` (read from their records)."""
    import yaml

    found = []
    root = paths.clusters_dir()
    for record in sorted(root.glob("*/cluster.yaml")) if root.exists() else []:
        try:
            data = yaml.safe_load(record.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(data, dict):
            continue
        kind = (data.get("provider") or {}).get("type", "virtual")
        if data.get("workspace_name", DEFAULT_WORKSPACE) == workspace and kind == provider_type:
            found.append(str(data.get("cluster_name", record.parent.name)))
    return found


class Workspace:
    """The shared network, firewall, identities and storage a team's clusters live in."""

    def __init__(
        self, source: WorkspaceConfig | Mapping[str, Any] | str | Path, *, progress: Progress | None = None
    ) -> None:
        self.config = _resolve(source)
        self.progress = progress
        self._provider: WorkspaceProvider | None = None

    def __repr__(self) -> str:
        return f"Workspace({self.name!r}, provider={self.config.provider.type!r})"

    @property
    def name(self) -> str:
        return self.config.workspace_name

    @property
    def provider(self) -> WorkspaceProvider:
        if self._provider is None:
            self._provider = _make_provider(self.config, self.progress)
        return self._provider

    @classmethod
    def list(cls) -> list[WorkspaceSummary]:
        """Workspaces created from this machine."""
        found = []
        root = paths.workspaces_dir()
        for record in sorted(root.glob(f"*/{RECORD_FILE}")) if root.exists() else []:
            try:
                config = load_workspace_config(record)
            except CloudtikError:
                continue
            found.append(WorkspaceSummary(config.workspace_name, config.provider.type))
        return found

    # -- the blocking bodies, run in threads -----------------------------------------------------

    def _create(self) -> None:
        # Record first: an interrupted create can then be resumed or deleted by name.
        record = _record(self.name)
        known = record.is_file()
        paths.write_private(record, dump_workspace_config(self.config))
        try:
            self.provider.create()
        except ConfigError:
            if not known:  # bad input creates nothing, not even the record
                _forget(record)
            raise

    def _delete(self, force: bool) -> None:
        clusters = local_clusters(self.name, self.config.provider.type)
        if clusters and not force:
            raise CloudtikError(
                f"workspace {self.name!r} still has clusters: {', '.join(clusters)} "
                f"(`cloudtik down` them first, or delete with --force)"
            )
        if clusters:
            from .cluster import Cluster

            for name in clusters:
                Cluster(name).down()
        delete: Any = self.provider.delete  # both providers take `force`; the protocol's delete does not
        delete(force=force)
        _forget(_record(self.name))

    def _status(self) -> WorkspaceStatus:
        return WorkspaceStatus(self.name, self.config.provider.type, self.provider.status())

    # -- sync facade and async twins -------------------------------------------------------------

    def create(self) -> Workspace:
        """Create what is missing; re-running converges (also after an interruption)."""
        aio.run(self.create_async())
        return self

    async def create_async(self) -> Workspace:
        await asyncio.to_thread(self._create)
        return self

    def update(self) -> Workspace:
        """Apply a changed config (e.g. new SSH CIDRs) in place: the same convergence as `create`."""
        return self.create()

    async def update_async(self) -> Workspace:
        return await self.create_async()

    def delete(self, *, force: bool = False) -> None:
        """Delete everything the workspace created; `force` first takes down the clusters still in it."""
        aio.run(self.delete_async(force=force))

    async def delete_async(self, *, force: bool = False) -> None:
        await asyncio.to_thread(self._delete, force)

    def status(self) -> WorkspaceStatus:
        return aio.run(self.status_async())

    async def status_async(self) -> WorkspaceStatus:
        return await asyncio.to_thread(self._status)

    def info(self) -> dict[str, str]:
        return aio.run(self.info_async())

    def services(self) -> builtins.list[ClusterServices]:
        """What the workspace's clusters publish (discovery): per cluster, name/kind/address/port/protocol."""
        return aio.run(self.services_async())

    async def services_async(self) -> builtins.list[ClusterServices]:
        from ..discovery import DiscoveryScope, registry_for

        scope = DiscoveryScope(self.name, self.config.provider)
        return await asyncio.to_thread(lambda: registry_for(scope).list())

    async def info_async(self) -> dict[str, str]:
        return await asyncio.to_thread(self.provider.info)
