"""The cluster controller: ``python -m cloudtik_jupyter.head.controller CONFIG`` (a service of the head's agent).

Each tick it reads the provider's node list (a periodic tick of a settled cluster reuses the last one, see
`Controller._listing`) and the state store, asks `policy.decide` what to do, and does it: launch workers
(sequence ids from the store), set them up in the background with the same updater the client uses,
recover or retire unhealthy ones, honour scale requests and the idle timeout. It wakes at once
on a scale request, a removed node, a node falling silent (silence.py) or when a setup finishes, and every
`head.controller_interval` otherwise. The node table it mirrors is what every view reads. All its state
is in the store and in provider tags, so a restarted controller carries on where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from redis.exceptions import RedisError

from .. import paths
from ..cluster.context import ClusterContext, NodeRef
from ..cluster.launcher import LAUNCH_CONCURRENCY, launch_node
from ..cluster.readmodel import node_record
from ..cluster.updater import plan_for, update_node
from ..concurrency import gather_bounded
from ..config import load_config
from ..config.schema import ClusterConfig
from ..errors import CloudtikError, NodeUnreachable
from ..providers import tags as T
from ..records.layout import (
    CLIENT_KEY_FILE,
    HEAD_KEY_FILE,
    REDIS_DIR,
    REDIS_ENDPOINTS_FILE,
    REDIS_PASSWORD_FILE,
)
from ..records.node_env import here
from ..runtimes.secret import SECRET_FILE
from ..state.acl import grant_node, revoke_node
from ..state.endpoints import RedisEndpoints
from ..state.records import ChangeKind, NodeHealth, NodeRecord
from ..state.store import StateStore
from .identity import IDENTITY_FILE, desired_tag, reservation, restore_identity, tag_identity, write_tags
from .observe import Observations
from .policy import Decision, TypeLimits, WorkerView, decide, healthy
from .silence import SilenceWatch, watch_silence

log = logging.getLogger("cloudtik.controller")

ADOPT_TIMEOUT = 60.0  # restarting the agent of a worker set up under a previous head
SETUP_SSH_WAIT = 120.0  # a new worker's SSH may take this long to come up (cloud VMs boot slowly)
UPDATE_CONCURRENCY = 32  # workers being set up (SSH sessions from the head) at a time
# Ticks in between view only workers that are not settled (Observations.split): the same decisions, checked
# by tests/unit/test_incremental_tick.py; a full view now and then costs little and guards the shortcut.
FULL_RECONCILE = 60.0


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside a tick: at 10,000 nodes a listing's records push the collector
    into a full pass (~20 ms) in most ticks. The count it is owed stays, so it runs at the first allocation
    after the tick, while the loop waits; reference counting frees the tick's own garbage meanwhile."""
    if not gc.isenabled():  # someone else's pause: theirs to end
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass
class Memory:
    """What the controller remembers between ticks (rebuilt harmlessly after a restart)."""

    seen: Observations = field(default_factory=Observations)
    updates: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    rows: dict[str, NodeRecord] | None = None  # the node table as this controller last wrote it
    listed: dict[str, tuple[str | None, ...]] = field(default_factory=dict)  # what each row was made from
    failed_in_a_row: dict[str, int] = field(default_factory=dict)  # node type -> workers retired as broken
    tagged_version: int = -1  # desired-count version last written into worker tags
    full_at: float | None = None  # when every worker was last viewed (monotonic)
    # The last listing, kept while the cluster is settled: a periodic tick with nothing to do reuses it
    quiet_listing: list[NodeRef] | None = None


class Controller:
    def __init__(
        self, config: ClusterConfig, ctx: ClusterContext, store: StateStore, state_dir: Path
    ) -> None:
        self.ctx = ctx
        self.store = store
        self.state_dir = state_dir
        self.memory = Memory()
        self.wake = asyncio.Event()
        self.silence = SilenceWatch()
        self._update_slots = asyncio.Semaphore(UPDATE_CONCURRENCY)
        self._config_mtime = self._mtime()
        self._use(config)

    def _use(self, config: ClusterConfig) -> None:
        self.config = config
        self.ctx.config = config
        self.limits = {
            name: TypeLimits(nt.min_workers, nt.effective_max) for name, nt in config.worker_types().items()
        }
        self.worker_hash = plan_for(config, T.KIND_WORKER).launch_hash
        self.memory.full_at = None

    def _mtime(self) -> float:
        try:
            return self.ctx.config_file.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    async def _reload_if_changed(self) -> None:
        """`up` with a changed config uploads it to the head; workers then get set up again."""
        mtime = self._mtime()
        if mtime == self._config_mtime:
            return
        self._config_mtime = mtime
        try:
            config = load_config(self.ctx.config_file, check_files=False)
        except CloudtikError as exc:
            await self._event("controller-error", f"ignoring the new cluster config: {exc}")
            return
        self._use(config)
        self.memory.failed_in_a_row.clear()
        await self._event("config-changed", "cluster config changed; workers will be set up again")

    # -- the loop -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await self._event("controller-started", f"controller started (pid {os.getpid()})")
        listener = asyncio.create_task(self._listen())
        silence = asyncio.create_task(
            watch_silence(
                self.store,
                lambda: self.memory.rows or {},
                lambda: self.config.head.heartbeat_interval,
                self.wake,
                self.silence,
            )
        )
        woken = True
        try:
            while not stop.is_set():
                self.wake.clear()  # before the tick: a wake during it (a node fell silent) ticks again
                try:
                    await self.tick(relist=woken)
                except (CloudtikError, RedisError, OSError) as exc:  # Redis restarting: next tick retries
                    log.warning("tick failed: %s", exc)
                    self.memory.quiet_listing = None
                    await self._event("controller-error", str(exc))
                woken = False
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=self.config.head.controller_interval)
                    woken = True
        finally:
            listener.cancel()
            silence.cancel()
            for task in self.memory.updates.values():
                task.cancel()

    async def _listen(self) -> None:
        """Wake the loop on scale requests and removed nodes, not only on its period."""
        while True:
            try:
                async with self.store.subscribe() as changes:
                    async for change in changes:
                        if change.kind == ChangeKind.SCALE:
                            self.memory.failed_in_a_row.clear()  # a new request: try launching again
                        if change.kind in (ChangeKind.SCALE, ChangeKind.NODE_REMOVED):
                            self.wake.set()
            except Exception as exc:  # Redis restarting: subscribe again
                log.info("change subscription lost (%s); resubscribing", exc)
                await asyncio.sleep(0.5)

    async def _event(self, kind: str, message: str, node_id: str | None = None) -> None:
        log.info("%s: %s", kind, message)
        with contextlib.suppress(Exception):
            await self.store.add_event(kind, message, node_id)

    # -- one tick -------------------------------------------------------------------------------

    async def tick(self, *, relist: bool = True) -> Decision:
        """One look and what follows from it. `relist` False (a periodic tick, nothing woke it) may reuse
        the last listing when the cluster was settled then (see `_listing`)."""
        with collector_paused():
            return await self._tick(relist)

    async def _tick(self, relist: bool) -> Decision:
        await self._reload_if_changed()
        now = time.time()
        nodes, reused = await self._listing(relist)
        head = next((n for n in nodes if n.kind == T.KIND_HEAD), None)
        workers = [n for n in nodes if n.kind == T.KIND_WORKER]
        if self.memory.rows is None:  # once per start: what a previous controller (or head) left
            restored = await restore_identity(self.store, self.state_dir / IDENTITY_FILE, workers)
            if restored:
                await self._event("identity-restored", restored)
            self.memory.rows = {r.node_id: r for r in await self.store.nodes()}
        if not reused:
            await self._sync_records(nodes, self.memory.rows)
        beats, health, wanted, tries = await asyncio.gather(
            self.store.heartbeat_times(),
            self.store.all_health(),
            self.store.desired_state(),
            self.store.update_tries(),
        )
        in_flight = {n for n, t in self.memory.updates.items() if not t.done()}
        idle_timeout = self.config.idle_timeout_minutes * 60
        views, settled = self._views(workers, head, beats, health, now, wanted.counts, in_flight, tries)
        tries = await self._clear_tries_of_healthy(views, tries)
        requested = wanted.now - wanted.requested_at if wanted.requested_at is not None else float("inf")
        decision = decide(
            self.limits,
            wanted.counts,
            views,
            update_tries=tries,
            in_flight=in_flight,
            heartbeat_timeout=self.config.head.heartbeat_timeout,
            idle_timeout=idle_timeout,
            max_update_tries=self.config.head.max_update_tries,
            suspended=self._suspended(),
            since_request=requested,
            settled=settled,
        )
        await self._release(decision, wanted.counts, {v.node_id: v.node_type for v in views})
        by_id = {w.node_id: w for w in workers}
        await self._count_failures(decision, by_id)
        await self._terminate(decision.terminate)
        for node_type in self._suspended():  # including types whose workers broke in this very tick
            decision.launch.pop(node_type, None)
        views_by_id = {v.node_id: v for v in views}
        for node_id in decision.update:
            node, view = by_id[node_id], views_by_id[node_id]
            restart = node.status == T.NodeStatus.UP_TO_DATE.value and not view.stale
            await self._start_update(node, head, restart=restart, adopt=view.adopt)
        await self._launch(decision.launch, head)
        kept = [w for w in workers if w.node_id not in decision.terminate]
        self.memory.tagged_version = await tag_identity(
            self.store, self.ctx.provider, kept, self.memory.tagged_version
        )
        quiet = (
            decision.empty
            and not views
            and all(t.done() for t in self.memory.updates.values())
            and head is not None
            and head.status == T.NodeStatus.UP_TO_DATE.value  # a client setting the head up re-tags it
        )
        self.memory.quiet_listing = nodes if quiet else None
        return decision

    async def _listing(self, relist: bool) -> tuple[list[NodeRef], bool]:
        """The provider's nodes, and whether they are the last tick's listing reused.

        Reused only when nothing could have changed it unseen: the last tick found every worker settled and
        the head up-to-date, and did nothing; nothing woke this one (a scale request, a removed node, a
        finished setup and a node falling silent all wake the loop); no node is silent now; and no full
        reconcile is due. Whatever else changes a listing (a node terminated from outside stops heartbeating
        first) is seen by the full reconcile every FULL_RECONCILE seconds. On a cloud that is one listing
        call saved per periodic tick; at 10,000 nodes most of a quiet tick (benchmarks/bench_controller.py)."""
        last = self.memory.quiet_listing
        full_due = self.memory.full_at is None or time.monotonic() - self.memory.full_at >= FULL_RECONCILE
        if relist or last is None or full_due or self.silence.suspected:
            return await self.ctx.nodes_unordered(), False
        return last, True

    def _views(
        self,
        workers: list[NodeRef],
        head: NodeRef | None,
        beats: dict[str, float],
        health: dict[str, NodeHealth],
        now: float,
        desired: dict[str, int],
        in_flight: set[str],
        tries: dict[str, int],
    ) -> tuple[list[WorkerView], dict[str, int]]:
        """Views of the workers `decide` must look at, and per type the settled ones it only counts
        (incremental); a view of every worker on the first tick and every FULL_RECONCILE seconds."""
        mono = time.monotonic()
        full = self.memory.full_at is None or mono - self.memory.full_at >= FULL_RECONCILE
        if full:
            self.memory.full_at = mono
        return self.memory.seen.for_tick(
            workers,
            head,
            beats,
            health,
            now,
            mono,
            full=full,
            worker_hash=self.worker_hash,
            config=self.config.head,
            limits=self.limits,
            desired=desired,
            in_flight=in_flight,
            tries=tries,
            idle_timeout=self.config.idle_timeout_minutes * 60,
        )

    def _suspended(self) -> frozenset[str]:
        limit = self.config.head.max_failed_launches
        return frozenset(t for t, n in self.memory.failed_in_a_row.items() if n >= limit)

    async def _clear_tries_of_healthy(self, views: list[WorkerView], tries: dict[str, int]) -> dict[str, int]:
        """Tries count attempts since the node was last healthy: a heartbeating, healthy node starts over."""
        timeout = self.config.head.heartbeat_timeout
        in_flight = {n for n, t in self.memory.updates.items() if not t.done()}
        for v in views:
            if tries.get(v.node_id) and v.node_id not in in_flight and healthy(v, timeout):
                await self.store.clear_update_tries(v.node_id)
                del tries[v.node_id]
        return tries

    async def _release(self, decision: Decision, requested: dict[str, int], types: dict[str, str]) -> None:
        """Lower each request by the idle workers released; a request that changed meanwhile wins."""
        by_type: dict[str, list[str]] = {}
        for node_id in decision.released:
            by_type.setdefault(types[node_id], []).append(node_id)
        for node_type, ids in by_type.items():
            before = requested.get(node_type)
            after = decision.desired[node_type]
            if await self.store.release_desired(node_type, before, after):
                reasons = "; ".join(f"{n}: {decision.released[n]}" for n in ids)
                await self._event(
                    "idle-release",
                    f"released {len(ids)} idle {node_type} worker(s) ({reasons}); "
                    f"desired {node_type} {before if before is not None else '-'} -> {after}",
                )
            else:  # a scale request landed mid-tick: keep everything; the next tick decides again
                for node_id in ids:
                    decision.terminate.pop(node_id, None)
                    decision.released.pop(node_id, None)
                self.wake.set()

    async def _count_failures(self, decision: Decision, by_id: dict[str, NodeRef]) -> None:
        for node_id in decision.broken:
            node = by_id.get(node_id)
            if node is None:
                continue
            count = self.memory.failed_in_a_row.get(node.node_type, 0) + 1
            self.memory.failed_in_a_row[node.node_type] = count
            if count == self.config.head.max_failed_launches:
                await self._event(
                    "launch-suspended",
                    f"{count} {node.node_type} workers in a row failed setup; not replacing them until the "
                    "config changes or a scale request comes",
                )

    async def _sync_records(self, nodes: list[NodeRef], records: dict[str, NodeRecord]) -> None:
        """Mirror provider state into the node table (the views' read model, cluster/readmodel.py); drop
        rows of nodes the provider no longer has, on the tick that first misses them (a killed worker
        leaves every view within one tick; the client's own kill-node marks it at once)."""
        alive = {n.node_id for n in nodes}
        changed = []
        listed = self.memory.listed
        for n in nodes:
            tags = n.tags  # what the row is made of, compared as it comes: most nodes did not change
            key = (
                tags.get(T.NODE_TYPE),
                tags.get(T.NODE_KIND),
                tags.get(T.NODE_STATUS),
                tags.get(T.NODE_SEQ),
                tags.get(T.LAUNCH_HASH),
                n.address.internal_ip,
                n.address.external_ip,
            )
            if listed.get(n.node_id) == key and n.node_id in records:
                continue
            listed[n.node_id] = key
            row = node_record(n)
            if records.get(n.node_id) != row:
                changed.append(row)
                records[n.node_id] = row
        if changed:
            await self.store.upsert_nodes(changed)
        for node_id, row in list(records.items()):
            if node_id not in alive:
                del records[node_id]
                listed.pop(node_id, None)
                await self.store.remove_node(node_id)
                await revoke_node(self.store, self.state_dir / REDIS_DIR, node_id)
                await self.store.clear_update_tries(node_id)
                self._forget(node_id)
                await self._event(
                    "node-lost", f"{row.kind or 'node'} {node_id} (seq {row.seq_id}) is gone", node_id
                )

    def _forget(self, node_id: str) -> None:
        self.memory.seen.forget(node_id)
        task = self.memory.updates.pop(node_id, None)
        if task is not None:
            task.cancel()
        self.ctx.ssh.drop(node_id)
        self.ctx.runner.host_keys.forget(node_id)

    async def _terminate(self, reasons: dict[str, str]) -> None:
        if not reasons:
            return
        await asyncio.to_thread(self.ctx.provider.terminate_nodes, list(reasons))
        for node_id, why in reasons.items():
            self._forget(node_id)
            if self.memory.rows is not None:
                self.memory.rows.pop(node_id, None)
            self.memory.listed.pop(node_id, None)
            await self.store.remove_node(node_id)
            await revoke_node(self.store, self.state_dir / REDIS_DIR, node_id)
            await self.store.clear_update_tries(node_id)
            await self._event("node-terminated", f"terminated {node_id}: {why}", node_id)

    # -- launching and setting up -------------------------------------------------------------

    async def _launch(self, counts: dict[str, int], head: NodeRef | None) -> None:
        if head is None or not counts:
            return
        nodes = await self.ctx.nodes()
        counter = await self.store.ensure_seq_at_least(max((n.seq for n in nodes), default=1))
        workers = [(n.node_id, n.node_type, n.tags) for n in nodes if n.kind == T.KIND_WORKER]
        await write_tags(self.ctx.provider, reservation(workers, counter + sum(counts.values())))
        wanted = await self.store.desired_state()

        async def one(node_type: str) -> None:
            seq = await self.store.next_seq_id()
            extra = {T.SEQ_HWM: str(seq)}
            if node_type in wanted.counts:
                extra[T.DESIRED] = desired_tag(wanted.counts[node_type], wanted.version)
            node_id = await launch_node(self.ctx, node_type, T.KIND_WORKER, seq, extra)
            await self._event("node-launched", f"launched worker {node_id} ({node_type}, seq {seq})", node_id)
            refs = await self.ctx.nodes(**{T.NODE_KIND: T.KIND_WORKER})
            node = next((r for r in refs if r.node_id == node_id), None)
            if node is not None:
                await self._start_update(node, head, restart=False, adopt=False)

        # Batched: a request for thousands of workers makes at most LAUNCH_CONCURRENCY calls at a time.
        types = (t for t, n in counts.items() for _ in range(n))
        await gather_bounded(one, types, LAUNCH_CONCURRENCY, keep_going=False)

    async def _start_update(self, node: NodeRef, head: NodeRef | None, *, restart: bool, adopt: bool) -> None:
        current = self.memory.updates.get(node.node_id)
        if current is not None and not current.done():
            return
        if restart:  # one try per attempt, counted when it starts (a crash mid-attempt still counts)
            tries = await self.store.add_update_try(node.node_id)
            if adopt:
                previous = node.tags.get(T.HEAD_ID, "?")
                message = f"adopting {node.node_id} (set up by head {previous})"
                await self._event("node-adopting", message, node.node_id)
            else:
                await self._event("node-recovering", f"recovering {node.node_id} (try {tries})", node.node_id)
        # A silent node gets `recovery_timeout`; a node set up under the previous head is most likely
        # healthy, just reporting to a dead store: give its agent's restart time to finish.
        deadline = self.config.head.recovery_timeout
        deadline = max(deadline, ADOPT_TIMEOUT) if adopt else deadline
        self.memory.updates[node.node_id] = asyncio.create_task(
            self._update(node, head, deadline if restart else None)
        )

    async def _update(self, node: NodeRef, head: NodeRef | None, restart: float | None) -> None:
        """Set the node up (`restart` None) or restart its agent within `restart` seconds."""
        redis = self.state_dir / REDIS_DIR
        try:
            files = {
                f"{REDIS_DIR}/{REDIS_ENDPOINTS_FILE}": redis / REDIS_ENDPOINTS_FILE,
                # The worker's own restricted Redis user, never the admin password (state/acl.py); an
                # adopted worker gets its user made in the new head's store here.
                f"{REDIS_DIR}/{REDIS_PASSWORD_FILE}": await grant_node(self.store, redis, node.node_id),
                SECRET_FILE: self.state_dir / SECRET_FILE,  # the runtimes' key (Spark authentication)
            }
            async with self._update_slots:  # a restart's deadline starts once it has a slot
                if restart is not None:
                    await self._restart(node, head, files, restart)
                else:
                    await update_node(self.ctx, node, head, node_files=files, wait_for_ssh=SETUP_SSH_WAIT)
        except CloudtikError as exc:
            if restart is not None:
                await self._event(
                    "node-recovery-failed", f"{node.node_id}: restart failed: {exc}", node.node_id
                )
            else:
                tries = await self.store.add_update_try(node.node_id)
                await self._event(
                    "node-update-failed", f"{node.node_id}: setup failed (try {tries}): {exc}", node.node_id
                )
        else:
            if restart is not None:
                self.memory.seen.restarted(node.node_id)
            else:
                await self.store.clear_update_tries(node.node_id)
            self.memory.failed_in_a_row.pop(node.node_type, None)
            await self._event("node-up-to-date", f"worker {node.node_id} is up-to-date", node.node_id)
        self.wake.set()

    async def _restart(
        self, node: NodeRef, head: NodeRef | None, files: dict[str, Path], deadline: float
    ) -> None:
        """Restart a set-up node's agent within `deadline` seconds from the first SSH attempt."""
        self.ctx.ssh.drop(node.node_id)  # a connection cached before the node hung would wait on keepalives
        try:
            await asyncio.wait_for(
                update_node(self.ctx, node, head, node_files=files, wait_for_ssh=deadline, start_only=True),
                timeout=deadline,
            )
        except asyncio.TimeoutError:
            self.ctx.ssh.drop(node.node_id)
            raise NodeUnreachable(f"no answer within {deadline:g}s") from None


def controller_context(config: ClusterConfig, state_dir: Path) -> ClusterContext:
    """The head's own view: its key (never the user's), the user's public key for workers it launches."""
    client_key = (state_dir / CLIENT_KEY_FILE).read_text().strip()
    return ClusterContext(
        config,
        state_dir=state_dir,
        key_path=state_dir / HEAD_KEY_FILE,
        extra_authorized_keys=(client_key,),
        on_node=here(),
    )


async def main_async(config_path: Path) -> None:
    config = load_config(config_path, check_files=False)
    state_dir = paths.node_state_dir()
    ctx = controller_context(config, state_dir)
    endpoints = RedisEndpoints.load(state_dir / REDIS_DIR / REDIS_ENDPOINTS_FILE)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with StateStore.connect(endpoints, endpoints.read_password()) as store:
        try:
            await Controller(config, ctx, store, state_dir).run(stop)
        finally:
            await ctx.close()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if len(sys.argv) != 2:
        print("usage: python -m cloudtik_jupyter.head.controller CLUSTER_CONFIG", file=sys.stderr)
        return 2
    asyncio.run(main_async(Path(sys.argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
