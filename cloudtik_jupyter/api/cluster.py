"""`Cluster`: the one API behind the CLI, the magics, the widgets and the side panel.

Every method has a sync form (runs on the package's private event loop, so SSH connections are reused
between calls) and an ``*_async`` twin that awaits the same coroutine from any loop.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import random
import shlex
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .. import aio, paths
from ..cluster import launcher
from ..cluster.context import ClusterContext, NodeRef, load_record, record_exists
from ..cluster.follow import forget_listing, watch_status
from ..cluster.progress import ProgressSink, ignore_progress
from ..cluster.readmodel import STORE_ERRORS, cluster_info, cluster_status, reachable_store
from ..cluster.updater import node_env
from ..concurrency import gather_bounded
from ..config.schema import ClusterConfig
from ..errors import CannotConnect, CloudtikError, ClusterNotFound, ConfigError, HostKeyChanged
from ..providers import tags as T
from ..records.cluster import ClusterEvent, ClusterInfo, ClusterStatus, ClusterSummary
from ..records.layout import CONFIG_FILE
from ..records.node_env import here
from ..state.records import ChangeKind
from .runtimes import RuntimeHelpers

if TYPE_CHECKING:
    from ..ssh.runner import CommandResult

T_ = TypeVar("T_")
EXEC_CONCURRENCY = 32
RECONNECT_START, RECONNECT_CAP = 0.2, 2.0  # seconds between tries to reach a restarting store
RECONNECT_BACKLOG = 200  # events re-read after a reconnect (those newer than the last shown are shown)
OutputCallback = Callable[[str, str, str], None]  # (node_id, stream, line)


def _resolve(source: ClusterConfig | Mapping[str, Any] | str | Path) -> tuple[ClusterConfig, str | None]:
    """A model as is; a mapping or a config file is loaded; any other string names a known cluster
    (with the reason its record no longer loads as is, if it doesn't: see `load_record`)."""
    from ..config import load_config

    if isinstance(source, ClusterConfig):
        return source, None
    if isinstance(source, Mapping) or Path(source).is_file() or Path(source).suffix in (".yaml", ".yml"):
        return load_config(source), None
    name = str(source)
    if not paths.is_name(name):
        raise ClusterNotFound(
            f"{name[:60]!r} is neither a config file nor a cluster name (lowercase letters, digits and '-')"
        )
    if record_exists(name):
        return load_record(name)
    raise ClusterNotFound(f"no cluster named {name!r} on this machine (see `cloudtik list`)")


class Cluster(RuntimeHelpers):
    """A cluster from a config (path, dict or model) or the name of one known on this machine."""

    def __init__(self, source: ClusterConfig | Mapping[str, Any] | str | Path) -> None:
        self.config, self._record_problem = _resolve(source)
        self._ctx = ClusterContext(self.config, on_node=here())  # run on a node, it acts from that node

    def __repr__(self) -> str:
        return f"Cluster({self.name!r}, provider={self.config.provider.type!r})"

    @property
    def name(self) -> str:
        return self.config.cluster_name

    @classmethod
    def list(cls) -> builtins.list[ClusterSummary]:
        """Clusters known on this machine, whoever made them (CLI, notebook or Python)."""
        found = []
        root = paths.clusters_dir()
        for record in sorted(root.glob(f"*/{CONFIG_FILE}")) if root.exists() else []:
            if not paths.is_name(record.parent.name):
                continue  # not made by cloudtik
            try:
                config, _ = load_record(record.parent.name)
            except CloudtikError:
                continue  # a record no version of cloudtik could read
            found.append(ClusterSummary(config.cluster_name, config.provider.type, config.workspace_name))
        return found

    # -- plumbing: one coroutine, two faces ------------------------------------------------------

    def _sync(self, coro: Coroutine[Any, Any, T_]) -> T_:
        return aio.run(coro)

    async def _async(self, coro: Coroutine[Any, Any, T_]) -> T_:
        return await asyncio.wrap_future(aio.submit(coro))

    # -- lifecycle ------------------------------------------------------------------------------

    def _check_record(self) -> None:
        if self._record_problem:
            raise ConfigError(
                "",
                f"the record of cluster {self.name!r} no longer loads ({self._record_problem}); "
                f"run up with its config file, or take it down: cloudtik down {self.name}",
            )

    def up(self, *, progress: ProgressSink = ignore_progress, with_workers: bool = True) -> Cluster:
        self._check_record()
        self._sync(launcher.up(self._ctx, progress=progress, with_workers=with_workers))
        return self

    async def up_async(
        self, *, progress: ProgressSink = ignore_progress, with_workers: bool = True
    ) -> Cluster:
        self._check_record()
        await self._async(launcher.up(self._ctx, progress=progress, with_workers=with_workers))
        return self

    def down(self, *, progress: ProgressSink = ignore_progress) -> int:
        terminated = self._sync(launcher.down(self._ctx, progress=progress))
        end_helpers_when_no_cluster_is_left()
        return terminated

    async def down_async(self, *, progress: ProgressSink = ignore_progress) -> int:
        terminated = await self._async(launcher.down(self._ctx, progress=progress))
        await asyncio.to_thread(end_helpers_when_no_cluster_is_left)
        return terminated

    def status(self) -> ClusterStatus:
        return self._sync(cluster_status(self._ctx))

    async def status_async(self) -> ClusterStatus:
        return await self._async(cluster_status(self._ctx))

    def info(self) -> ClusterInfo:
        return self._sync(cluster_info(self._ctx))

    async def info_async(self) -> ClusterInfo:
        return await self._async(cluster_info(self._ctx))

    def scale(
        self,
        workers: int,
        *,
        node_type: str | None = None,
        wait: bool = True,
        timeout: float = 300.0,
        progress: ProgressSink = ignore_progress,
    ) -> None:
        """Ask the head for `workers` workers (of `node_type`, default the only worker type), within
        min/max; with `wait`, return once they are all up-to-date."""
        desired = launcher.desired_counts(self._ctx, workers, node_type)
        self._sync(launcher.scale(self._ctx, desired, progress=progress, wait=wait, timeout=timeout))

    async def scale_async(
        self,
        workers: int,
        *,
        node_type: str | None = None,
        wait: bool = True,
        timeout: float = 300.0,
        progress: ProgressSink = ignore_progress,
    ) -> None:
        desired = launcher.desired_counts(self._ctx, workers, node_type)
        await self._async(launcher.scale(self._ctx, desired, progress=progress, wait=wait, timeout=timeout))

    async def _wait_for_ready(self, timeout: float, progress: ProgressSink) -> ClusterStatus:
        desired = await launcher.current_desired(self._ctx)
        await launcher.wait_for_workers(self._ctx, desired, progress=progress, timeout=timeout)
        return await cluster_status(self._ctx)

    def wait_for_ready(
        self, *, timeout: float = 300.0, progress: ProgressSink = ignore_progress
    ) -> ClusterStatus:
        """Wait until every desired worker is up-to-date."""
        return self._sync(self._wait_for_ready(timeout, progress))

    async def wait_for_ready_async(
        self, *, timeout: float = 300.0, progress: ProgressSink = ignore_progress
    ) -> ClusterStatus:
        return await self._async(self._wait_for_ready(timeout, progress))

    async def _kill_node(self, node: str | None) -> str:
        if node is None:
            workers = await self._ctx.nodes(**{T.NODE_KIND: T.KIND_WORKER})
            if not workers:
                raise CloudtikError(f"cluster {self.name!r} has no worker to kill")
            victim = random.choice(workers)
        else:
            (victim,), _ = await self._select(node, False)
        await asyncio.to_thread(self._ctx.provider.terminate_nodes, [victim.node_id])
        forget_listing(self._ctx)
        # Every view reads the store: mark the node there now (and wake the controller), so no view shows
        # it alive until the controller's next look. The controller removes the row when it is gone.
        store = await reachable_store(self._ctx)
        if store is not None:
            with contextlib.suppress(*STORE_ERRORS):
                await store.mark_terminated(victim.node_id)
        return victim.node_id

    def kill_node(self, node: str | None = None) -> str:
        """Terminate one node through the provider, as a failing instance would (default: a worker)."""
        return self._sync(self._kill_node(node))

    async def kill_node_async(self, node: str | None = None) -> str:
        return await self._async(self._kill_node(node))

    async def _watch(self, max_interval: float) -> AsyncIterator[ClusterStatus]:
        async for status in watch_status(self._ctx, max_interval, lambda: record_exists(self.name)):
            yield status

    async def watch_async(self, *, max_interval: float = 1.0) -> AsyncIterator[ClusterStatus]:
        """Yield the status now and on changes in the head's state store, until the cluster is gone: one
        subscription for the whole watch, at most one look per `head.heartbeat_interval` (heartbeats are
        coalesced) and at least one per `max_interval`; no provider call while the head is up."""
        async for status in aio.bridge(self._watch(max_interval)):
            yield status

    async def _events(self, history: int) -> AsyncIterator[ClusterEvent]:
        """Past events, then new ones; rides out a restarting store (or head) by subscribing again."""
        from redis.exceptions import RedisError

        head = await self._ctx.head()
        if head is None:
            raise CloudtikError(f"cluster {self.name!r} is not up")
        seen: float | None = None
        backoff, lost = RECONNECT_START, False
        while True:
            try:
                store = await self._ctx.store(head)
                async with store.subscribe() as changes:
                    backlog = await store.events(history if seen is None else RECONNECT_BACKLOG)
                    if lost:
                        yield ClusterEvent(time.time(), "monitor", "reconnected to the head's state store")
                        backoff, lost = RECONNECT_START, False
                    for event in backlog:
                        if seen is None or event.time > seen:
                            seen = event.time
                            yield ClusterEvent(event.time, event.kind, event.message, event.node_id)
                    seen = seen if seen is not None else 0.0
                    async for change in changes:
                        if change.kind != ChangeKind.EVENT:
                            continue
                        for event in await store.events(50):
                            if event.time > seen:
                                seen = event.time
                                yield ClusterEvent(event.time, event.kind, event.message, event.node_id)
            except (RedisError, OSError, CloudtikError) as exc:
                if not lost:
                    why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    message = f"lost the head's state store ({why}); reconnecting"
                    yield ClusterEvent(time.time(), "monitor", message)
                    lost = True
                await asyncio.sleep(backoff)  # backoff between reconnects, not synchronisation
                backoff = min(backoff * 2, RECONNECT_CAP)
                head = await self._ctx.head() or head  # a re-`up` may have replaced it

    async def events_async(self, *, history: int = 20) -> AsyncIterator[ClusterEvent]:
        """The last `history` controller/agent events, then new ones as they happen (`cloudtik monitor`)."""
        async for event in aio.bridge(self._events(history)):
            yield event

    async def _head_ip(self) -> str:
        ip = (await cluster_info(self._ctx)).head_ip
        if ip is None:
            raise CloudtikError(f"cluster {self.name!r} has no head node (is it up?)")
        return ip

    def head_ip(self) -> str:
        return self._sync(self._head_ip())

    async def head_ip_async(self) -> str:
        return await self._async(self._head_ip())

    def worker_ips(self) -> builtins.list[str]:
        return self.info().worker_ips

    async def worker_ips_async(self) -> builtins.list[str]:
        return (await self.info_async()).worker_ips

    # -- commands and files (local paths are resolved here, against the caller's directory) ---------

    async def _select(self, node: str | None, all_nodes: bool) -> tuple[builtins.list[NodeRef], NodeRef]:
        nodes = await self._ctx.nodes()
        head = next((n for n in nodes if n.kind == T.KIND_HEAD), None)
        if head is None:
            raise CloudtikError(f"cluster {self.name!r} has no head node (is it up?)")
        if all_nodes:
            return nodes, head
        if node is None:
            return [head], head
        for n in nodes:
            if node in (n.node_id, str(n.seq), n.address.internal_ip, n.tags.get(T.NODE_NAME)):
                return [n], head
        known = ", ".join(f"{n.node_id} (seq {n.seq})" for n in nodes)
        raise CloudtikError(f"no node {node!r} in cluster {self.name!r} (nodes: {known})")

    async def _with_head(self, action: Callable[[NodeRef], Awaitable[T_]]) -> T_:
        """Run `action` on the head as this machine last saw it (`head.json`: no cloud call, on a cloud one
        listing saved per command); if no connection can be made to that head (replaced, gone), list the
        provider once and act on the head it shows. A head that is the one remembered is not tried twice."""
        known = self._ctx.known_head()
        if known is not None:
            try:
                return await action(known)
            except (CannotConnect, HostKeyChanged) as exc:
                failed: CloudtikError | None = exc
        else:
            failed = None
        _, head = await self._select(None, False)
        if failed is not None and known is not None and _same_node(head, known):
            raise failed
        return await action(head)

    async def _exec(
        self, command: str, node: str | None, all_nodes: bool, check: bool, on_output: OutputCallback | None
    ) -> builtins.list[CommandResult]:
        async def run_with(n: NodeRef, head: NodeRef) -> CommandResult:
            return await self._ctx.runner.run(
                self._ctx.target(n, head),
                command,
                env=node_env(self._ctx, n, head),
                check=check,
                on_output=on_output,
            )

        if node is None and not all_nodes:
            return [await self._with_head(lambda head: run_with(head, head))]
        nodes, head = await self._select(node, all_nodes)
        return await gather_bounded(lambda n: run_with(n, head), nodes, EXEC_CONCURRENCY)

    def exec(
        self,
        command: str,
        *,
        node: str | None = None,
        all_nodes: bool = False,
        check: bool = False,
        on_output: OutputCallback | None = None,
    ) -> builtins.list[CommandResult]:
        """Run `command` on the head (default), one node (id, seq id, ip or name) or all nodes."""
        return self._sync(self._exec(command, node, all_nodes, check, on_output))

    async def exec_async(
        self,
        command: str,
        *,
        node: str | None = None,
        all_nodes: bool = False,
        check: bool = False,
        on_output: OutputCallback | None = None,
    ) -> builtins.list[CommandResult]:
        return await self._async(self._exec(command, node, all_nodes, check, on_output))

    async def _upload(self, local: Path, remote: str, node: str | None, all_nodes: bool) -> None:
        if node is None and not all_nodes:
            await self._with_head(
                lambda head: self._ctx.runner.upload(self._ctx.target(head, head), local, remote)
            )
            return
        nodes, head = await self._select(node, all_nodes)
        await gather_bounded(
            lambda n: self._ctx.runner.upload(self._ctx.target(n, head), local, remote),
            nodes,
            EXEC_CONCURRENCY,
        )

    def upload(
        self, local: str | Path, remote: str, *, node: str | None = None, all_nodes: bool = False
    ) -> None:
        self._sync(self._upload(Path(local).absolute(), remote, node, all_nodes))

    async def upload_async(
        self, local: str | Path, remote: str, *, node: str | None = None, all_nodes: bool = False
    ) -> None:
        await self._async(self._upload(Path(local).absolute(), remote, node, all_nodes))

    async def _download(self, remote: str, local: Path, node: str | None) -> None:
        if node is None:
            await self._with_head(
                lambda head: self._ctx.runner.download(self._ctx.target(head, head), remote, local)
            )
            return
        nodes, head = await self._select(node, False)
        await self._ctx.runner.download(self._ctx.target(nodes[0], head), remote, local)

    def download(self, remote: str, local: str | Path, *, node: str | None = None) -> None:
        self._sync(self._download(remote, Path(local).absolute(), node))

    async def download_async(self, remote: str, local: str | Path, *, node: str | None = None) -> None:
        await self._async(self._download(remote, Path(local).absolute(), node))

    async def _attach(self, node: str | None, command: str | None) -> int:
        from ..ssh.runner import with_env

        # A login shell (or the command) with the same CLOUDTIK_* variables as `exec` gives.
        shell = command or 'exec "${SHELL:-/bin/bash}"'  # not -l: a login profile would reset PATH

        async def on(n: NodeRef, head: NodeRef) -> int:
            return await self._ctx.runner.attach(
                self._ctx.target(n, head), with_env(shell, node_env(self._ctx, n, head))
            )

        if node is None:  # the head this machine remembers, as `exec`
            return await self._with_head(lambda head: on(head, head))
        nodes, head = await self._select(node, False)
        return await on(nodes[0], head)

    def attach(self, *, node: str | None = None, command: str | None = None) -> int:
        """Interactive shell (a pty) on the head or a node; returns its exit status."""
        return self._sync(self._attach(node, command))

    # -- runtimes -------------------------------------------------------------------------------

    async def _submit(
        self, job: Path, args: Sequence[str], runtime: str | None, on_output: OutputCallback | None
    ) -> int:
        remote = f"jobs/{job.name}"

        async def upload(head: NodeRef) -> NodeRef:
            await self._ctx.runner.upload(self._ctx.target(head, None), job, remote)
            return head

        head = await self._with_head(upload)
        target = self._ctx.target(head, None)
        command = shlex.join(
            [
                "python3",
                "-m",
                "cloudtik_jupyter.runtimes.submit",
                *(["--runtime", runtime] if runtime else []),
                remote,
                *args,
            ]
        )
        result = await self._ctx.runner.run(
            target, command, env=node_env(self._ctx, head, head), check=False, on_output=on_output
        )
        return result.exit_status  # a failed job is the job's status to report, not an error of ours

    def submit(
        self,
        job: str | Path,
        args: Sequence[str] = (),
        *,
        runtime: str | None = None,
        on_output: OutputCallback | None = None,
    ) -> int:
        """Upload `job` to the head and submit it to the cluster's runtime (spark-submit for Spark);
        returns its exit status."""
        return self._sync(self._submit(Path(job).absolute(), args, runtime, on_output))

    async def submit_async(
        self,
        job: str | Path,
        args: Sequence[str] = (),
        *,
        runtime: str | None = None,
        on_output: OutputCallback | None = None,
    ) -> int:
        return await self._async(self._submit(Path(job).absolute(), args, runtime, on_output))

    def spark_session(self, app_name: str | None = None, **options: str | int | float | bool) -> Any:
        """A SparkSession whose executors run on the cluster's workers (the client must reach the
        cluster's private addresses, as on `virtual`). `options` are Spark properties by short name."""
        from ..runtimes import enabled_runtimes
        from ..runtimes.spark.session import spark_session

        if "spark" not in self.config.runtime.types:
            raise CloudtikError(f"cluster {self.name!r} has no Spark runtime (add `spark` to runtime.types)")
        from ..runtimes.secret import SECRET_FILE
        from ..runtimes.spark.auth import spark_secret

        info = self.info()
        master = next((link.url for link in info.links if link.url.startswith("spark://")), None)
        if master is None or info.head_ip is None:
            raise CloudtikError(f"cluster {self.name!r} has no Spark master yet (is it up?)")
        secret = spark_secret(self._ctx.dir / SECRET_FILE)
        runtime, spark = next((r, c) for r, c in enabled_runtimes(self.config) if r.name == "spark")
        conf = runtime.session_conf(spark, info.head_ip)  # type: ignore[attr-defined]  # the metastore's, looked up now
        return spark_session(master, app_name or self.name, auth_secret=secret, conf=conf, **options)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close this object's SSH connections (the cluster keeps running)."""
        self._sync(self._ctx.close())


def end_helpers_when_no_cluster_is_left() -> None:
    """The CLI session keeps clusters warm and the virtual hypervisor hosts nodes; with no cluster left they
    have nothing to do, so they go with the last `down` (CLI, magic or API alike) instead of idling (nothing
    of ours should outlive the user's last cluster)."""
    from .. import paths
    from ..errors import CloudtikError
    from ..providers.virtual.client import HypervisorClient
    from ..session import admin

    clusters = paths.clusters_dir()
    if not clusters.is_dir() or not any(clusters.iterdir()):
        admin.stop_all(str(paths.home()), timeout=5.0)
        with contextlib.suppress(CloudtikError):
            HypervisorClient(paths.home()).shutdown_if_idle()


def _same_node(a: NodeRef, b: NodeRef) -> bool:
    return a.node_id == b.node_id and a.address == b.address
