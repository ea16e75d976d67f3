"""The node agent as a real process: real services, real redis-server, real signals."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest
import yaml
from redis.exceptions import RedisError

from cloudtik_jupyter.node.config import AgentConfig, HealthCheck, ServiceSpec
from cloudtik_jupyter.node.control import AgentClient
from cloudtik_jupyter.node.processes import load_owned, terminate
from cloudtik_jupyter.state.records import ProcessRecord, ProcessStatus
from cloudtik_jupyter.state.redis_server import RedisPlan, RedisServers, prepare_redis, start_redis_servers
from cloudtik_jupyter.state.store import StateStore
from cloudtik_jupyter.waiting import wait_for

pytestmark = pytest.mark.integration


def private_loopback() -> str:
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(2, 250)}"


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class RedisFixture:
    def __init__(self, plan: RedisPlan) -> None:
        self.plan = plan
        self.servers: RedisServers | None = None
        self.started: list[psutil.Process] = []

    async def start(self) -> None:
        self.servers = await start_redis_servers(self.plan)
        self.started += [psutil.Process(p) for p in self.servers.pids]

    async def stop(self) -> None:
        if self.servers is not None:
            await self.servers.stop()
            self.servers = None


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisFixture]:
    fixture = RedisFixture(prepare_redis(tmp_path / "redis", private_loopback(), shards=2))
    await fixture.start()
    try:
        yield fixture
    finally:
        await fixture.stop()
        assert not [p.pid for p in fixture.started if p.is_running()], "redis-server left running"


@pytest.fixture
async def store(redis: RedisFixture) -> AsyncIterator[StateStore]:
    async with StateStore.connect(redis.plan.endpoints) as s:
        yield s


class Agent:
    """An agent process this test owns, plus what it needs to check on it."""

    def __init__(self, config: AgentConfig, config_path: Path, env: dict[str, str]) -> None:
        self.config = config
        self.config_path = config_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.seen: list[psutil.Process] = []  # every process of the node we ever saw

    def start(self) -> None:
        log = open(self.config_path.with_suffix(".out"), "ab")  # noqa: SIM115 - kept for the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cloudtik_jupyter.node.agent", "run", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        log.close()
        self.seen.append(psutil.Process(self.proc.pid))

    def snapshot(self) -> list[psutil.Process]:
        """The agent and all its descendants now (remembered for the final leak check)."""
        assert self.proc is not None
        tree = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        self.seen += tree
        return tree

    def client(self) -> AgentClient:
        return AgentClient.unix(self.config.control_socket)

    def output(self) -> str:
        return (self.config_path.with_suffix(".out")).read_text(errors="replace")

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for owned in load_owned(self.config.owned_file):  # in case the agent could not
            terminate(owned, timeout=2)
        leaked = [p.pid for p in self.seen if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        for p in self.seen:
            if p.is_running():
                p.kill()
        assert not leaked, f"processes left behind: {leaked}\n{self.output()}"


class AgentFactory:
    """Starts agents for one node address; `cleanup` stops them and checks nothing leaked."""

    def __init__(self, tmp_path: Path, redis: RedisFixture) -> None:
        self.tmp_path = tmp_path
        self.redis = redis
        self.node_ip = private_loopback()
        self.agents: list[Agent] = []

    def __call__(
        self, services: list[ServiceSpec], *, node_id: str = "worker-1", password_by: str = "file"
    ) -> Agent:
        endpoints = self.redis.plan.endpoints
        env = dict(os.environ)
        env.pop("CLOUDTIK_REDIS_PASSWORD", None)
        if password_by == "env":
            env["CLOUDTIK_REDIS_PASSWORD"] = endpoints.read_password()
        config = AgentConfig.model_validate(
            {
                "node_id": node_id,
                "node_type": "worker-small",
                "kind": "worker",
                "address": self.node_ip,
                "run_dir": self.tmp_path / node_id,
                "redis": {
                    "primary": {"host": endpoints.primary.host, "port": endpoints.primary.port},
                    "shards": [{"host": s.host, "port": s.port} for s in endpoints.shards],
                },
                "redis_password_file": endpoints.password_file if password_by == "file" else None,
                "heartbeat_interval": 0.2,
                "services": [s.model_dump() for s in services],
            }
        )
        config_path = self.tmp_path / f"{node_id}.json"
        config.write(config_path)
        agent = Agent(config, config_path, env)
        self.agents.append(agent)
        agent.start()
        return agent

    def cleanup(self) -> None:
        errors = []
        for agent in self.agents:
            try:
                agent.cleanup()
            except AssertionError as e:
                errors.append(str(e))
        assert not errors, errors


@pytest.fixture
def make_agent(tmp_path: Path, redis: RedisFixture) -> Iterator[AgentFactory]:
    factory = AgentFactory(tmp_path, redis)
    try:
        yield factory
    finally:
        factory.cleanup()


def web_service(host: str, port: int) -> ServiceSpec:
    return ServiceSpec(
        name="web",
        argv=[sys.executable, "-m", "http.server", "--bind", host, str(port)],
        health=HealthCheck(host=host, port=port, timeout=20),
    )


# A service with a helper child in its process group, like a launcher script in front of java.
SLEEPER = ServiceSpec(name="sleeper", argv=["sh", "-c", "sleep 10000 & wait"], restart_delay=1.0)


async def running(store: StateStore, node_id: str, *names: str) -> dict[str, ProcessRecord] | None:
    procs = {p.name: p for p in await store.processes(node_id)}
    ok = all(n in procs and procs[n].status == ProcessStatus.RUNNING and procs[n].pid for n in names)
    return procs if ok else None


async def test_agent_heartbeats_with_process_health_and_metrics(
    make_agent: AgentFactory, store: StateStore
) -> None:
    port = free_port(make_agent.node_ip)
    agent = make_agent([web_service(make_agent.node_ip, port), SLEEPER], password_by="env")

    procs = await wait_for(
        lambda: running(store, "worker-1", "web", "sleeper"), timeout=20, what="both services running"
    )
    node = await store.node("worker-1")
    assert node is not None and node.last_heartbeat is not None, agent.output()
    assert (node.node_type, node.kind, node.address) == ("worker-small", "worker", make_agent.node_ip)
    assert (agent.config.pid_file.read_text().strip()) == str(agent.proc.pid)
    assert procs["web"].memory_rss > 1_000_000
    metrics = await store.metrics("worker-1")
    assert metrics is not None and metrics.memory_total > metrics.memory_used > 0

    first = node.last_heartbeat

    async def later_heartbeat() -> bool:
        again = await store.node("worker-1")
        return again is not None and (again.last_heartbeat or 0) > first

    await wait_for(later_heartbeat, timeout=5, what="a later heartbeat")
    with socket.create_connection((make_agent.node_ip, port), 2):
        pass  # the service really serves

    password = agent.env["CLOUDTIK_REDIS_PASSWORD"]
    assert not [p.pid for p in agent.snapshot() if password in " ".join(p.cmdline())]
    events = [e.kind for e in await store.events(50) if e.node_id == "worker-1"]
    assert "service-healthy" in events and "service-started" in events


async def test_agent_reports_a_killed_service_as_failed_and_restarts_it(
    make_agent: AgentFactory, store: StateStore
) -> None:
    make_agent([SLEEPER])
    procs = await wait_for(lambda: running(store, "worker-1", "sleeper"), timeout=20, what="sleeper running")
    old_pid = procs["sleeper"].pid
    assert old_pid is not None
    helper = psutil.Process(old_pid).children()[0]

    async with store.subscribe() as changes:
        os.kill(old_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        failed = None
        while failed is None:  # woken by the agent's immediate heartbeat, not a poll
            await changes.next(timeout=max(0.1, deadline - time.monotonic()))
            rows = {p.name: p for p in await store.processes("worker-1")}
            if rows["sleeper"].status == ProcessStatus.FAILED:
                failed = rows["sleeper"]
    assert failed.exit_code == -signal.SIGKILL
    helper.wait(timeout=5)  # the helper in its group went with it

    async def restarted() -> ProcessRecord | None:
        procs = await running(store, "worker-1", "sleeper")
        return procs["sleeper"] if procs and procs["sleeper"].pid != old_pid else None

    again = await wait_for(restarted, timeout=10, what="sleeper restarted")
    assert again.restarts == 1
    kinds = [e.message for e in await store.events(50) if e.kind == "service-exited"]
    assert any("sleeper" in m and "-9" in m for m in kinds), kinds


async def test_agent_survives_a_redis_restart(
    make_agent: AgentFactory, redis: RedisFixture, store: StateStore
) -> None:
    agent = make_agent([SLEEPER])
    await wait_for(lambda: running(store, "worker-1", "sleeper"), timeout=20, what="first heartbeat")

    await redis.stop()
    await redis.start()  # shards come back empty: the agent must re-register, not just heartbeat
    restarted_at = time.time()

    async def back() -> bool:
        node = await store.node("worker-1")
        return bool(node and node.node_type == "worker-small" and (node.last_heartbeat or 0) > restarted_at)

    await wait_for(back, timeout=15, what="the agent to re-register after the restart")
    assert await running(store, "worker-1", "sleeper"), agent.output()
    assert agent.proc is not None and agent.proc.poll() is None


async def test_sigterm_stops_every_service_and_leaves_nothing(
    make_agent: AgentFactory, store: StateStore
) -> None:
    port = free_port(make_agent.node_ip)
    agent = make_agent([web_service(make_agent.node_ip, port), SLEEPER])
    await wait_for(lambda: running(store, "worker-1", "web", "sleeper"), timeout=20, what="services running")
    tree = agent.snapshot()
    assert len(tree) >= 4  # agent, web, sh, sleep

    started = time.monotonic()
    agent.proc.send_signal(signal.SIGTERM)
    assert agent.proc.wait(timeout=20) == 0, agent.output()
    took = time.monotonic() - started
    _, alive = psutil.wait_procs(tree, timeout=5)
    assert not alive, alive
    assert took < 5, took
    assert not agent.config.pid_file.exists() and not agent.config.control_socket.exists()
    final = {p.name: p.status for p in await store.processes("worker-1")}
    assert final == {"web": ProcessStatus.STOPPED, "sleeper": ProcessStatus.STOPPED}


async def test_control_channel_starts_stops_and_adds_services(
    make_agent: AgentFactory, store: StateStore
) -> None:
    port = free_port(make_agent.node_ip)
    agent = make_agent([web_service(make_agent.node_ip, port)])
    await wait_for(lambda: agent.config.control_socket.exists() or None, timeout=20, what="control socket")
    client = agent.client()
    await wait_for(lambda: running(store, "worker-1", "web"), timeout=20, what="web running")

    status = {p.name: p.status for p in await client.stop("web")}
    assert status == {"web": ProcessStatus.STOPPED}
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((make_agent.node_ip, port), 2)
    status = {p.name: p.status for p in await client.start("web")}
    assert status == {"web": ProcessStatus.RUNNING}  # start returns once healthy

    extra = ServiceSpec(name="extra", argv=["sleep", "10000"])
    status = {p.name: p.status for p in await client.add(extra)}
    assert status == {"web": ProcessStatus.RUNNING, "extra": ProcessStatus.RUNNING}
    agent.snapshot()
    assert {p.name for p in await client.remove("extra")} == {"web"}

    # The same over the command line (what a start command over SSH would run).
    out = subprocess.run(
        [sys.executable, "-m", "cloudtik_jupyter.node.agent", "ctl", str(agent.config.run_dir), "status"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    reply = json.loads(out.stdout)
    assert reply["ok"] and [s[0] for s in reply["services"]] == ["web"]

    await client.shutdown()
    assert agent.proc.wait(timeout=20) == 0


async def test_a_new_agent_stops_services_a_killed_agent_left(
    make_agent: AgentFactory, store: StateStore
) -> None:
    first = make_agent([SLEEPER])
    procs = await wait_for(lambda: running(store, "worker-1", "sleeper"), timeout=20, what="sleeper running")
    orphans = first.snapshot()[1:]
    first.proc.kill()  # no chance to clean up: its services live on
    first.proc.wait()
    assert all(p.is_running() for p in orphans)

    make_agent([SLEEPER])  # same node, same run dir

    async def replaced() -> bool:
        now = await running(store, "worker-1", "sleeper")
        return bool(now and now["sleeper"].pid != procs["sleeper"].pid)

    await wait_for(replaced, timeout=20, what="the new agent's sleeper")
    _, alive = psutil.wait_procs(orphans, timeout=5)
    assert not alive


async def test_head_agent_runs_the_state_store_itself(tmp_path: Path) -> None:
    """On the head, redis-server is one of the agent's services: started first, stopped last."""
    head_ip = private_loopback()
    plan = prepare_redis(tmp_path / "redis", head_ip, shards=1)
    run_dir = tmp_path / "head"
    config = AgentConfig(
        node_id="head",
        node_type="head-type",
        kind="head",
        address=head_ip,
        seq_id=1,
        run_dir=run_dir,
        redis_endpoints_file=plan.endpoints_file,  # the password file is named in it
        heartbeat_interval=0.2,
        services=[*plan.service_specs(), SLEEPER],
    )
    config_path = tmp_path / "head.yaml"  # YAML works as well as JSON
    config_path.write_text(yaml.safe_dump(json.loads(config.model_dump_json())))
    env = {k: v for k, v in os.environ.items() if k != "CLOUDTIK_REDIS_PASSWORD"}
    agent = Agent(config, config_path, env)
    agent.start()
    try:
        async with StateStore.connect(plan.endpoints) as store:

            async def head_up() -> dict[str, ProcessRecord] | None:
                try:
                    return await running(store, "head", "redis-primary", "redis-shard-0", "sleeper")
                except (RedisError, OSError):
                    return None  # the agent has not started redis yet

            await wait_for(head_up, timeout=20, what="the head's agent to report its redis servers")
            node = await store.node("head")
            assert node is not None and (node.seq_id, node.kind) == (1, "head")
            tree = agent.snapshot()
            assert agent.proc is not None
            agent.proc.send_signal(signal.SIGTERM)
            assert agent.proc.wait(timeout=20) == 0, agent.output()
            _, alive = psutil.wait_procs(tree, timeout=5)
            assert not alive
    finally:
        agent.cleanup()


async def test_a_service_waits_for_what_it_requires_before_every_start(
    make_agent: AgentFactory, store: StateStore
) -> None:
    """Like a Spark worker and its master: spawned only once the required address listens, and again
    only once it listens after a restart; stopping the agent while it waits leaves nothing behind."""
    host = make_agent.node_ip
    port = free_port(host)
    dependent = SLEEPER.model_copy(
        update={"name": "dependent", "requires": HealthCheck(host=host, port=port), "restart_delay": 0.1}
    )
    agent = make_agent([dependent])

    async def waiting() -> bool:
        rows = {p.name: p for p in await store.processes("worker-1")}
        return "dependent" in rows and rows["dependent"].status == ProcessStatus.STARTING

    await wait_for(waiting, timeout=20, what="the dependent service to wait for its address")
    assert not [p for p in agent.snapshot()[1:] if "sleep" in " ".join(p.cmdline())], "spawned too early"
    events = [e.message for e in await store.events(50) if e.kind == "service-waiting"]
    assert any(f"{host}:{port}" in m for m in events), events

    server = socket.create_server((host, port))
    try:
        procs = await wait_for(lambda: running(store, "worker-1", "dependent"), timeout=20, what="started")
    finally:
        server.close()
    old_pid = procs["dependent"].pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)  # its prerequisite is gone now: the restart waits for it again
    await wait_for(waiting, timeout=20, what="the restart to wait for the address again")
    assert not [p for p in agent.snapshot()[1:] if "sleep" in " ".join(p.cmdline())]

    agent.proc.send_signal(signal.SIGTERM)
    assert agent.proc.wait(timeout=20) == 0, agent.output()


async def test_chains_start_side_by_side_and_in_order_within(
    make_agent: AgentFactory, store: StateStore
) -> None:
    """The head's store chain may take its time; a runtime's chain does not wait for it (a Spark master
    starting beside Redis), while within a chain each service still waits for the previous one's health."""
    host = make_agent.node_ip
    never = free_port(host)  # nothing listens here: the store chain's first service never gets healthy
    slow_store = SLEEPER.model_copy(
        update={"name": "store", "health": HealthCheck(host=host, port=never, timeout=60)}
    )
    after_store = SLEEPER.model_copy(update={"name": "after-store"})
    web_port = free_port(host)
    runtime_first = web_service(host, web_port).model_copy(update={"name": "runtime-a", "chain": "spark"})
    runtime_second = SLEEPER.model_copy(update={"name": "runtime-b", "chain": "spark"})
    agent = make_agent([slow_store, after_store, runtime_first, runtime_second])

    await wait_for(
        lambda: running(store, "worker-1", "runtime-a", "runtime-b"),
        timeout=30,
        what="the runtime chain to start while the store chain waits",
    )
    rows = {p.name: p for p in await store.processes("worker-1")}
    assert rows["store"].status == ProcessStatus.STARTING  # still waiting for its health check
    assert "after-store" not in rows or rows["after-store"].pid is None, "started before its chain's first"
    started = [e.message.split(":")[0] for e in await store.events(50) if e.kind == "service-started"]
    assert started.index("runtime-a") < started.index("runtime-b"), started
    agent.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    assert agent.proc.wait(timeout=20) == 0, agent.output()  # type: ignore[union-attr]
