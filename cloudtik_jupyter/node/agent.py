"""The node agent: ONE long-lived process per node that runs the node's services and heartbeats.

    python -m cloudtik_jupyter.node.agent run CONFIG            # JSON or YAML, see node/config.py
    python -m cloudtik_jupyter.node.agent ctl RUN_DIR OP [NAME]  # status|start|stop|restart|remove|shutdown

What it does:
- writes its pid to ``<run_dir>/agent.pid``; stops services a crashed predecessor left behind
  (recorded with their start times in ``<run_dir>/services.json``, so only those PIDs);
- starts the configured services in order, each waiting for the previous one's health check (services
  of different `chain`s, e.g. the head's store and a runtime's daemons, start side by side), and
  restarts one that exits (bounded, with backoff);
- every `heartbeat_interval` (and at once when a service changes state) sends the node's
  processes and metrics to the head's state store, registers the node when its shard doesn't know
  it, and forwards service events to the cluster's event log; when the head's Redis is down it
  retries with backoff (0.1 s doubling to 1 s) and re-registers once it is back;
- on SIGTERM / SIGINT or a ``shutdown`` request: stops its services (only its own process groups,
  by PID, in reverse order), removes its pid file and socket, exits 0.

Control channel: a Unix socket ``<run_dir>/agent.sock`` (0600), newline-delimited JSON; see
node/control.py (`AgentClient`). Services added through it are not written back to the config.

The Redis password comes from ``$CLOUDTIK_REDIS_PASSWORD``, else ``redis_password_file``, else the
password file named in the endpoints file; never from argv.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import random
import signal
import sys
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from ..errors import CloudtikError
from ..paths import ensure_private_dir
from ..state.records import NodeRecord, ProcessRecord, ProcessStatus
from .activity import ActivitySampler, BusyHook, runtime_busy_hooks
from .config import AgentConfig, ServiceSpec, control_socket_path, load_agent_config
from .control import OPS, AgentClient, ControlReply, ControlRequest, serve
from .metrics import MetricsSampler
from .process_table import ProcessTable
from .processes import load_owned, read_pid_file, save_owned, terminate, write_pid_file
from .rediscover import changed, runtime_specs
from .supervisor import Service, ServiceNotice

if TYPE_CHECKING:
    from ..state.store import StateStore

log = logging.getLogger("cloudtik.agent")

AGENT_MODULE = "cloudtik_jupyter.node.agent"
BACKOFF_START, BACKOFF_CAP = 0.1, 1.0


class NodeAgent:
    def __init__(
        self, config: AgentConfig, *, password: str | None = None, keeper_pid: int | None = None
    ) -> None:
        self.config = config
        self._keeper_pid = keeper_pid
        self._endpoints = config.endpoints()
        self._password = password or self._endpoints.read_password(config.redis_password_file)
        self._services: dict[str, Service] = {}
        table = ProcessTable()  # one read of the process table serves both samplers
        self._sampler = MetricsSampler(table)
        self._activity = ActivitySampler(table=table)  # its runtime hooks: in `run`, once the services spawned
        self._notices: deque[ServiceNotice] = deque(maxlen=500)  # kept through a Redis outage
        self._store: StateStore | None = None
        self._registered = False
        self._reachable: bool | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._rediscovery: asyncio.Task[None] | None = None
        self._rediscover_error = ""

    def _busy_hooks(self) -> list[BusyHook]:
        c, node = self.config, self.config.runtime_node
        if node is None:
            return []
        from ..runtimes.base import node_info

        info = node_info("", c.node_id, c.kind, c.node_type, c.address, node)
        return runtime_busy_hooks(node.cluster_config, info)

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        cfg = self.config
        ensure_private_dir(cfg.run_dir)
        self._claim_pid_file()
        await self._reap_orphans()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        server = await serve(cfg.control_socket, self.handle)
        starting = asyncio.create_task(self._start_all(cfg.services), name="start-services")
        # What only heartbeats need loads in a thread while the services spawn (the store's client,
        # redis-py: ~0.1 s of imports; the runtimes' busy hooks: the cluster config parsed again): a
        # node's daemons are what `up` waits for, the first heartbeat can come a moment later.
        store = await asyncio.to_thread(importlib.import_module, "cloudtik_jupyter.state.store")
        self._activity.use_hooks(await asyncio.to_thread(self._busy_hooks))
        self._store = store.StateStore.connect(
            self._endpoints,
            self._password,
            timeout=2.0,
            source_address=cfg.source_address,
            username=cfg.redis_user,
        )
        heartbeats = asyncio.create_task(self._heartbeat_loop(), name="heartbeats")
        try:
            await self._stopping.wait()
            starting.cancel()  # a SIGTERM during a slow health check must not wait for it
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        finally:
            log.info("stopping %d services", len(self._services))
            server.close()
            heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeats
            if self._rediscovery is not None:
                self._rediscovery.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._rediscovery
            for service in reversed(list(self._services.values())):
                await service.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._report(), timeout=2.0)  # last word: all stopped
            await self._store.close()
            for path in (cfg.control_socket, cfg.owned_file, cfg.pid_file):
                path.unlink(missing_ok=True)
            log.info("agent stopped")

    async def _start_all(self, specs: list[ServiceSpec]) -> None:
        interval = self.config.rediscover_interval
        if interval is not None:  # a restarted agent starts with where consumed services are now
            specs = await self._rediscovered(specs) or specs
        chains: dict[str, list[ServiceSpec]] = {}
        for spec in specs:
            chains.setdefault(spec.chain, []).append(spec)

        async def start_chain(chain: list[ServiceSpec]) -> None:
            for spec in chain:
                await self._start(spec)

        await asyncio.gather(*(start_chain(chain) for chain in chains.values()))
        if interval is not None:
            self._rediscovery = asyncio.create_task(self._rediscover_loop(interval), name="rediscover")

    async def _rediscovered(self, specs: list[ServiceSpec]) -> list[ServiceSpec] | None:
        """`specs` with the runtime services worked out again, or None when that fails now."""
        try:
            fresh = {s.name: s for s in await asyncio.to_thread(runtime_specs, self.config)}
        except Exception as exc:  # the provider is down, the registry unreachable: keep what runs
            if str(exc) != self._rediscover_error:
                log.warning("looking up consumed services failed (%s); keeping the services as they are", exc)
                self._rediscover_error = str(exc)
            return None
        self._rediscover_error = ""
        return [fresh.get(s.name, s) for s in specs]

    async def _rediscover_loop(self, interval: float) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=interval)
            running = {name: s.spec for name, s in self._services.items()}
            fresh = await self._rediscovered(list(running.values()))
            for spec in changed(running, fresh or []):
                if self._stopping.is_set():
                    return
                message = "a service it uses moved (its cluster's head was replaced); restarting"
                self._on_notice(ServiceNotice(spec.name, "service-reconfigured", message))
                await self._start(spec)

    def request_stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def _claim_pid_file(self) -> None:
        pid = read_pid_file(self.config.pid_file)
        if pid is not None and pid != os.getpid():
            with contextlib.suppress(psutil.Error):
                if "cloudtik_jupyter.node." in " ".join(psutil.Process(pid).cmdline()):  # run or start
                    raise CloudtikError(f"a node agent (pid {pid}) already runs in {self.config.run_dir}")
        write_pid_file(self.config.pid_file)

    async def _reap_orphans(self) -> None:
        orphans = [p for p in load_owned(self.config.owned_file) if p.alive()]
        for p in orphans:
            log.warning("stopping %s (pid %d) left by a previous agent", p.name, p.pid)
        await asyncio.gather(*(asyncio.to_thread(terminate, p) for p in orphans))

    # -- services ----------------------------------------------------------------------------

    def _on_notice(self, notice: ServiceNotice) -> None:
        self._notices.append(notice)
        self._save_owned()
        self._wake.set()  # report the change now, not at the next period

    def _save_owned(self) -> None:
        owned = [o for s in self._services.values() if (o := s.owned()) is not None]
        save_owned(self.config.owned_file, owned)

    async def _start(self, spec: ServiceSpec) -> Service:
        old = self._services.get(spec.name)
        if old is not None and old.spec != spec:
            await old.stop()
            old = None
        service = old or Service(spec, self.config.logs_dir, self._on_notice)
        self._services[spec.name] = service
        service.start()
        await service.wait_settled()
        return service

    def _service(self, name: str | None) -> Service:
        if name is None or name not in self._services:
            known = ", ".join(self._services) or "none"
            raise CloudtikError(f"no service named {name!r} on this node (known: {known})")
        return self._services[name]

    def records(self) -> list[ProcessRecord]:
        out = []
        for s in self._services.values():
            usage = (
                self._sampler.tree(s.pid) if s.pid is not None and s.status != ProcessStatus.STOPPED else None
            )
            out.append(s.record(usage.cpu_percent, usage.memory_rss) if usage else s.record())
        return out

    async def handle(self, request: ControlRequest) -> ControlReply:
        op = request.op
        if op == "start":
            service = self._service(request.name)
            service.start()
            await service.wait_settled()
        elif op == "stop":
            await self._service(request.name).stop()
        elif op == "restart":
            service = self._service(request.name)
            await service.restart()
            await service.wait_settled()
        elif op == "add":
            if request.spec is None:
                raise CloudtikError("add needs a service spec")
            await self._start(request.spec)
        elif op == "remove":
            await self._service(request.name).stop()
            del self._services[request.name or ""]
            self._save_owned()
        elif op == "shutdown":
            asyncio.get_running_loop().call_soon(self.request_stop)
        return ControlReply(True, services=tuple(self.records()))

    # -- heartbeats --------------------------------------------------------------------------

    def _node_record(self) -> NodeRecord:
        c = self.config
        return NodeRecord(c.node_id, c.node_type, c.kind, c.address, "running", c.seq_id)

    async def _report(self) -> None:
        assert self._store is not None
        registered_now = False
        if not self._registered:
            await self._store.register_node(self._node_record())
            self._registered = registered_now = True
        # The agent's tree holds its services; its keeper is its parent.
        ours = (os.getpid(), self._keeper_pid) if self._keeper_pid else (os.getpid(),)
        activity = await self._activity.activity(ours)
        records, metrics = self.records(), self._sampler.node()
        unknown = await self._store.heartbeat(self.config.node_id, records, metrics, activity=activity)
        if unknown and not registered_now:  # its shard restarted empty
            await self._store.register_node(self._node_record())
        while self._notices:
            n = self._notices[0]
            await self._store.add_event(n.kind, f"{n.service}: {n.message}", self.config.node_id)
            self._notices.popleft()

    async def _heartbeat_loop(self) -> None:
        backoff = BACKOFF_START
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await self._report()
                if self._reachable is False:
                    log.info("state store reachable again")
                self._reachable, backoff = True, BACKOFF_START
                delay = self.config.heartbeat_interval
            except Exception as e:  # never let the heartbeat die: a silent node gets replaced
                from redis.exceptions import RedisError  # loaded with the store

                if not isinstance(e, (RedisError, OSError)):
                    log.exception("heartbeat failed")
                elif self._reachable is not False:
                    log.warning("state store unreachable (%s); retrying with backoff", e)
                self._reachable, self._registered = False, False
                delay = backoff * random.uniform(0.8, 1.2)
                backoff = min(backoff * 2, BACKOFF_CAP)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)


# -- command line ----------------------------------------------------------------------------


async def _ctl(target: Path, op: str, name: str | None) -> ControlReply:
    socket = control_socket_path(target) if target.is_dir() else target
    return await AgentClient.unix(socket).request(ControlRequest(op, name))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {AGENT_MODULE}", description="cloudtik node agent")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the agent (foreground)")
    run.add_argument("config", type=Path, help="agent config, JSON or YAML")
    ctl = sub.add_parser("ctl", help="send a request to a running agent")
    ctl.add_argument("target", type=Path, help="the agent's run dir or control socket")
    ctl.add_argument("op", choices=[op for op in OPS if op != "add"])
    ctl.add_argument("name", nargs="?")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.command == "run":
            config = load_agent_config(args.config)
            asyncio.run(NodeAgent(config).run())
            return 0
        reply = asyncio.run(_ctl(args.target, args.op, args.name))
        print(
            json.dumps(
                {"ok": reply.ok, "error": reply.error, "services": [s.to_obj() for s in reply.services]}
            )
        )
        return 0 if reply.ok else 1
    except CloudtikError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
