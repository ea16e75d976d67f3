"""Typed cluster config. Unknown keys are rejected everywhere (``extra="forbid"``), and every count,
interval, string and list has a bound (see `limits`): a config is input, and input is bounded."""

from __future__ import annotations

import difflib
import getpass
import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ..paths import NAME_PATTERN
from . import limits as L
from .docker_options import check_mount, check_run_option, privileged_problem

NODE_TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# Cloud identifiers (regions, zones, projects, subscriptions, resource groups): plain words.
CLOUD_ID = r"^[A-Za-z0-9][A-Za-z0-9._()-]{0,89}$"
USER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$"

Command = Annotated[str, Field(max_length=L.MAX_STRING)]
Commands = Annotated[list[Command], Field(max_length=L.MAX_COMMANDS)]
PathText = Annotated[str, Field(min_length=1, max_length=L.MAX_PATH)]
CloudId = Annotated[str, Field(pattern=CLOUD_ID)]
EndpointUrl = Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s]+$")]


class _Model(BaseModel):
    # No NaN or infinity anywhere: `.inf` as an interval would mean "never", NaN compares false to bounds.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def check_address_block(text: str | None) -> str | None:
    """A block of 127.0.0.0/8 with room for nodes (the virtual provider's address_block)."""
    if text is None:
        return None
    try:
        block = ipaddress.IPv4Network(text, strict=True)
    except ValueError as exc:
        raise ValueError(f"not an IPv4 network: {exc}") from None
    if not block.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
        raise ValueError(f"{block} is not inside 127.0.0.0/8")
    if block.num_addresses < 4:
        raise ValueError(f"{block} is too small (at least a /30)")
    return str(block)


class VirtualProviderConfig(_Model):
    """Embedded provider: nodes are local process trees on their own 127.x address."""

    type: Literal["virtual"] = "virtual"
    # Block of 127.0.0.0/8 the nodes get addresses from; default derives one from the state dir.
    address_block: Annotated[str | None, AfterValidator(check_address_block)] = None


class AwsProviderConfig(_Model):
    type: Literal["aws"]
    region: CloudId = "us-east-1"
    availability_zones: Annotated[list[CloudId], Field(max_length=16)] | None = None
    use_spot: bool = False
    endpoint_url: EndpointUrl | None = None  # a moto server in tests


class GcpProviderConfig(_Model):
    type: Literal["gcp"]
    project_id: CloudId
    region: CloudId = "us-central1"
    availability_zone: CloudId | None = None
    use_preemptible: bool = False
    endpoint_url: EndpointUrl | None = None


class AzureProviderConfig(_Model):
    type: Literal["azure"]
    subscription_id: CloudId
    location: CloudId = "westus2"
    resource_group: CloudId | None = None
    use_spot: bool = False
    endpoint_url: EndpointUrl | None = None


ProviderConfig = Annotated[
    VirtualProviderConfig | AwsProviderConfig | GcpProviderConfig | AzureProviderConfig,
    Field(discriminator="type"),
]


class AuthConfig(_Model):
    ssh_user: str = Field(default_factory=getpass.getuser, pattern=USER_PATTERN)
    # None: a per-cluster ed25519 key is generated on the first `up`.
    ssh_private_key: PathText | None = None


class NodeTypeConfig(_Model):
    node_config: dict[str, Any] = Field(default_factory=dict, max_length=L.MAX_MAPPING_KEYS)
    min_workers: int = Field(default=0, ge=0, le=L.MAX_WORKERS)
    max_workers: int | None = Field(default=None, ge=0, le=L.MAX_WORKERS)
    resources: dict[str, Annotated[float, Field(ge=0, le=L.MAX_RESOURCE)]] = Field(
        default_factory=dict, max_length=L.MAX_MAPPING_KEYS
    )

    @model_validator(mode="after")
    def _min_le_max(self) -> NodeTypeConfig:
        if self.max_workers is not None and self.max_workers < self.min_workers:
            # "key: message" lets the loader name the key path (available_node_types.worker.max_workers).
            raise ValueError(f"max_workers: must be >= min_workers ({self.min_workers})")
        return self

    @property
    def effective_max(self) -> int:
        return self.max_workers if self.max_workers is not None else max(self.min_workers, 10)


class HeadConfig(_Model):
    redis_shards: int = Field(default=2, ge=0, le=16)
    controller_interval: float = Field(default=5.0, ge=L.MIN_INTERVAL, le=L.MAX_INTERVAL)
    heartbeat_interval: float = Field(default=1.0, ge=L.MIN_HEARTBEAT, le=L.MAX_HEARTBEAT)
    heartbeat_timeout: float = Field(default=30.0, ge=L.MIN_HEARTBEAT_TIMEOUT, le=L.MAX_HEARTBEAT_TIMEOUT)
    # One recovery attempt of a silent worker (SSH + restarting its agent) gets this long; a worker still
    # silent after it is replaced. Silent worker -> replacement launched: heartbeat_timeout + this.
    recovery_timeout: float = Field(default=10.0, gt=0, le=L.MAX_RECOVERY_TIMEOUT)
    # A worker is busy (never released as idle) while its other processes use more CPU than this (percent
    # of one core, summed over processes), a shell session is open on it, or a runtime says it runs tasks.
    idle_cpu_percent: float = Field(default=5.0, ge=0, le=L.MAX_CPU_PERCENT)
    # A worker whose setup (or recovery) failed this many times is terminated and replaced ...
    max_update_tries: int = Field(default=3, ge=1, le=L.MAX_TRIES)
    # ... and after this many such workers of one type in a row, replacing stops until the config or a
    # scale request changes (a broken setup must not churn nodes forever).
    max_failed_launches: int = Field(default=3, ge=1, le=L.MAX_TRIES)
    # A cluster that consumes another's services (``runtime.mlflow.from_cluster``) looks them up again this
    # often on each node; services started with an address that moved are restarted with the new one.
    discovery_interval: float = Field(default=5.0, ge=L.MIN_INTERVAL, le=L.MAX_INTERVAL)

    @model_validator(mode="after")
    def _timeout_exceeds_interval(self) -> HeadConfig:
        if self.heartbeat_timeout <= self.heartbeat_interval:
            raise ValueError(
                f"heartbeat_timeout: must be greater than heartbeat_interval ({self.heartbeat_interval:g})"
            )
        return self


_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")


def _check_image(image: str) -> str:
    if not _IMAGE.match(image):
        raise ValueError(f"not an image reference (name[:tag] or name@digest), got {image!r}")
    return image


RunOption = Annotated[str, Field(max_length=L.MAX_RUN_OPTION), AfterValidator(check_run_option)]
RunOptions = Annotated[list[RunOption], Field(max_length=L.MAX_RUN_OPTIONS)]
MountSpec = Annotated[str, Field(max_length=L.MAX_PATH), AfterValidator(check_mount)]


class DockerConfig(_Model):
    """Container mode (``docker:``): each node runs its commands and services in one container.

    `initialization_commands` still run on the node itself (to prepare Docker: install, log in), before
    the container starts; file mounts, setup and start commands, `exec`, `attach` and the node's services
    run in the container.
    """

    enabled: bool = False
    image: Annotated[str, AfterValidator(_check_image)] | None = None
    # False: the image is built locally on each node (no registry); it must be there before `up`.
    pull_before_run: bool = True
    # Extra `docker run` options (each entry is split like a shell would), for every node / by kind.
    run_options: RunOptions = Field(default_factory=list)
    head_run_options: RunOptions = Field(default_factory=list)
    worker_run_options: RunOptions = Field(default_factory=list)
    # Bind mounts, ``HOST:CONTAINER[:ro|rw]``. The node's home directory is always shared (same path).
    mounts: Annotated[list[MountSpec], Field(max_length=L.MAX_RUN_OPTIONS)] = Field(default_factory=list)
    # Options that raise the container's privileges over the node (--privileged, --cap-add, devices,
    # host namespaces, host-path binds, weaker --security-opt, sensitive docker.mounts) are refused
    # unless this is true: a container with them can take over the node.
    allow_privileged_options: bool = False
    # Bind-mount the node's /usr, /etc and the Python environment cloudtik_jupyter runs from,
    # read-only: for skeleton images (python -m cloudtik_jupyter.container.skeleton) on nodes that
    # share the client's filesystem layout (the virtual provider).
    host_environment: bool = False

    @model_validator(mode="after")
    def _image_when_enabled(self) -> DockerConfig:
        if self.enabled and not self.image:
            raise ValueError("image: required when docker.enabled is true")
        if not self.allow_privileged_options:
            for key in ("run_options", "head_run_options", "worker_run_options", "mounts"):
                for index, entry in enumerate(getattr(self, key)):
                    problem = privileged_problem(entry, mount=key == "mounts")
                    if problem:
                        raise ValueError(
                            f"{key}[{index}]: {problem}; refused unless docker.allow_privileged_options "
                            "is true (a container with it can take over the node)"
                        )
        return self


class ProxyConfig(_Model):
    """What the Jupyter server's proxy (``/cloudtik/proxy/CLUSTER/PORT/``) may reach on this cluster.

    The web UIs the runtimes declare as service links are reachable without listing them here; any other
    port on the head is refused unless it is listed in `allowed_ports` (e.g. 4040, the UI of a Spark
    driver that `cloudtik submit` runs on the head).
    """

    allowed_ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(default_factory=list, max_length=64)


class RuntimeConfig(BaseModel):
    """``types`` enables runtimes; each runtime validates its own section (``runtime.spark``)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    types: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=8)

    @model_validator(mode="after")
    def _sections_are_mappings(self) -> RuntimeConfig:
        # Any other key is a runtime's own section (a mapping); a non-mapping is most likely a typo.
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, dict):
                typo = difflib.get_close_matches(key, ["types"], n=1)
                hint = "did you mean 'types'?" if typo else "a runtime's section must be a mapping"
                raise ValueError(f"{key}: unknown key {key!r}; {hint}")
        return self


class ClusterConfig(_Model):
    cluster_name: str = Field(pattern=NAME_PATTERN)
    workspace_name: str = Field(default="default", pattern=NAME_PATTERN)
    provider: ProviderConfig = Field(default_factory=VirtualProviderConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    head_node_type: Annotated[str, Field(max_length=64)]
    available_node_types: dict[Annotated[str, Field(pattern=NODE_TYPE_PATTERN)], NodeTypeConfig] = Field(
        min_length=1, max_length=L.MAX_NODE_TYPES
    )
    # remote path -> local path (a file or a directory) synced to every node before setup
    file_mounts: dict[PathText, PathText] = Field(default_factory=dict, max_length=L.MAX_FILE_MOUNTS)
    initialization_commands: Commands = Field(default_factory=list)
    setup_commands: Commands = Field(default_factory=list)
    head_setup_commands: Commands = Field(default_factory=list)
    worker_setup_commands: Commands = Field(default_factory=list)
    start_commands: Commands = Field(default_factory=list)
    head_start_commands: Commands = Field(default_factory=list)
    worker_start_commands: Commands = Field(default_factory=list)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    docker: DockerConfig = Field(default_factory=DockerConfig)
    head: HeadConfig = Field(default_factory=HeadConfig)
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)
    idle_timeout_minutes: float = Field(default=5.0, ge=0, le=L.MAX_IDLE_MINUTES)

    @model_validator(mode="after")
    def _head_type_known(self) -> ClusterConfig:
        if self.head_node_type not in self.available_node_types:
            known = ", ".join(sorted(self.available_node_types)) or "none"
            raise ValueError(f"head_node_type: unknown node type {self.head_node_type!r} (known: {known})")
        total = sum(t.effective_max for t in self.worker_types().values())
        if total > L.MAX_WORKERS:
            raise ValueError(
                f"available_node_types: at most {L.MAX_WORKERS} workers in all, the node types allow {total}"
            )
        return self

    def worker_types(self) -> dict[str, NodeTypeConfig]:
        """Node types that workers are launched from (the head's type counts only if it has min_workers)."""
        return {
            name: nt
            for name, nt in self.available_node_types.items()
            if name != self.head_node_type or nt.min_workers or nt.max_workers
        }
