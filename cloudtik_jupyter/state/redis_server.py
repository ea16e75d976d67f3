"""Run a cluster's state store: real `redis-server` processes, a primary plus N shards.

Secure by default: each server binds only the head's private address (``bind <ip>``,
``protected-mode yes``) and requires a password generated per cluster. The password is in a 0600
file only, its hash in the servers' ACL file (0600, beside one restricted user per worker: see
acl.py); argv carries just the config path, so ``ps`` never shows a secret.

Two ways to run them, both owning the processes by PID:
- `prepare_redis` + `RedisPlan.service_specs()`: the head's node agent starts and watches them.
- `prepare_redis` + `start_redis_servers`: started directly (tests, or a head without an agent);
  the returned `RedisServers` stops exactly those PIDs; `stop_redis_servers(dir)` does the same
  from another process, using the PIDs recorded in ``<dir>/pids.json``.

Only the primary persists (AOF, fsync every second): it holds the sequence-id counter and the
event log, which must survive a restart and are tiny. Shards hold heartbeats and metrics that
the agents rewrite every second, so they skip persistence.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import CloudtikError
from ..node.config import HealthCheck, ServiceSpec
from ..node.processes import OwnedProcess, load_owned, save_owned, terminate
from ..paths import ensure_private_dir, write_private
from ..records.layout import REDIS_ENDPOINTS_FILE as ENDPOINTS_FILE
from ..records.layout import REDIS_PASSWORD_FILE as PASSWORD_FILE
from ..waiting import wait_for
from .acl import write_admin
from .endpoints import DEFAULT_PRIMARY_PORT, RedisAddress, RedisEndpoints

REDIS_SERVER_ENV = "CLOUDTIK_REDIS_SERVER"
INSTALL_HINT = "scripts/install-system-deps.sh (it runs: apt-get install -y redis-server)"
_SEARCH_DIRS = ("/usr/bin", "/usr/sbin")


PIDS_FILE = "pids.json"


def find_redis_server() -> Path:
    """The redis-server binary: ``$CLOUDTIK_REDIS_SERVER``, else PATH, /usr/bin, /usr/sbin."""
    env = os.environ.get(REDIS_SERVER_ENV)
    if env:
        path = Path(env)
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise CloudtikError(f"${REDIS_SERVER_ENV}={env} is not an executable redis-server")
    candidates = [shutil.which("redis-server"), *(f"{d}/redis-server" for d in _SEARCH_DIRS)]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise CloudtikError(
        "redis-server not found (looked in PATH, /usr/bin, /usr/sbin and "
        f"${REDIS_SERVER_ENV}); install it with {INSTALL_HINT}"
    )


@dataclass(frozen=True)
class RedisServerSpec:
    name: str  # redis-primary, redis-shard-0, ...
    address: RedisAddress
    dir: Path  # working dir: config, log, AOF
    persistent: bool

    @property
    def config_file(self) -> Path:
        return self.dir / "redis.conf"

    @property
    def log_file(self) -> Path:
        return self.dir / "redis.log"


@dataclass(frozen=True)
class RedisPlan:
    """Config files written, nothing started yet."""

    base_dir: Path
    binary: Path
    endpoints: RedisEndpoints
    servers: tuple[RedisServerSpec, ...]

    @property
    def endpoints_file(self) -> Path:
        return self.base_dir / ENDPOINTS_FILE

    def argv(self, server: RedisServerSpec) -> list[str]:
        return [str(self.binary), str(server.config_file)]

    def service_specs(self) -> list[ServiceSpec]:
        """The servers as node-agent services (ready once their port accepts connections)."""
        return [
            ServiceSpec(
                name=s.name,
                argv=self.argv(s),
                cwd=s.dir,
                health=HealthCheck(host=s.address.host, port=s.address.port),
                restart_delay=0.1,  # every node's heartbeats wait on it
            )
            for s in self.servers
        ]


def _render_config(server: RedisServerSpec, acl_file: Path) -> str:
    persistence = (
        'appendonly yes\nappendfsync everysec\nsave ""\n' if server.persistent else 'appendonly no\nsave ""\n'
    )
    return (
        "# Written by cloudtik_jupyter. Users and their password hashes are in the ACL file (0600).\n"
        f"bind {server.address.host}\n"
        f"port {server.address.port}\n"
        "protected-mode yes\n"
        f'aclfile "{acl_file}"\n'
        "daemonize no\n"
        f'dir "{server.dir}"\n'
        f'logfile "{server.log_file}"\n'
        f'pidfile "{server.dir / "redis.pid"}"\n'
        f"{persistence}"
        "databases 1\n"
        "tcp-backlog 128\n"
    )


def prepare_redis(
    base_dir: Path,
    host: str,
    *,
    shards: int = 2,
    primary_port: int = DEFAULT_PRIMARY_PORT,
    shard_ports: Sequence[int] | None = None,
) -> RedisPlan:
    """Write the password (kept if one exists), each server's config and ``endpoints.json``.

    Shard ``i`` listens on ``primary_port + 1 + i`` unless `shard_ports` says otherwise.
    """
    binary = find_redis_server()
    ensure_private_dir(base_dir)
    password_file = base_dir / PASSWORD_FILE
    if not password_file.exists():
        write_private(password_file, secrets.token_urlsafe(32))
    password = password_file.read_text().strip()
    acl_file = write_admin(base_dir, password)  # workers' users in it are kept

    ports = list(shard_ports) if shard_ports is not None else [primary_port + 1 + i for i in range(shards)]
    if len(ports) != shards:
        raise CloudtikError(f"{shards} redis shards need {shards} ports, got {len(ports)}")
    servers = [RedisServerSpec("redis-primary", RedisAddress(host, primary_port), base_dir / "primary", True)]
    servers += [
        RedisServerSpec(f"redis-shard-{i}", RedisAddress(host, port), base_dir / f"shard-{i}", False)
        for i, port in enumerate(ports)
    ]
    for server in servers:
        ensure_private_dir(server.dir)
        write_private(server.config_file, _render_config(server, acl_file))

    endpoints = RedisEndpoints(
        primary=servers[0].address,
        shards=tuple(s.address for s in servers[1:]),
        password_file=password_file,
    )
    endpoints.save(base_dir / ENDPOINTS_FILE)
    return RedisPlan(base_dir, binary, endpoints, tuple(servers))


async def ping(address: RedisAddress, password: str) -> bool:
    """True once the server answers PING; a wrong password raises instead of waiting forever."""
    # Imported here: planning the servers (every head's start) needs no client (redis-py takes ~0.1 s).
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import AuthenticationError, BusyLoadingError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    client = aioredis.Redis(
        host=address.host,
        port=address.port,
        password=password,
        socket_connect_timeout=1,
        socket_timeout=1,
        retry=Retry(NoBackoff(), 0),  # the caller's wait_for is the retry loop
    )
    try:
        return bool(await client.ping())
    except AuthenticationError:
        raise
    except (RedisConnectionError, RedisTimeoutError, BusyLoadingError, OSError):
        return False
    finally:
        await client.aclose()


def _log_tail(server: RedisServerSpec, lines: int = 8) -> str:
    text = ""
    for path in (server.dir / "stdout.log", server.log_file):
        if path.exists():
            text += path.read_text(errors="replace")
    return "\n".join(text.strip().splitlines()[-lines:])


@dataclass
class RedisServers:
    """Running servers started by `start_redis_servers`; the caller owns (and must stop) them."""

    plan: RedisPlan
    processes: list[OwnedProcess]
    _popens: list[subprocess.Popen[bytes]]

    @property
    def endpoints(self) -> RedisEndpoints:
        return self.plan.endpoints

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop exactly our PIDs (SIGTERM, then SIGKILL after `timeout`) and reap them."""
        await asyncio.gather(*(asyncio.to_thread(terminate, p, timeout) for p in self.processes))
        for popen in self._popens:
            popen.poll()  # reap (or note psutil already did)
        (self.plan.base_dir / PIDS_FILE).unlink(missing_ok=True)


async def start_redis_servers(plan: RedisPlan, *, timeout: float = 15.0) -> RedisServers:
    """Start every server of `plan` and wait until each answers PING (authenticated)."""
    password = plan.endpoints.read_password(plan.endpoints.password_file)
    popens: list[subprocess.Popen[bytes]] = []
    owned: list[OwnedProcess] = []
    for server in plan.servers:
        with open(server.dir / "stdout.log", "ab") as out:
            popen = subprocess.Popen(
                plan.argv(server),
                cwd=server.dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stopped by PID, immune to our terminal's ^C
            )
        popens.append(popen)
        owned.append(OwnedProcess.of(server.name, popen.pid))
    servers = RedisServers(plan, owned, popens)
    save_owned(plan.base_dir / PIDS_FILE, owned)

    async def all_ready() -> bool | None:
        for server, popen in zip(plan.servers, popens, strict=True):
            if popen.poll() is not None:
                raise CloudtikError(
                    f"{server.name} on {server.address} exited with {popen.returncode}:\n{_log_tail(server)}"
                )
        results = await asyncio.gather(*(ping(s.address, password) for s in plan.servers))
        return all(results)

    try:
        _: bool = await wait_for(all_ready, timeout=timeout, what="redis servers to answer PING")
    except BaseException:
        await servers.stop(timeout=2)
        raise
    return servers


async def stop_redis_servers(base_dir: Path, timeout: float = 5.0) -> None:
    """Stop the servers recorded in ``<base_dir>/pids.json`` (started by any process)."""
    owned = load_owned(base_dir / PIDS_FILE)
    await asyncio.gather(*(asyncio.to_thread(terminate, p, timeout) for p in owned))
    (base_dir / PIDS_FILE).unlink(missing_ok=True)
