"""The ``runtime.spark`` config section: a frozen pydantic model; errors name ``runtime.spark.<key>``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from ...errors import ConfigError
from ...paths import NAME_PATTERN

if TYPE_CHECKING:
    from ...discovery import DiscoveryScope

SECTION = "runtime.spark"
MAX_MEMORY_MIB = 16 * 1024 * 1024  # 16 TiB
_MEMORY = re.compile(r"^\s*(\d+)\s*([kmgt])?i?b?\s*$", re.IGNORECASE)
_UNIT_MIB = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}


def parse_memory_mib(value: Any) -> int:
    """``"512m"``, ``"2g"``, ``"1gb"`` or an integer number of MiB -> MiB."""
    if isinstance(value, bool):
        raise ValueError("must be a size such as '512m' or '2g'")
    if isinstance(value, int):
        mib = value
    elif isinstance(value, str) and (match := _MEMORY.match(value)):
        number, unit = match.groups()
        if unit is None:
            raise ValueError(f"{value!r} needs a unit: k, m, g or t (e.g. '512m', '2g')")
        mib = int(int(number) * _UNIT_MIB[unit.lower()])
    else:
        raise ValueError(f"must be a size such as '512m' or '2g', not {value!r}")
    if mib < 32:
        raise ValueError(f"{value!r} is too small (at least 32m)")
    if mib > MAX_MEMORY_MIB:
        raise ValueError(f"{value!r} is too large (at most 16t)")
    return mib


def _conf_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ValueError(f"must be a string, number or boolean, not {type(value).__name__}")


MemoryMiB = Annotated[int, BeforeValidator(parse_memory_mib)]
Port = Annotated[int, Field(ge=1, le=65535)]
ConfValue = Annotated[str, BeforeValidator(_conf_value), Field(max_length=4096)]
ConfKey = Annotated[str, Field(max_length=256)]


class SparkConfig(BaseModel):
    """Spark standalone: master + history server on the head, one worker per worker node."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    master_port: Port = 7077
    master_ui_port: Port = 8080
    history_ui_port: Port = 18080
    worker_ui_port: Port = 8081
    worker_port: Port | None = None  # None: an ephemeral port
    history_server: bool = True
    # A worker offers the node's resources (CPU, memory); these override them.
    worker_cores: int | None = Field(default=None, ge=1, le=1024)
    worker_memory: MemoryMiB | None = None
    executor_memory: MemoryMiB | None = None  # default for applications; must fit a worker
    daemon_memory: MemoryMiB = 512  # heap of the master, worker and history server JVMs
    # Default: <runtime dir>/events on the head.
    event_log_dir: str | None = Field(default=None, max_length=4096)
    # spark.* properties every application gets (spark-submit and the notebook's SparkSession).
    conf: dict[ConfKey, ConfValue] = Field(default_factory=dict, max_length=256)
    # A class-data-sharing archive per daemon (built once per machine in setup) starts the JVMs ~3x faster.
    class_data_sharing: bool = True
    # A Hive metastore on the head (published to the workspace as `hive-metastore`): tables saved with
    # saveAsTable outlive the session and other clusters of the workspace list and read them.
    metastore: bool = False
    metastore_port: Port = 9083
    # Use the Hive metastore that cluster of the workspace publishes (instead of running one).
    metastore_from: str | None = Field(default=None, pattern=NAME_PATTERN)
    # Where managed tables' files go: a place every node of every cluster using the metastore reaches.
    # Default on `virtual`: <state dir>/workspaces/<workspace>/warehouse. An absolute path or a URI.
    warehouse_dir: str | None = Field(default=None, max_length=4096, pattern=r"^(/|[a-z][a-z0-9+.-]*://)\S")

    _scope: DiscoveryScope | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> SparkConfig:
        if self.metastore and self.metastore_from:
            raise ValueError("metastore_from: a cluster that uses another's metastore runs none (metastore: true)")
        head_ports = {"master_port": self.master_port, "master_ui_port": self.master_ui_port}
        if self.history_server:
            head_ports["history_ui_port"] = self.history_ui_port
        if self.metastore:
            head_ports["metastore_port"] = self.metastore_port
        seen: dict[int, str] = {}
        for key, port in head_ports.items():
            if port in seen:
                raise ValueError(f"{key}: port {port} is already used by {seen[port]} on the head")
            seen[port] = key
        for key in self.conf:
            if not key.startswith("spark."):
                raise ValueError(f"conf.{key}: Spark properties start with 'spark.'")
        if self.executor_memory and self.worker_memory and self.executor_memory > self.worker_memory:
            raise ValueError(
                f"executor_memory: {self.executor_memory}m does not fit a worker's {self.worker_memory}m"
            )
        return self

    def app_conf(self) -> dict[str, str]:
        """Properties an application on this cluster starts with (before the caller's own)."""
        conf = {}
        if self.executor_memory is not None:
            conf["spark.executor.memory"] = f"{self.executor_memory}m"
        return {**conf, **self.conf}

    @property
    def uses_metastore(self) -> bool:
        return self.metastore or self.metastore_from is not None

    @property
    def scope(self) -> DiscoveryScope:
        if self._scope is None:
            raise RuntimeError("SparkConfig is not bound to a cluster (use runtimes.enabled_runtimes)")
        return self._scope


def parse_spark_config(section: Mapping[str, Any] | None) -> SparkConfig:
    """Validate ``runtime.spark``; the first problem raises `ConfigError` with its key path."""
    from ...config.issues import did_you_mean

    try:
        return SparkConfig.model_validate(dict(section or {}))
    except ValidationError as e:
        err = e.errors()[0]
        loc = [str(p) for p in err["loc"]]
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}; {did_you_mean(loc[-1], list(SparkConfig.model_fields))}"
        elif not loc and (keyed := re.match(r"^([\w.-]+): (.+)$", message, re.DOTALL)):
            loc, message = keyed.group(1).split("."), keyed.group(2)
        raise ConfigError(".".join([SECTION, *loc]), message) from None
