"""Typed cluster config. Unknown keys are rejected everywhere (``extra="forbid"``)."""

from __future__ import annotations

import difflib
import getpass
import re
import shlex
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VirtualProviderConfig(_Model):
    """Embedded provider: nodes are local process trees on their own 127.x address."""

    type: Literal["virtual"] = "virtual"
    # Block of 127.0.0.0/8 the nodes get addresses from; default derives one from the state dir.
    address_block: str | None = None


class AwsProviderConfig(_Model):
    type: Literal["aws"]
    region: str = "us-east-1"
    availability_zones: list[str] | None = None
    use_spot: bool = False
    endpoint_url: str | None = None  # a moto server in tests


class GcpProviderConfig(_Model):
    type: Literal["gcp"]
    project_id: str
    region: str = "us-central1"
    availability_zone: str | None = None
    use_preemptible: bool = False
    endpoint_url: str | None = None


class AzureProviderConfig(_Model):
    type: Literal["azure"]
    subscription_id: str
    location: str = "westus2"
    resource_group: str | None = None
    use_spot: bool = False
    endpoint_url: str | None = None


ProviderConfig = Annotated[
    VirtualProviderConfig | AwsProviderConfig | GcpProviderConfig | AzureProviderConfig,
    Field(discriminator="type"),
]


class AuthConfig(_Model):
    ssh_user: str = Field(default_factory=getpass.getuser)
    # None: a per-cluster ed25519 key is generated on the first `up`.
    ssh_private_key: str | None = None


class NodeTypeConfig(_Model):
    node_config: dict[str, Any] = Field(default_factory=dict)
    min_workers: int = Field(default=0, ge=0)
    max_workers: int | None = Field(default=None, ge=0)
    resources: dict[str, float] = Field(default_factory=dict)

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
    controller_interval: float = Field(default=5.0, gt=0)
    heartbeat_interval: float = Field(default=1.0, gt=0)
    heartbeat_timeout: float = Field(default=30.0, gt=0)
    # A worker whose setup (or recovery) failed this many times is terminated and replaced ...
    max_update_tries: int = Field(default=3, ge=1)
    # ... and after this many such workers of one type in a row, replacing stops until the config or a
    # scale request changes (a broken setup must not churn nodes forever).
    max_failed_launches: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _timeout_exceeds_interval(self) -> HeadConfig:
        if self.heartbeat_timeout <= self.heartbeat_interval:
            raise ValueError(
                f"heartbeat_timeout: must be greater than heartbeat_interval ({self.heartbeat_interval:g})"
            )
        return self


_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")
# `docker run` options the container mode sets itself, and why a user may not.
_MANAGED_RUN_OPTIONS = {
    "--privileged": "containers run unprivileged; add only the capabilities you need with --cap-add",
    "--network": "containers use the node's network (host networking), so services keep its address",
    "--net": "containers use the node's network (host networking), so services keep its address",
    "--name": "the container's name is derived from the cluster and node",
    "--rm": "containers are always removed when they stop",
    "-d": "the container is attached to a keeper process on the node (it must not be detached)",
    "--detach": "the container is attached to a keeper process on the node (it must not be detached)",
    "--entrypoint": "the container's main process is managed by cloudtik",
}


def _check_run_option(option: str) -> str:
    """One entry, split like a shell would (``--ulimit nofile=1024:1024``); managed flags are refused."""
    try:
        words = shlex.split(option)
    except ValueError as exc:
        raise ValueError(f"cannot split {option!r}: {exc}") from None
    for word in words:
        flag = word.split("=", 1)[0]
        if flag in _MANAGED_RUN_OPTIONS:
            raise ValueError(f"{flag} is not allowed: {_MANAGED_RUN_OPTIONS[flag]}")
    return option


def _check_image(image: str) -> str:
    if not _IMAGE.match(image):
        raise ValueError(f"not an image reference (name[:tag] or name@digest), got {image!r}")
    return image


def _check_mount(spec: str) -> str:
    """``HOST:CONTAINER[:ro|rw]`` with absolute paths (the host path may start with ``~/``)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"expected HOST:CONTAINER or HOST:CONTAINER:ro|rw, got {spec!r}")
    host, container = parts[0], parts[1]
    if not (host.startswith("/") or host.startswith("~/")):
        raise ValueError(f"the host path must be absolute (or start with ~/), got {host!r}")
    if not container.startswith("/"):
        raise ValueError(f"the container path must be absolute, got {container!r}")
    if len(parts) == 3 and parts[2] not in ("ro", "rw"):
        raise ValueError(f"the mode must be ro or rw, got {parts[2]!r}")
    return spec


RunOption = Annotated[str, AfterValidator(_check_run_option)]


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
    run_options: list[RunOption] = Field(default_factory=list)
    head_run_options: list[RunOption] = Field(default_factory=list)
    worker_run_options: list[RunOption] = Field(default_factory=list)
    # Bind mounts, ``HOST:CONTAINER[:ro|rw]``. The node's home directory is always shared (same path).
    mounts: list[Annotated[str, AfterValidator(_check_mount)]] = Field(default_factory=list)
    # Bind-mount the node's /usr, /etc and the Python environment cloudtik_jupyter runs from,
    # read-only: for skeleton images (python -m cloudtik_jupyter.container.skeleton) on nodes that
    # share the client's filesystem layout (the virtual provider).
    host_environment: bool = False

    @model_validator(mode="after")
    def _image_when_enabled(self) -> DockerConfig:
        if self.enabled and not self.image:
            raise ValueError("image: required when docker.enabled is true")
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
    types: list[str] = Field(default_factory=list)

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
    head_node_type: str
    available_node_types: dict[str, NodeTypeConfig]
    # remote path -> local path (a file or a directory) synced to every node before setup
    file_mounts: dict[str, str] = Field(default_factory=dict)
    initialization_commands: list[str] = Field(default_factory=list)
    setup_commands: list[str] = Field(default_factory=list)
    head_setup_commands: list[str] = Field(default_factory=list)
    worker_setup_commands: list[str] = Field(default_factory=list)
    start_commands: list[str] = Field(default_factory=list)
    head_start_commands: list[str] = Field(default_factory=list)
    worker_start_commands: list[str] = Field(default_factory=list)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    docker: DockerConfig = Field(default_factory=DockerConfig)
    head: HeadConfig = Field(default_factory=HeadConfig)
    proxy: ProxyConfig = Field(default_factory=ProxyConfig)
    idle_timeout_minutes: float = Field(default=5.0, ge=0)

    @model_validator(mode="after")
    def _head_type_known(self) -> ClusterConfig:
        if self.head_node_type not in self.available_node_types:
            known = ", ".join(sorted(self.available_node_types)) or "none"
            raise ValueError(f"head_node_type: unknown node type {self.head_node_type!r} (known: {known})")
        return self

    def worker_types(self) -> dict[str, NodeTypeConfig]:
        """Node types that workers are launched from (the head's type counts only if it has min_workers)."""
        return {
            name: nt
            for name, nt in self.available_node_types.items()
            if name != self.head_node_type or nt.min_workers or nt.max_workers
        }
