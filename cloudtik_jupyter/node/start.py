"""Start a node's agent and services: ``python -m cloudtik_jupyter.node.start``.

The updater runs this as the last start step on every node. It reads the cluster config the updater
uploaded (``~/.cloudtik/node/cluster.yaml``) and the node's identity from ``CLOUDTIK_*`` variables, works
out the node's services (on the head: the Redis state store and the cluster controller; everywhere: the
enabled runtimes' services), and (re)starts ONE detached node agent that runs them. Re-running with the
same services leaves a running agent alone, so an unchanged `up` disturbs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import signal
import sys
from pathlib import Path

import psutil

from .. import paths
from ..config import load_config
from ..config.schema import ClusterConfig
from ..daemon import redirect_stdio
from ..errors import CloudtikError, Timeout
from ..providers import tags as T
from ..records.layout import (
    AGENT_CONFIG_FILE,
    AGENT_DIR,
    CONFIG_FILE,
    REDIS_DIR,
    REDIS_ENDPOINTS_FILE,
    REDIS_PASSWORD_FILE,
    RUNTIME_DIR,
)
from ..records.node_env import NodeIdentity, NotOnANode
from ..runtimes.secret import SECRET_FILE
from ..waiting import wait_for
from .config import AgentConfig, RedisConfig, RuntimeNode, ServiceSpec, control_socket_path
from .control import AgentClient, ControlRequest
from .keeper import keep, keeper_pid
from .processes import read_pid_file

CONTROLLER_MODULE = "cloudtik_jupyter.head.controller"
AGENT_READY_TIMEOUT = 60.0


def head_services(config: ClusterConfig, node: NodeIdentity, state: Path) -> tuple[list[ServiceSpec], Path]:
    from ..state.redis_server import prepare_redis

    plan = prepare_redis(state / REDIS_DIR, node.ip, shards=config.head.redis_shards)
    controller = ServiceSpec(
        name="controller",
        argv=[sys.executable, "-m", CONTROLLER_MODULE, str(state / CONFIG_FILE)],
        max_restarts=100,  # the controller must come back; its state is in Redis and provider tags
        restart_delay=0.1,  # at once (then backing off): nothing heals the cluster while it is down
        stable_after=10.0,
    )
    return [*plan.service_specs(), controller], plan.endpoints_file


def runtime_node(config: ClusterConfig, node: NodeIdentity, state: Path) -> RuntimeNode:
    resources = config.available_node_types[node.node_type].resources if node.node_type else {}
    return RuntimeNode(
        cluster_config=state / CONFIG_FILE,
        head_ip=node.head_ip,
        runtime_dir=state / RUNTIME_DIR,
        resources=dict(resources),
        secret_file=state / SECRET_FILE,
    )


def runtime_services(config: ClusterConfig, node: NodeIdentity, state: Path) -> list[ServiceSpec]:
    from ..runtimes import enabled_runtimes, runtime_environment
    from ..runtimes.base import node_info

    info = node_info(
        node.cluster, node.node_id, node.kind, node.node_type, node.ip, runtime_node(config, node, state)
    )
    # Each runtime's daemons start in their own chain, beside the head's store and controller.
    specs = [
        s if s.chain else s.model_copy(update={"chain": runtime.name})
        for runtime, cfg in enabled_runtimes(config)
        for s in runtime.services(cfg, info)
    ]
    # Resolved on every node start, with or without services here: a consumed cluster that publishes
    # nothing fails setup, naming the key.
    env = runtime_environment(config, node.head_ip) if config.runtime.types else {}
    return [s.model_copy(update={"env": {**env, **s.env}}) if env else s for s in specs]


def credentials_digest(endpoints_file: Path, password_file: Path) -> str:
    """Changes when a new head hands out a new store (address or password): the agent must restart."""
    digest = hashlib.sha256()
    for path in (endpoints_file, password_file):
        with contextlib.suppress(OSError):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def consumes(config: ClusterConfig) -> bool:
    from ..runtimes import consumed_clusters

    return bool(config.runtime.types) and bool(consumed_clusters(config))


def agent_config(config: ClusterConfig, node: NodeIdentity, state: Path) -> AgentConfig:
    services: list[ServiceSpec] = []
    redis: dict[str, object] = {}
    if node.kind == T.KIND_HEAD:
        services, endpoints_file = head_services(config, node, state)
        redis["redis_endpoints_file"] = endpoints_file
    else:
        # Uploaded by the head's controller: addresses, and this worker's own (restricted) user's password
        # as a 0600 file.
        from ..state.acl import node_user

        endpoints = json.loads((state / REDIS_DIR / REDIS_ENDPOINTS_FILE).read_text())
        redis["redis"] = RedisConfig.model_validate({k: endpoints[k] for k in ("primary", "shards")})
        redis["redis_password_file"] = state / REDIS_DIR / REDIS_PASSWORD_FILE
        redis["redis_user"] = node_user(node.node_id)
    redis["credentials"] = credentials_digest(
        state / REDIS_DIR / REDIS_ENDPOINTS_FILE, state / REDIS_DIR / REDIS_PASSWORD_FILE
    )
    services += runtime_services(config, node, state)
    return AgentConfig.model_validate(
        {
            "node_id": node.node_id,
            "node_type": node.node_type,
            "kind": node.kind,
            "address": node.ip,
            "seq_id": node.seq,
            "source_address": node.ip,
            "runtime_node": runtime_node(config, node, state) if config.runtime.types else None,
            "run_dir": state / AGENT_DIR,
            "heartbeat_interval": config.head.heartbeat_interval,
            "services": services,
            "rediscover_interval": config.head.discovery_interval if consumes(config) else None,
            **redis,
        }
    )


def agent_pid(run_dir: Path) -> int | None:
    """The running agent of this node, if any (a forked agent keeps this module's command line)."""
    pid = read_pid_file(run_dir / "agent.pid")
    if pid is None or pid == os.getpid():
        return None
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        if proc.status() != psutil.STATUS_ZOMBIE and "cloudtik_jupyter.node." in " ".join(proc.cmdline()):
            return pid
    return None


async def stop_agent(run_dir: Path) -> None:
    """Stop the node's agent (its services with it) and its keeper."""
    agent, keeper = agent_pid(run_dir), keeper_pid(run_dir)
    if agent is not None:
        with contextlib.suppress(OSError, CloudtikError):
            await AgentClient.unix(control_socket_path(run_dir), timeout=10).shutdown()
    if keeper is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(keeper, signal.SIGTERM)  # it forwards the stop to an agent that did not answer
    pids = [p for p in (agent, keeper) if p is not None]
    await wait_for(
        lambda: not any(psutil.pid_exists(p) and _running(p) for p in pids),
        timeout=30,
        what=f"node agent {agent} and keeper {keeper} to stop",
    )


def _running(pid: int) -> bool:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    return False


def fork_keeper(config: AgentConfig) -> None:
    """Start the node agent under its keeper (node/keeper.py), detached: everything is imported already,
    so this saves starting (and importing into) a second interpreter on every node."""
    paths.ensure_private_dir(config.run_dir)
    if os.fork() != 0:
        return
    try:
        os.setsid()  # outlives this command and its SSH session
        redirect_stdio(config.run_dir / "agent.log")
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        keep(config)
    except BaseException:  # the child must never return into the caller's code
        logging.getLogger("cloudtik.keeper").exception("agent keeper failed")
    os._exit(1)


async def agent_ready(run_dir: Path, expected: list[str]) -> bool:
    try:
        services = await AgentClient.unix(control_socket_path(run_dir), timeout=5).status()
    except (OSError, CloudtikError):
        return False
    running = {s.name for s in services if s.status.value == "running"}
    return set(expected) <= running


async def restart_stopped(config: AgentConfig) -> None:
    """Ask a running agent to start the services that are not running (those that gave up restarting)."""
    client = AgentClient.unix(control_socket_path(config.run_dir), timeout=10)
    with contextlib.suppress(OSError, CloudtikError):
        services = await client.status()
        for s in services:
            if s.status.value in ("failed", "stopped"):
                await client.request(ControlRequest("start", s.name))


async def wait_until_ready(config: AgentConfig) -> None:
    names = [s.name for s in config.services]
    log = config.run_dir / "agent.log"
    try:
        await wait_for(
            lambda: agent_ready(config.run_dir, names),
            timeout=AGENT_READY_TIMEOUT,
            max_interval=0.05,  # every wait here is on the critical path of `up`
            what=f"the node agent's services ({', '.join(names) or 'none'})",
        )
    except Timeout as exc:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
        raise CloudtikError(f"{exc}; the end of {log}:\n{tail}") from None


def start(state: Path) -> None:
    """Start the node's agent (under its keeper) unless one runs with the same services; then make sure
    every service runs. No event loop runs in this process while it forks (asyncio.run is used only
    before and after)."""
    config = load_config(state / CONFIG_FILE, check_files=False)
    try:
        node = NodeIdentity.from_env()
    except NotOnANode as exc:
        raise CloudtikError(str(exc)) from None
    wanted = agent_config(config, node, state)
    config_path = state / AGENT_CONFIG_FILE
    text = wanted.model_dump_json(indent=2, exclude_defaults=True)
    same = config_path.exists() and config_path.read_text() == text
    agent, keeper = agent_pid(wanted.run_dir), keeper_pid(wanted.run_dir)
    if same and keeper is not None:
        # Supervised, same services: repair what stopped (an agent the keeper is restarting comes back).
        if agent is not None:
            asyncio.run(restart_stopped(wanted))
        asyncio.run(wait_until_ready(wanted))
    else:
        if agent is not None or keeper is not None:
            asyncio.run(stop_agent(wanted.run_dir))  # changed, or running unsupervised
        paths.write_private(config_path, text)
        fork_keeper(wanted)
        asyncio.run(wait_until_ready(wanted))
    if node.kind == T.KIND_HEAD and config.runtime.types:
        publish_services(config, node.ip)


def publish_services(config: ClusterConfig, head_ip: str) -> None:
    """Tell the workspace where this head's services are (again: a replaced head has a new address)."""
    from ..discovery.registry import publish

    try:
        publish(config, head_ip)
    except CloudtikError as exc:  # other clusters can't discover this one; it still works
        print(f"warning: services not published to the workspace: {exc}", file=sys.stderr)


def main() -> int:
    try:
        start(paths.node_state_dir())
    except CloudtikError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    # Every node's `up` waits on this exit: skip the interpreter's teardown (0.1-0.3 s of freeing
    # modules on a loaded machine). Nothing is left to do: the agent runs in its own forked process.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
