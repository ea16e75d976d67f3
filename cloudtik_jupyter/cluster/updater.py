"""Bring one node up to date: wait for SSH, run initialization commands on the node, prepare where its
commands run (its container in container mode), sync file mounts, run setup/start commands there.

The same code runs on the client (the head) and on the head's controller (workers). Progress is kept in
provider tags, so an interrupted update is simply re-run.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import config_hash
from ..config.schema import ClusterConfig
from ..container.spec import launch_key
from ..errors import CloudtikError, CommandFailed
from ..providers import tags as T
from ..providers.tags import NodeStatus
from ..records.layout import CONFIG_FILE, NODE_STATE
from ..records.node_env import NodeIdentity
from .context import ClusterContext, NodeRef
from .progress import ProgressEvent, ProgressSink, ignore_progress

if TYPE_CHECKING:
    from ..ssh.node_runner import NodeRunner

WAIT_FOR_SSH_SECONDS = 900.0
# The last start step on every node: the node agent and its services (node/start.py).
NODE_START_COMMAND = "python3 -m cloudtik_jupyter.node.start"
# Tries per command group, as CloudTik: initialization 30, setup 5, start 3.
INIT_TRIES, SETUP_TRIES, START_TRIES = 30, 5, 3


@dataclass(frozen=True)
class NodePlan:
    """What setting up a node of one kind means, derived from the config."""

    file_mounts: dict[str, str]
    initialization: list[str]
    setup: list[str]
    start: list[str]
    launch_hash: str


def runtime_setup_commands(config: ClusterConfig, kind: str) -> list[str]:
    if not config.runtime.types:
        return []
    from ..runtimes import enabled_runtimes

    return [c for runtime, cfg in enabled_runtimes(config) for c in runtime.setup_commands(cfg, kind)]


def plan_for(config: ClusterConfig, kind: str) -> NodePlan:
    head = kind == T.KIND_HEAD
    return NodePlan(
        file_mounts=dict(config.file_mounts),
        initialization=list(config.initialization_commands),
        setup=[
            *config.setup_commands,
            *(config.head_setup_commands if head else config.worker_setup_commands),
            *runtime_setup_commands(config, kind),
        ],
        start=[
            *config.start_commands,
            *(config.head_start_commands if head else config.worker_start_commands),
        ],
        launch_hash=launch_hash(config, kind),
    )


def launch_hash(config: ClusterConfig, kind: str) -> str:
    """`config_hash`, plus the container settings: switching modes or images re-runs setup."""
    base, container = config_hash(config, kind), launch_key(config)
    return hashlib.sha256(f"{base}\0{container}".encode()).hexdigest()[: len(base)] if container else base


def needs_update(node: NodeRef, plan: NodePlan) -> bool:
    return node.status != NodeStatus.UP_TO_DATE.value or node.tags.get(T.LAUNCH_HASH) != plan.launch_hash


def node_env(ctx: ClusterContext, node: NodeRef, head: NodeRef | None) -> dict[str, str]:
    head_ip = (head or node).address.internal_ip
    return NodeIdentity(
        ctx.name, node.node_id, node.kind, node.node_type, node.address.internal_ip, head_ip, node.seq
    ).to_env()


async def _set_status(ctx: ClusterContext, node: NodeRef, status: NodeStatus, **extra: str) -> None:
    await asyncio.to_thread(ctx.provider.set_node_tags, node.node_id, {T.NODE_STATUS: status.value, **extra})


async def _run_with_retries(
    runner: NodeRunner,
    ctx: ClusterContext,
    node: NodeRef,
    head: NodeRef | None,
    commands: list[str],
    tries: int,
    phase: str,
    progress: ProgressSink,
) -> None:
    target = ctx.target(node, head)
    env = node_env(ctx, node, head)
    for command in commands:
        for attempt in range(1, tries + 1):
            try:
                await runner.run(target, command, env=env, check=True)
                break
            except CommandFailed as exc:
                if attempt == tries:
                    raise CommandFailed(node.node_id, command, exc.exit_status, exc.output_tail) from None
                progress(
                    ProgressEvent(
                        phase,
                        f"{phase} command failed (try {attempt}/{tries}), retrying",
                        node.node_id,
                        node.kind,
                    )
                )
                await asyncio.sleep(min(0.05 * 2**attempt, 2.0))  # backoff between tries, not synchronisation


async def update_node(
    ctx: ClusterContext,
    node: NodeRef,
    head: NodeRef | None,
    *,
    progress: ProgressSink = ignore_progress,
    wait_for_ssh: float = WAIT_FOR_SSH_SECONDS,
    node_files: dict[str, Path] | None = None,
    start_only: bool = False,
) -> None:
    """Run the node's plan; on failure the node is tagged update-failed and the error re-raised.

    `node_files` (name -> local file) are copied into the node's state dir beside the cluster config.
    `start_only` restarts a node whose setup is current (recovery, a new head adopting it): files and
    start commands only, and its tags stay up-to-date unless it succeeds (the caller handles failure).
    """
    plan = plan_for(ctx.config, node.kind)
    target = ctx.target(node, head)
    runner = ctx.runner  # the node's commands run here: on the node, or in its container
    say = lambda phase, msg: progress(ProgressEvent(phase, msg, node.node_id, node.kind))  # noqa: E731
    done_tags = {T.LAUNCH_HASH: plan.launch_hash, **({T.HEAD_ID: head.node_id} if head else {})}
    try:
        if not start_only:
            await _set_status(ctx, node, NodeStatus.WAITING_FOR_SSH)
        say("ssh", f"waiting for SSH on {target.host}:{target.port}")
        await runner.wait_for_ssh(target, timeout=wait_for_ssh)
        if not start_only:
            await _set_status(ctx, node, NodeStatus.SETTING_UP)
        files = {CONFIG_FILE: ctx.config_file, **(node_files or {})}
        await asyncio.gather(
            *(runner.upload(target, local, f"{NODE_STATE}/{name}") for name, local in files.items())
        )
        if plan.initialization and not start_only:  # on the node itself: they prepare it (e.g. Docker)
            say("initialization", f"running {len(plan.initialization)} initialization command(s)")
            await _run_with_retries(
                ctx.ssh, ctx, node, head, plan.initialization, INIT_TRIES, "initialization", progress
            )
        prepared = await runner.prepare(
            target, node_env(ctx, node, head), kind=node.kind, node_type=node.node_type
        )
        if prepared:
            say("container", prepared)
        if not start_only:
            for remote, local in plan.file_mounts.items():
                say("file-mounts", f"syncing {local} -> {remote}")
                await runner.upload(target, Path(local), remote)
        for phase, commands, tries in (
            ("setup", [] if start_only else plan.setup, SETUP_TRIES),
            ("start", [*plan.start, NODE_START_COMMAND], START_TRIES),
        ):
            if commands:
                say(phase, f"running {len(commands)} {phase} command(s)")
                await _run_with_retries(runner, ctx, node, head, commands, tries, phase, progress)
        await _set_status(ctx, node, NodeStatus.UP_TO_DATE, **done_tags)
        say("up-to-date", "up-to-date")
    except asyncio.CancelledError:
        raise  # interrupted: the tags say where it stopped; re-running converges
    except CloudtikError as exc:
        if not start_only:
            await _set_status(ctx, node, NodeStatus.UPDATE_FAILED)
        say("failed", str(exc))
        raise
