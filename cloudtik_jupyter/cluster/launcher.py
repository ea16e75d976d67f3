"""`up` and `down`: the head from the client, workers with the same updater code.

Every step looks before it acts (find by tags, then create what is missing), so re-running `up` after an
interruption at any phase converges without duplicate nodes.
"""

from __future__ import annotations

import asyncio
import shutil

from ..errors import ConfigError
from ..providers import tags as T
from ..providers.base import NodeSpec
from ..providers.tags import NodeStatus
from .context import ClusterContext, NodeRef
from .progress import ProgressEvent, ProgressSink, ignore_progress
from .updater import needs_update, plan_for, update_node

LAUNCH_BATCH = 5
MAX_CONCURRENT_LAUNCHES = 10
MAX_CONCURRENT_UPDATES = 16


def _next_seq(nodes: list[NodeRef]) -> int:
    return max((n.seq for n in nodes), default=0) + 1


async def _launch(
    ctx: ClusterContext, node_type: str, kind: str, count: int, first_seq: int, progress: ProgressSink
) -> None:
    """Create `count` nodes of `node_type` in batches, launches running concurrently."""
    spec = NodeSpec(
        node_type=node_type,
        node_config=ctx.config.available_node_types[node_type].node_config,
        ssh_user=ctx.config.auth.ssh_user,
        ssh_public_key=ctx.public_key(),
    )
    sem = asyncio.Semaphore(MAX_CONCURRENT_LAUNCHES)

    async def batch(start: int, size: int) -> None:
        async with sem:
            for i in range(size):
                seq = first_seq + start + i
                tags = ctx.cluster_tags(
                    **{
                        T.NODE_KIND: kind,
                        T.NODE_TYPE: node_type,
                        T.NODE_STATUS: NodeStatus.PENDING.value,
                        T.NODE_SEQ: str(seq),
                        T.NODE_NAME: f"{ctx.name}-{kind}-{seq}",
                    }
                )
                await asyncio.to_thread(ctx.provider.create_nodes, spec, tags, 1)

    progress(ProgressEvent("launch", f"launching {count} {kind} node(s) of type {node_type}", node_kind=kind))
    await asyncio.gather(
        *(batch(start, min(LAUNCH_BATCH, count - start)) for start in range(0, count, LAUNCH_BATCH))
    )


async def ensure_head(ctx: ClusterContext, progress: ProgressSink = ignore_progress) -> NodeRef:
    head = await ctx.head()
    if head is None:
        await _launch(ctx, ctx.config.head_node_type, T.KIND_HEAD, 1, 1, progress)
        head = await ctx.head()
        assert head is not None, "provider lost the head it just created"
    if needs_update(head, plan_for(ctx.config, T.KIND_HEAD)):
        await update_node(ctx, head, None, progress=progress)
        head = await ctx.head()
        assert head is not None
    else:
        progress(ProgressEvent("up-to-date", "already up-to-date", head.node_id, head.kind))
    return head


async def ensure_workers(
    ctx: ClusterContext,
    head: NodeRef,
    progress: ProgressSink = ignore_progress,
    desired: dict[str, int] | None = None,
) -> list[NodeRef]:
    """Launch what is missing to reach `desired` (default min_workers) per type, then update in parallel."""
    want = (
        desired if desired is not None else {t: nt.min_workers for t, nt in ctx.config.worker_types().items()}
    )
    nodes = await ctx.nodes()
    workers = [n for n in nodes if n.kind == T.KIND_WORKER]
    seq = _next_seq(nodes)
    for node_type, count in want.items():
        missing = count - sum(1 for w in workers if w.node_type == node_type)
        if missing > 0:
            await _launch(ctx, node_type, T.KIND_WORKER, missing, seq, progress)
            seq += missing
    workers = await ctx.nodes(**{T.NODE_KIND: T.KIND_WORKER})
    sem = asyncio.Semaphore(MAX_CONCURRENT_UPDATES)
    plan = plan_for(ctx.config, T.KIND_WORKER)

    async def update(worker: NodeRef) -> None:
        async with sem:
            await update_node(ctx, worker, head, progress=progress)

    await asyncio.gather(*(update(w) for w in workers if needs_update(w, plan)))
    return await ctx.nodes(**{T.NODE_KIND: T.KIND_WORKER})


async def up(
    ctx: ClusterContext, *, progress: ProgressSink = ignore_progress, with_workers: bool = True
) -> None:
    ctx.save_record()
    ctx.public_key()  # generate the cluster key before anything is launched with it
    head = await ensure_head(ctx, progress)
    if with_workers:
        await ensure_workers(ctx, head, progress)


async def down(ctx: ClusterContext, *, progress: ProgressSink = ignore_progress) -> int:
    """Terminate every node of the cluster and forget its local record; returns how many were terminated."""
    nodes = await ctx.nodes()
    await ctx.close()
    if nodes:
        progress(ProgressEvent("terminate", f"terminating {len(nodes)} node(s)"))
        await asyncio.to_thread(ctx.provider.terminate_nodes, [n.node_id for n in nodes])
    shutil.rmtree(ctx.dir, ignore_errors=True)
    progress(ProgressEvent("terminate", "cluster is down"))
    return len(nodes)


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
    ctx: ClusterContext, desired: dict[str, int], *, progress: ProgressSink = ignore_progress
) -> None:
    """Launch or terminate workers of the given types to reach `desired`."""
    head = await ctx.head()
    if head is None:
        raise ConfigError("", f"cluster {ctx.name!r} is not up")
    await ensure_workers(ctx, head, progress, desired)
    workers = await ctx.nodes(**{T.NODE_KIND: T.KIND_WORKER})
    extra: list[str] = []
    for node_type, count in desired.items():
        of_type = [w for w in workers if w.node_type == node_type]
        extra += [w.node_id for w in sorted(of_type, key=lambda w: -w.seq)[: max(0, len(of_type) - count)]]
    if extra:
        progress(ProgressEvent("terminate", f"terminating {len(extra)} worker(s)"))
        await asyncio.to_thread(ctx.provider.terminate_nodes, extra)
