"""Every cluster on this machine, kept live for the panel: one shared `Cluster` handle per name.

While a panel is connected (a stream subscriber), each cluster is followed with `Cluster.watch_async()`,
which wakes on every change in the head's state store, and the state dir is looked at every second for
clusters made elsewhere (CLI, a notebook, Python). Operations the panel starts (`up`, `down`) are tracked
here, so every open panel shows them. Nothing here talks to a provider, SSH or Redis: only the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import paths
from ..config.schema import NAME_PATTERN
from ..errors import CloudtikError, ClusterNotFound, ConfigError
from ..records.cluster import ClusterStatus, ClusterSummary
from .capability import Signer
from .links import HEAD, DeclaredPorts, declared_ports
from .models import ClusterCard, Operation, WorkspaceOut, card, workspaces_out

if TYPE_CHECKING:
    from ..api.cluster import Cluster
    from ..config.schema import ClusterConfig
    from .forwards import NodeForwards

RESCAN_SECONDS = 1.0  # how soon a cluster made in another process appears
RETRY_MAX_SECONDS = 10.0
NODE_LINKS_TTL = 2.0  # how long the proxy reuses a cluster's node addresses for rewriting pages
_NAME = re.compile(NAME_PATTERN)
_log = logging.getLogger(__name__)


class Conflict(CloudtikError):
    """The request clashes with the cluster's state (it exists already, or an operation is running)."""


@dataclass(frozen=True)
class Removed:
    name: str


@dataclass(frozen=True)
class Workspaces:
    """Every workspace with the clusters in it (sent whole: there are few)."""

    workspaces: tuple[WorkspaceOut, ...]


HubUpdate = ClusterCard | Removed | Workspaces | None  # None: the hub is closing


def check_name(name: str) -> str:
    """A cluster name, never a path: `Cluster(str)` would otherwise load a config file by that name."""
    if not _NAME.match(name):
        raise ConfigError("cluster_name", f"invalid cluster name {name!r} (lowercase letters, digits, '-')")
    return name


def _records() -> dict[str, float]:
    """Cluster and workspace records in the state dir with their modification times (cheap: two globs,
    no parsing); keys are ``NAME`` for clusters and ``workspace:NAME`` for workspaces."""
    from ..api.workspace import RECORD_FILE
    from ..records.layout import CONFIG_FILE

    found: dict[str, float] = {}
    for root, pattern, prefix in (
        (paths.clusters_dir(), f"*/{CONFIG_FILE}", ""),
        (paths.workspaces_dir(), f"*/{RECORD_FILE}", "workspace:"),
    ):
        for record in root.glob(pattern) if root.exists() else []:
            with contextlib.suppress(OSError):
                found[prefix + record.parent.name] = record.stat().st_mtime
    return found


class ClusterHub:
    def __init__(
        self,
        base_url: str,
        forwards: NodeForwards,
        *,
        log: logging.Logger = _log,
        rescan_seconds: float = RESCAN_SECONDS,
    ) -> None:
        self.base_url = base_url
        self.forwards = forwards
        self._log = log
        self._rescan_seconds = rescan_seconds
        self._handles: dict[str, Cluster] = {}
        self._summaries: dict[str, ClusterSummary] = {}
        self._records: dict[str, float] | None = None
        self._statuses: dict[str, ClusterStatus] = {}
        self._operations: dict[str, Operation] = {}
        self._errors: dict[str, str] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._scanner: asyncio.Task[None] | None = None
        self._subscribers: set[asyncio.Queue[HubUpdate]] = set()
        self._rescanning = asyncio.Lock()
        self.signer = Signer()
        self._workspaces: tuple[WorkspaceOut, ...] = ()
        self._declared: dict[str, tuple[ClusterConfig, DeclaredPorts]] = {}
        self._node_links: dict[str, tuple[float, dict[str, str]]] = {}

    # -- handles ---------------------------------------------------------------------------------

    def cluster(self, name: str) -> Cluster:
        """The shared handle of a cluster known on this machine (`ClusterNotFound` otherwise)."""
        from ..api.cluster import Cluster

        check_name(name)
        handle = self._handles.get(name)
        if handle is None:
            handle = self._handles[name] = Cluster(name)
        return handle

    def declared_ports(self, cluster: Cluster) -> DeclaredPorts:
        """The ports the proxy may reach on `cluster` (computed once per config)."""
        cached = self._declared.get(cluster.name)
        if cached is None or cached[0] is not cluster.config:
            cached = self._declared[cluster.name] = (cluster.config, declared_ports(cluster.config))
        return cached[1]

    async def node_links(self, cluster: Cluster, base_url: str) -> dict[str, str]:
        """``http://IP:PORT`` of every declared web UI on the cluster's nodes -> its proxy entry URL."""
        now = asyncio.get_running_loop().time()
        cached = self._node_links.get(cluster.name)
        if cached is not None and now - cached[0] < NODE_LINKS_TTL:
            return cached[1]
        from .. import aio
        from ..providers import tags as T
        from .links import proxy_path

        nodes = await asyncio.wrap_future(aio.submit(cluster._ctx.nodes()))
        ports = self.declared_ports(cluster)
        links: dict[str, str] = {}
        for node in nodes:
            ref = HEAD if node.kind == T.KIND_HEAD else str(node.seq)
            for port in ports.head if ref == HEAD else ports.worker:
                links[f"http://{node.address.internal_ip}:{port}"] = base_url + proxy_path(
                    cluster.name, port, ref
                )
        self._node_links[cluster.name] = (now, links)
        return links

    async def _forget(self, name: str) -> None:
        """Close a handle (its SSH connections and forwards); the next request makes a fresh one."""
        self.forwards.drop(name)
        self._declared.pop(name, None)
        self._node_links.pop(name, None)
        handle = self._handles.pop(name, None)
        if handle is not None:
            await asyncio.to_thread(handle.close)

    # -- what the panel shows --------------------------------------------------------------------

    def card(self, name: str) -> ClusterCard | None:
        summary = self._summaries.get(name)
        if summary is None:
            return None
        handle = self._handles.get(name)
        return card(
            summary,
            self._statuses.get(name),
            self.base_url,
            operation=self._operations.get(name),
            error=self._errors.get(name),
            config=handle.config if handle is not None else None,
        )

    async def status_card(self, name: str) -> ClusterCard:
        """A fresh card, read now (not from the watch)."""
        cluster = self.cluster(name)
        status = await cluster.status_async()
        config = cluster.config
        summary = ClusterSummary(cluster.name, config.provider.type, config.workspace_name)
        return card(
            summary,
            status,
            self.base_url,
            operation=self._operations.get(name),
            error=self._errors.get(name),
            config=config,
        )

    def cards(self) -> list[ClusterCard]:
        return [c for c in (self.card(n) for n in sorted(self._summaries)) if c is not None]

    def workspaces(self) -> tuple[WorkspaceOut, ...]:
        return self._workspaces

    def _publish(self, name: str) -> None:
        self._send(self.card(name) or Removed(name))

    def _send(self, update: HubUpdate) -> None:
        for queue in self._subscribers:
            queue.put_nowait(update)

    async def _refresh_workspaces(self) -> None:
        from ..api.workspace import Workspace

        known = await asyncio.to_thread(Workspace.list)
        fresh = workspaces_out(known, list(self._summaries.values()))
        if fresh != self._workspaces:
            self._workspaces = fresh
            self._send(Workspaces(fresh))

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[HubUpdate]]:
        """Updates (cards, removals) from now on; the first subscriber starts the watching, the last
        one to leave stops it."""
        queue: asyncio.Queue[HubUpdate] = asyncio.Queue()
        self._subscribers.add(queue)
        if self._scanner is None:
            await self.rescan(force=True)
            self._scanner = asyncio.ensure_future(self._scan_forever())
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
            if not self._subscribers:
                await self._stop_watching()

    # -- looking for clusters --------------------------------------------------------------------

    async def rescan(self, *, force: bool = False) -> None:
        """Pick up clusters made or removed elsewhere (reads configs only when a record changed)."""
        async with self._rescanning:
            await self._rescan(force)

    async def _rescan(self, force: bool) -> None:
        records = await asyncio.to_thread(_records)
        if not force and records == self._records:
            return
        changed = {n for n, t in records.items() if self._records is not None and self._records.get(n) != t}
        self._records = records
        try:
            await self._rescan_clusters(changed)
        finally:
            await self._refresh_workspaces()

    async def _rescan_clusters(self, changed: set[str]) -> None:
        from ..api.cluster import Cluster

        listed = {s.name: s for s in await asyncio.to_thread(Cluster.list)}
        for name in sorted(set(self._summaries) | set(listed)):
            if name in listed:
                fresh = name not in self._summaries
                self._summaries[name] = listed[name]
                if name in changed and name not in self._operations and not fresh:
                    await self._restart(name)  # its config changed under us (re-`up` from elsewhere)
                elif fresh or name not in self._watchers:
                    self._watch(name)
                if fresh:
                    self._publish(name)
            elif name not in self._operations and name not in self._watchers:
                del self._summaries[name]
                self._statuses.pop(name, None)
                self._errors.pop(name, None)
                await self._forget(name)
                self._publish(name)

    async def _scan_forever(self) -> None:
        while True:
            await asyncio.sleep(self._rescan_seconds)  # the period of looking, not a synchronisation
            try:
                await self.rescan()
            except Exception:  # keep looking: one unreadable record must not stop the panel
                self._log.exception("cloudtik: rescanning the clusters failed")

    # -- watching --------------------------------------------------------------------------------

    def _watch(self, name: str) -> None:
        if self._subscribers and name not in self._watchers:
            self._watchers[name] = asyncio.ensure_future(self._follow(name))

    async def _restart(self, name: str) -> None:
        watcher = self._watchers.pop(name, None)
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        await self._forget(name)
        self._watch(name)

    async def _follow(self, name: str) -> None:
        delay = 0.5
        handle: Cluster | None = None
        while True:
            try:
                handle = self.cluster(name)
                async for status in handle.watch_async():
                    self._statuses[name] = status
                    self._errors.pop(name, None)
                    delay = 0.5
                    self._publish(name)
                break  # no nodes and no record: the cluster is gone
            except ClusterNotFound:
                break
            except Exception as exc:  # e.g. the provider is unreachable: show it, then look again
                self._errors[name] = str(exc) or type(exc).__name__
                self._publish(name)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
        self._watchers.pop(name, None)
        self._statuses.pop(name, None)
        if handle is not None and self._handles.get(name) is not handle:
            await asyncio.to_thread(handle.close)  # forgotten (by `down`) while we still watched it
        await self.rescan(force=True)

    async def _stop_watching(self) -> None:
        tasks = [t for t in (self._scanner, *self._watchers.values()) if t is not None]
        self._scanner = None
        self._watchers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._statuses.clear()  # stale without a watcher; refreshed on the next subscription

    # -- operations ------------------------------------------------------------------------------

    def start_up(self, config: ClusterConfig) -> ClusterCard:
        """Bring a new cluster up in the background; its card shows the progress and any error."""
        from ..api.cluster import Cluster

        name = config.cluster_name
        if name in self._operations or any(s.name == name for s in Cluster.list()):
            raise Conflict(f"cluster {name!r} already exists on this machine")
        handle = self._handles[name] = Cluster(config)
        self._summaries[name] = ClusterSummary(name, config.provider.type, config.workspace_name)
        self._operations[name] = "up"
        self._errors.pop(name, None)

        async def run() -> None:
            try:
                await handle.up_async()
            except Exception as exc:
                self._errors[name] = str(exc) or type(exc).__name__
                self._log.warning("cloudtik: up of %s failed: %s", name, exc)
            finally:
                self._operations.pop(name, None)
                self._publish(name)
                self._watch(name)

        self._spawn(run())
        self._publish(name)  # watched from when its record appears (the next rescan)
        result = self.card(name)
        assert result is not None
        return result

    async def down(self, name: str) -> int:
        """Terminate every node of `name` (the panel shows it stopping); returns how many."""
        handle = self.cluster(name)
        if name in self._operations:
            raise Conflict(f"cluster {name!r} is busy ({self._operations[name]} in progress)")
        self._operations[name] = "down"
        self._publish(name)
        try:
            return await handle.down_async()
        finally:
            self._operations.pop(name, None)
            await self._forget(name)
            await self.rescan(force=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop watching, end every stream, cancel operations in flight and close every handle."""
        for queue in self._subscribers:
            queue.put_nowait(None)
        await self._stop_watching()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for name in list(self._handles):
            await self._forget(name)
