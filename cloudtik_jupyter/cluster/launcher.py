"""`up`, `down` and `scale` from the client: the head here, workers by the head's controller.

Every step looks before it acts (find by tags, then create what is missing), so re-running `up` after an
interruption at any phase converges without duplicate nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
from collections.abc import Mapping
from pathlib import Path

from .. import paths
from ..concurrency import gather_bounded
from ..errors import CloudtikError, ConfigError
from ..head.identity import IDENTITY_FILE, HeadIdentity, recovered_identity
from ..providers import tags as T
from ..providers.base import NodeSpec
from ..providers.tags import NodeStatus
from ..records.layout import CLIENT_KEY_FILE, CONFIG_FILE, HEAD_KEY_FILE, NODE_STATE
from ..runtimes.secret import SECRET_FILE, ensure_secret
from ..waiting import wait_for
from .context import ClusterContext, NodeRef
from .follow import WorkerRow, wait_for_rows
from .health import head_problem
from .identity_record import remember_identity
from .live import fetch_store_credentials
from .progress import ProgressEvent, ProgressSink, ignore_progress
from .updater import needs_update, plan_for, update_node

HEAD_SEQ = 1
LAUNCH_CONCURRENCY = 16  # provider calls at a time, whatever the count asked for
WAIT_FOR_WORKERS_SECONDS = 900.0
HEAD_REPAIR_TIMEOUT = 60.0


def node_spec(ctx: ClusterContext, node_type: str, authorized_keys: str | None = None) -> NodeSpec:
    return NodeSpec(
        node_type=node_type,
        node_config=ctx.config.available_node_types[node_type].node_config,
        ssh_user=ctx.config.auth.ssh_user,
        ssh_public_key=ctx.authorized_keys() if authorized_keys is None else authorized_keys,
    )


def launch_tags(ctx: ClusterContext, node_type: str, kind: str, seq: int) -> dict[str, str]:
    return ctx.cluster_tags(
        **{
            T.NODE_KIND: kind,
            T.NODE_TYPE: node_type,
            T.NODE_STATUS: NodeStatus.PENDING.value,
            T.NODE_SEQ: str(seq),
            T.NODE_NAME: f"{ctx.name}-{kind}-{seq}",
        }
    )


async def launch_node(
    ctx: ClusterContext,
    node_type: str,
    kind: str,
    seq: int,
    extra: Mapping[str, str] | None = None,
    *,
    authorized_keys: str | None = None,
) -> str:
    spec = node_spec(ctx, node_type, authorized_keys)
    tags = {**launch_tags(ctx, node_type, kind, seq), **(extra or {})}
    (node_id,) = await asyncio.to_thread(ctx.provider.create_nodes, spec, tags, 1)
    return node_id


def head_node_files(ctx: ClusterContext) -> dict[str, Path]:
    """Files the head's setup copies beside its config: the user's public key (accepted by workers), the
    head's own key for the workers (kept here, so a new head after a crash is still accepted by them), the
    runtime secret, and what the client remembers of the head's identity (seq high-water mark, desired counts)."""
    from ..ssh.keys import ensure_keypair

    client_key = ctx.dir / CLIENT_KEY_FILE
    paths.write_private(client_key, ctx.public_key() + "\n")
    ensure_keypair(ctx.dir / HEAD_KEY_FILE)
    files = {
        CLIENT_KEY_FILE: client_key,
        HEAD_KEY_FILE: ctx.dir / HEAD_KEY_FILE,
        SECRET_FILE: ensure_secret(ctx.dir / SECRET_FILE),  # the runtimes' key (Spark authentication)
    }
    if (ctx.dir / IDENTITY_FILE).exists():
        files[IDENTITY_FILE] = ctx.dir / IDENTITY_FILE
    return files


def first_workers(ctx: ClusterContext) -> list[tuple[str, int]]:
    """(node type, seq id) of the workers a brand-new cluster starts with (each type's `min_workers`),
    seq ids after the head's: what its controller's first tick would launch. Empty for a cluster this
    machine has a head identity record of (a new head of a known cluster: its controller decides)."""
    if (ctx.dir / IDENTITY_FILE).exists():
        return []
    types = [t for t, nt in ctx.config.worker_types().items() for _ in range(nt.min_workers)]
    return [(t, HEAD_SEQ + i) for i, t in enumerate(types, start=1)]


async def launch_head(ctx: ClusterContext, workers: list[tuple[str, int]]) -> None:
    """The head, and `workers` beside it, not after it: their machines boot while the head is set up, and
    the head's controller sets them up on its first tick (launched, never set up: as after a controller
    restart). A failed launch starts no more and raises once the others in flight have returned."""
    from ..ssh.keys import ensure_keypair

    # A worker accepts what a worker the controller launches accepts: the head's key (the client keeps it,
    # and uploads it with the head's setup) and the client's.
    keys = "\n".join([ensure_keypair(ctx.dir / HEAD_KEY_FILE), ctx.public_key()]) if workers else None
    launches = [(ctx.config.head_node_type, T.KIND_HEAD, HEAD_SEQ)]
    launches += [(node_type, T.KIND_WORKER, seq) for node_type, seq in workers]

    async def one(launch: tuple[str, str, int]) -> str:
        node_type, kind, seq = launch
        return await launch_node(
            ctx, node_type, kind, seq, authorized_keys=keys if kind == T.KIND_WORKER else None
        )

    await gather_bounded(one, launches, LAUNCH_CONCURRENCY, keep_going=False)


async def launch_missing_head(ctx: ClusterContext, progress: ProgressSink = ignore_progress) -> None:
    """The head of a cluster that has none; for a brand-new cluster (no node at all) its first workers
    beside it. A cluster with nodes left (a lost head's workers, launches of an `up` that failed) gets its
    head only: its controller takes them on."""
    workers = first_workers(ctx) if not await ctx.nodes() else []
    if workers:
        progress(
            ProgressEvent("launch", f"launching {len(workers)} worker(s) beside the head", node_kind="worker")
        )
    await launch_head(ctx, workers)


async def ensure_head(ctx: ClusterContext, progress: ProgressSink = ignore_progress) -> NodeRef:
    head = await ctx.head()
    if head is None:
        progress(
            ProgressEvent("launch", f"launching the head ({ctx.config.head_node_type})", node_kind="head")
        )
        await launch_missing_head(ctx, progress)
        head = await ctx.head()
        assert head is not None, "provider lost the head it just created"
    if needs_update(head, plan_for(ctx.config, T.KIND_HEAD)):
        await update_node(ctx, head, None, progress=progress, node_files=head_node_files(ctx))
        await asyncio.to_thread(
            ctx.provider.set_node_tags, head.node_id, {T.CONFIG_DIGEST: config_digest(ctx)}
        )
        head = await ctx.head()
        assert head is not None
        await fetch_store_credentials(ctx, head)
        store = await ctx.store(head)
        await store.request_reconcile("cluster config updated")  # the controller picks it up now
        await remember_identity(ctx, store)
        return head
    await fetch_store_credentials(ctx, head)
    problem = await head_problem(ctx, head)
    if problem is not None:
        progress(ProgressEvent("repair", f"{problem}; repairing the head", head.node_id, head.kind))
        await repair_head(ctx, head, progress)
    else:
        progress(ProgressEvent("up-to-date", "already up-to-date", head.node_id, head.kind))
    await push_config(ctx, head, progress)
    await remember_identity(ctx, await ctx.store(head))
    return head


async def repair_head(ctx: ClusterContext, head: NodeRef, progress: ProgressSink) -> None:
    """Restart the head's agent and services (its setup is current), then check it again."""
    await update_node(ctx, head, None, progress=progress, node_files=head_node_files(ctx), start_only=True)
    await fetch_store_credentials(ctx, head)

    async def healthy() -> bool:
        return await head_problem(ctx, head) is None

    await wait_for(healthy, timeout=HEAD_REPAIR_TIMEOUT, what="the repaired head to report", max_interval=0.1)


def config_digest(ctx: ClusterContext) -> str:
    return hashlib.sha256(ctx.config_file.read_bytes()).hexdigest()[:16]


async def push_config(ctx: ClusterContext, head: NodeRef, progress: ProgressSink) -> None:
    """A changed config whose setup is the same (counts, timeouts) needs no setup, but the head's
    controller must still get it: `up` with new min_workers would otherwise wait for workers forever."""
    digest = config_digest(ctx)
    if head.tags.get(T.CONFIG_DIGEST) == digest:
        return
    await ctx.runner.upload(ctx.target(head, None), ctx.config_file, f"{NODE_STATE}/{CONFIG_FILE}")
    await asyncio.to_thread(ctx.provider.set_node_tags, head.node_id, {T.CONFIG_DIGEST: digest})
    store = await ctx.store(head)
    await store.request_reconcile("cluster config updated")
    progress(ProgressEvent("config", "cluster config updated on the head", head.node_id, head.kind))


async def wait_for_workers(
    ctx: ClusterContext,
    desired: dict[str, int] | None = None,
    *,
    progress: ProgressSink = ignore_progress,
    timeout: float = WAIT_FOR_WORKERS_SECONDS,
) -> None:
    """Wait until each worker type has its desired count (default min_workers), all up-to-date: on the
    head's store (its node table, re-read on change notifications), the provider only while the store
    cannot say (cluster/follow.py)."""
    want = (
        desired if desired is not None else {t: nt.min_workers for t, nt in ctx.config.worker_types().items()}
    )
    seen: dict[str, str] = {}
    launch_hash = plan_for(ctx.config, T.KIND_WORKER).launch_hash

    def settled(workers: list[WorkerRow]) -> bool:
        for node_id, _, status, _ in workers:
            if seen.get(node_id) != status:
                seen[node_id] = status
                progress(ProgressEvent(_phase(status), status, node_id, T.KIND_WORKER))
        return all(
            sum(1 for w in workers if w[1] == node_type) == count for node_type, count in want.items()
        ) and all(
            status == NodeStatus.UP_TO_DATE.value and h == launch_hash
            for _, t, status, h in workers
            if t in want
        )

    summary = ", ".join(f"{n} {t}" for t, n in want.items())
    await wait_for_rows(ctx, settled, timeout=timeout, what=f"workers ({summary}) to be up-to-date")


def _phase(status: str) -> str:
    return {
        NodeStatus.UP_TO_DATE.value: "up-to-date",
        NodeStatus.UPDATE_FAILED.value: "failed",
        NodeStatus.PENDING.value: "launch",
        NodeStatus.WAITING_FOR_SSH.value: "ssh",
    }.get(status, "setup")


async def up(
    ctx: ClusterContext, *, progress: ProgressSink = ignore_progress, with_workers: bool = True
) -> None:
    """Create or update the head (its controller then launches the workers); optionally wait for them."""
    ctx.provider  # noqa: B018 -- the provider section is judged before anything is recorded
    ctx.save_record()
    ctx.public_key()  # generate the cluster key before anything is launched with it
    head = await ensure_head(ctx, progress)
    if with_workers:
        store_desired = await current_desired(ctx)
        await wait_for_workers(ctx, store_desired, progress=progress)
        await remember_identity(ctx, await ctx.store(head))


async def current_desired(ctx: ClusterContext) -> dict[str, int]:
    """Desired worker counts: the config's minimums, raised by scale requests recorded on the head. A new
    head whose controller has not restored its predecessor's requests yet: what it will restore."""
    want = {t: nt.min_workers for t, nt in ctx.config.worker_types().items()}
    nodes = await ctx.nodes()
    head = next((n for n in nodes if n.kind == T.KIND_HEAD), None)
    if head is not None:
        store = await ctx.store(head)
        wanted = await store.desired_state()
        counts = wanted.counts
        if wanted.version == 0:  # the same inputs the controller restores from (head/identity.py)
            workers = [n.tags for n in nodes if n.kind == T.KIND_WORKER]
            counts = recovered_identity(HeadIdentity.load(ctx.dir / IDENTITY_FILE), workers).desired
        for node_type, count in counts.items():
            if node_type in want:
                want[node_type] = count
    return want


async def down(ctx: ClusterContext, *, progress: ProgressSink = ignore_progress) -> int:
    """Terminate every node of the cluster and forget its local record; returns how many were terminated."""
    await ctx.close()
    terminated = 0
    # The head first, so its controller cannot launch a worker while we remove them.
    for kind in (T.KIND_HEAD, T.KIND_WORKER):
        nodes = await ctx.nodes(**{T.NODE_KIND: kind})
        if nodes:
            progress(ProgressEvent("terminate", f"terminating {len(nodes)} {kind} node(s)"))
            await asyncio.to_thread(ctx.provider.terminate_nodes, [n.node_id for n in nodes])
            terminated += len(nodes)
    leftovers = await ctx.nodes()  # nodes of unknown kind, or launched in the meantime
    if leftovers:
        await asyncio.to_thread(ctx.provider.terminate_nodes, [n.node_id for n in leftovers])
        terminated += len(leftovers)
    await asyncio.to_thread(_withdraw_services, ctx)
    shutil.rmtree(ctx.dir, ignore_errors=True)
    progress(ProgressEvent("terminate", "cluster is down"))
    return terminated


def _withdraw_services(ctx: ClusterContext) -> None:
    """Other clusters of the workspace must not find this one's services any more."""
    if not ctx.config.runtime.types:
        return
    from ..discovery.registry import withdraw

    with contextlib.suppress(CloudtikError):  # no registry on this provider: nothing was published
        withdraw(ctx.config)


def desired_counts(ctx: ClusterContext, workers: int, node_type: str | None) -> dict[str, int]:
    """Validate a scale request against min/max; `node_type` defaults to the only worker type."""
    types = ctx.config.worker_types()
    if node_type is None:
        if len(types) != 1:
            raise ConfigError(
                "node_type", f"cluster has several worker types; name one of: {', '.join(types)}"
            )
        node_type = next(iter(types))
    if node_type not in types:
        raise ConfigError(
            "node_type", f"unknown worker type {node_type!r} (known: {', '.join(types) or 'none'})"
        )
    limits = types[node_type]
    if not limits.min_workers <= workers <= limits.effective_max:
        raise ConfigError(
            "workers",
            f"cannot scale {node_type} to {workers}: allowed {limits.min_workers}..{limits.effective_max} "
            f"(available_node_types.{node_type}.min_workers/max_workers)",
        )
    return {node_type: workers}


async def scale(
    ctx: ClusterContext,
    desired: dict[str, int],
    *,
    progress: ProgressSink = ignore_progress,
    wait: bool = True,
    timeout: float = WAIT_FOR_WORKERS_SECONDS,
) -> None:
    """Ask the head's controller for `desired` workers per type; optionally wait until it is so."""
    head = await ctx.head()
    if head is None:
        raise ConfigError("", f"cluster {ctx.name!r} is not up")
    store = await ctx.store(head)
    await store.set_desired(desired)
    await remember_identity(ctx, store)
    progress(ProgressEvent("scale", ", ".join(f"{t}: {n} workers requested" for t, n in desired.items())))
    if wait:
        await wait_for_workers(ctx, desired, progress=progress, timeout=timeout)
        await remember_identity(ctx, store)
