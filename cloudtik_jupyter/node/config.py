"""The node agent's config file (JSON or YAML) and the services it runs.

Never holds a secret: the Redis password comes from ``$CLOUDTIK_REDIS_PASSWORD`` or a 0600 file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError
from ..state.endpoints import RedisAddress, RedisEndpoints

SERVICE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthCheck(_Model):
    """A service is running once a TCP connection to host:port succeeds."""

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    timeout: float = Field(default=30.0, gt=0)  # from spawn to healthy, else the start counts as failed


class ServiceSpec(_Model):
    name: str = Field(pattern=SERVICE_NAME_PATTERN)
    argv: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)  # added to the agent's environment
    cwd: Path | None = None
    health: HealthCheck | None = None
    # Spawned only once this address accepts connections (a Spark worker: its master's UI), waited for
    # before every start without a deadline: a daemon that retries on its own (Spark: every 5-15 s) would
    # otherwise sit out a whole retry period when it starts first.
    requires: HealthCheck | None = None
    # Services of one chain start in order, each once the previous one is healthy (the controller after
    # the store); chains start side by side (a runtime's daemons need not wait for the head's store).
    chain: str = ""
    restart: bool = True  # restart when it exits on its own
    max_restarts: int = Field(default=5, ge=0)  # consecutive; reset once it stayed up `stable_after`
    restart_delay: float = Field(default=0.5, ge=0)  # doubles per consecutive failure, up to 10 s
    stable_after: float = Field(default=30.0, gt=0)
    stop_timeout: float = Field(default=10.0, gt=0)  # SIGTERM, then SIGKILL


class RedisAddressConfig(_Model):
    host: str
    port: int = Field(ge=1, le=65535)


class RedisConfig(_Model):
    primary: RedisAddressConfig
    shards: list[RedisAddressConfig] = Field(default_factory=list)

    def endpoints(self, password_file: Path | None) -> RedisEndpoints:
        return RedisEndpoints(
            primary=RedisAddress(self.primary.host, self.primary.port),
            shards=tuple(RedisAddress(s.host, s.port) for s in self.shards),
            password_file=password_file,
        )


class RuntimeNode(_Model):
    """What the runtimes' `busy(config, node)` hooks need (the rest of `NodeInfo` is in `AgentConfig`)."""

    cluster_config: Path
    head_ip: str
    runtime_dir: Path
    resources: dict[str, float] = Field(default_factory=dict)
    secret_file: Path | None = None


class AgentConfig(_Model):
    node_id: str = Field(min_length=1)
    node_type: str = ""
    kind: str = "worker"  # head | worker
    address: str = ""  # the node's private address
    seq_id: int | None = None
    run_dir: Path  # pid file, control socket, service logs, the record of owned PIDs
    # Where the head's Redis listens: an endpoints.json (on the head) or the addresses inline.
    redis_endpoints_file: Path | None = None
    redis: RedisConfig | None = None
    redis_password_file: Path | None = None
    # Connect to the store from this address (the node's own, as on a real network); None: any.
    source_address: str | None = None
    # A digest of the store's credentials: when a new head hands out new ones, the agent is restarted.
    credentials: str = ""
    runtime_node: RuntimeNode | None = None  # None: no runtime is asked whether the node is busy
    # A worker's own restricted Redis user (state/acl.py); None: the admin (the head).
    redis_user: str | None = None
    heartbeat_interval: float = Field(default=1.0, gt=0)
    services: list[ServiceSpec] = Field(default_factory=list)
    # Set when the cluster consumes other clusters' services: every this many seconds the agent works its
    # runtime services out again (node/rediscover.py) and restarts those whose spec changed (an address).
    rediscover_interval: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_redis_source(self) -> AgentConfig:
        if (self.redis_endpoints_file is None) == (self.redis is None):
            raise ValueError("give exactly one of redis_endpoints_file and redis")
        names = [s.name for s in self.services]
        if len(names) != len(set(names)):
            raise ValueError(f"service names must be unique: {names}")
        return self

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "agent.pid"

    @property
    def control_socket(self) -> Path:
        return control_socket_path(self.run_dir)

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def owned_file(self) -> Path:
        return self.run_dir / "services.json"

    def endpoints(self) -> RedisEndpoints:
        if self.redis is not None:
            return self.redis.endpoints(self.redis_password_file)
        assert self.redis_endpoints_file is not None
        return RedisEndpoints.load(self.redis_endpoints_file)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2, exclude_defaults=True))


# A Unix socket path must fit in sockaddr_un (108 bytes on Linux).
MAX_SOCKET_PATH = 100


def control_socket_path(run_dir: Path) -> Path:
    """``<run_dir>/agent.sock``, or, when that is too long for a Unix socket, a short path in a private
    per-user directory derived from the run dir (deep state dirs are common on virtual nodes)."""
    path = run_dir / "agent.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(run_dir).encode()).hexdigest()[:20]
    short_dir = Path(tempfile.gettempdir()) / f"cloudtik-{os.getuid()}"
    short_dir.mkdir(mode=0o700, exist_ok=True)
    if short_dir.stat().st_uid != os.getuid() or short_dir.stat().st_mode & 0o077:
        raise ConfigError("run_dir", f"{short_dir} must be a private directory of this user")
    return short_dir / f"agent-{digest}.sock"


def load_agent_config(path: Path) -> AgentConfig:
    """Read a JSON or YAML agent config; errors name the key path."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError("", f"cannot read agent config {path}: {e}") from None
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(key, err["msg"]) from None
