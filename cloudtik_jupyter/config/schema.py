"""Typed cluster config. Unknown keys are rejected everywhere (``extra="forbid"``)."""

from __future__ import annotations

import difflib
import getpass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    head: HeadConfig = Field(default_factory=HeadConfig)
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
