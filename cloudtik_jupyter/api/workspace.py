"""`Workspace`: create, update, delete and inspect a workspace from a config (path, dict or model) or a name.

The provider's calls block (cloud SDKs do), so they run in a worker thread; every method has a sync form
(through the package's private loop) and an ``*_async`` twin.

`create`, `update` and `delete` are cancellable and exclusive, for every front end alike: Ctrl-C in the
sync form, cancelling the task of the async form (a notebook's stop button) or `cancel()` from another
thread sets the operation's cancel token; the worker stops before its next cloud call, and the call
returns only once the worker has ended. A second create or delete of the same workspace, from this
machine (a lock file) or another one (a lock object in the cloud), is refused while one runs.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import contextvars
import importlib
import re
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .. import aio, paths
from ..config.schema import NAME_PATTERN
from ..config.workspace import WorkspaceConfig, dump_workspace_config, load_workspace_config
from ..errors import CloudtikError, ConfigError
from ..providers.base import ResourceStatus, WorkspaceProvider
from ..providers.common import cancel as cancellation
from ..providers.common.lock import LockRecord, hold_local_lock

T = TypeVar("T")

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
class DeleteReport:
    """What `delete` removed, one line per resource ("VPC vpc-0abc"); empty when nothing was left."""

    name: str
    removed: list[str] = field(default_factory=list)


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


def _lock_file(name: str) -> Path:
    # Not in the workspace's own dir: deleting a virtual workspace removes that dir while locked.
    return paths.home() / "locks" / f"workspace-{name}.lock"


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


def user_permissions(cloud: str) -> str:
    """What your own credentials need to create and delete workspaces and run clusters in them on
    `cloud` (aws: an IAM policy; gcp: a custom role for gcloud; azure: a custom role for az): the
    documents the README shows, evaluated in the tests against every call the providers make."""
    if cloud == "aws":
        from ..providers.aws.policies import user_policy

        return user_policy().to_json(indent=2) + "\n"
    if cloud == "gcp":
        from ..providers.gcp.roles import user_role_yaml

        return user_role_yaml()
    if cloud == "azure":
        from ..providers.azure.roles import user_role_json

        return user_role_json()
    raise ConfigError("provider.type", f"no cloud permissions for {cloud!r} (aws, gcp or azure)")


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
        self._token: cancellation.CancelToken | None = None  # of the running create/update/delete

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

    # -- the blocking bodies, run in the worker thread --------------------------------------------

    def _exclusive(
        self, operation: str, body: Callable[[], T], locally: Callable[[], Any] | None = None
    ) -> T:
        """`body` holding the workspace's local lock, then its lock in the cloud; `locally` runs (under
        the local lock only) first."""
        record = LockRecord.new(operation)
        with hold_local_lock(_lock_file(self.name), self.name, record):
            if locally is not None:
                locally()
            lock: Any = getattr(self.provider, "lock", None)  # providers without one rely on the local lock
            with lock(record) if lock is not None else contextlib.nullcontext():
                return body()

    def _create(self) -> None:
        record = _record(self.name)
        known = record.is_file()

        def write_record() -> None:  # first: an interrupted create can then be resumed or deleted by name
            paths.write_private(record, dump_workspace_config(self.config))

        try:
            self._exclusive("create", self.provider.create, write_record)
        except ConfigError:
            if not known:  # bad input creates nothing, not even the record
                _forget(record)
            raise

    def _delete(self, force: bool) -> DeleteReport:
        clusters = local_clusters(self.name, self.config.provider.type)
        if clusters and not force:
            raise CloudtikError(
                f"workspace {self.name!r} still has clusters: {', '.join(clusters)} "
                f"(`cloudtik down` them first, or delete with --force)"
            )
        if clusters:
            from .cluster import Cluster

            for name in clusters:
                cancellation.check()
                Cluster(name).down()
        delete: Any = self.provider.delete  # every provider takes `force`; the protocol's delete does not

        def delete_and_forget() -> Any:
            removed = delete(force=force)
            _forget(_record(self.name))
            return removed

        removed = self._exclusive("delete", delete_and_forget)
        return DeleteReport(self.name, list(removed or []))

    def _status(self) -> WorkspaceStatus:
        return WorkspaceStatus(self.name, self.config.provider.type, self.provider.status())

    # -- running in the worker thread, cancellably -------------------------------------------------

    def _new_token(self, operation: str) -> cancellation.CancelToken:
        self._token = cancellation.CancelToken(f"workspace {self.name!r} {operation}")
        return self._token

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the running create, update or delete of this object before its next cloud call; the
        call that runs it raises `Cancelled` once its worker has ended. A re-run converges."""
        if self._token is not None:
            self._token.cancel(reason)

    def _interrupted(self, token: cancellation.CancelToken) -> None:
        token.cancel("interrupted")
        if self.progress is not None:
            self.progress("stopping after the cloud call in flight (the re-run converges)")

    async def _in_worker(self, token: cancellation.CancelToken, body: Callable[[], T]) -> T:
        def work() -> T:
            with cancellation.scope(token):
                return body()

        worker = asyncio.get_running_loop().run_in_executor(None, contextvars.copy_context().run, work)
        try:
            return await asyncio.shield(worker)
        except asyncio.CancelledError:  # the task was cancelled (a stop button): stop the worker too
            self._interrupted(token)
            while not worker.done():  # the worker ends at its next check; wait for it, whatever comes
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({worker})
            if not worker.cancelled():
                worker.exception()  # retrieved: it is the cancel we asked for, or moot now
            raise

    def _join(self, token: cancellation.CancelToken, coro: Any) -> Any:
        """Run `coro` on the private loop; Ctrl-C sets `token`, waits for the worker, re-raises."""
        fut: Future[Any] = aio.submit(coro)
        try:
            return fut.result()
        except KeyboardInterrupt:
            self._interrupted(token)
            while True:  # a second Ctrl-C does not abandon the worker: it stops at its next cloud call
                try:
                    fut.result()
                except KeyboardInterrupt:
                    continue
                except BaseException:
                    pass
                break
            raise

    # -- sync facade and async twins -------------------------------------------------------------

    def create(self) -> Workspace:
        """Create what is missing; re-running converges (also after an interruption)."""
        token = self._new_token("create")
        self._join(token, self._in_worker(token, self._create))
        return self

    async def create_async(self) -> Workspace:
        await self._in_worker(self._new_token("create"), self._create)
        return self

    def update(self) -> Workspace:
        """Apply a changed config (e.g. new SSH CIDRs) in place: the same convergence as `create`."""
        return self.create()

    async def update_async(self) -> Workspace:
        return await self.create_async()

    def delete(self, *, force: bool = False) -> DeleteReport:
        """Delete everything the workspace created (every tagged match), and say what was removed;
        `force` first takes down the clusters still in it."""
        token = self._new_token("delete")
        report: DeleteReport = self._join(token, self._in_worker(token, lambda: self._delete(force)))
        return report

    async def delete_async(self, *, force: bool = False) -> DeleteReport:
        return await self._in_worker(self._new_token("delete"), lambda: self._delete(force))

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
