"""Typed workspace config: a name, a provider and how the workspace's network is laid out.

```yaml
workspace_name: analytics
provider: {type: aws, region: us-west-2}
networking:
  mode: public                 # public head + private workers | peering | shared-vpc
  allowed_ssh_cidrs: [203.0.113.7/32]
```
"""

from __future__ import annotations

import ipaddress
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from .schema import NAME_PATTERN, ProviderConfig, VirtualProviderConfig

NETWORK_ID = r"^[A-Za-z0-9/][A-Za-z0-9._()/-]{0,399}$"
NetworkingMode = Literal["public", "peering", "shared-vpc"]
_ANYWHERE = {"0.0.0.0/0", "::/0"}


class OpenSshIngressWarning(UserWarning):
    """SSH was explicitly opened to the whole internet."""


class NetworkingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # public: head in a public subnet with a public IP, workers private behind a NAT.
    # peering: every node private; the workspace VPC is peered with `peer_vpc_id` (the client's VPC).
    # shared-vpc: every node private, in the existing `vpc_id`; only what is missing there is created.
    mode: NetworkingMode = "public"
    # Who may SSH to the nodes. Nothing is open by default; 0.0.0.0/0 only if written here (with a warning).
    allowed_ssh_cidrs: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=64)
    vpc_cidr: str = Field(default="10.0.0.0/16", max_length=64)
    # A VPC id, a network name or an Azure resource id.
    peer_vpc_id: str | None = Field(default=None, validate_default=True, pattern=NETWORK_ID)
    vpc_id: str | None = Field(default=None, validate_default=True, pattern=NETWORK_ID)

    @field_validator("allowed_ssh_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        out = []
        for cidr in value:
            try:
                net = ipaddress.ip_network(cidr, strict=True)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not a CIDR block like 203.0.113.0/24 ({exc})") from None
            out.append(str(net))
        if _ANYWHERE & set(out):
            warnings.warn(
                "networking.allowed_ssh_cidrs opens SSH to the whole internet (0.0.0.0/0); "
                "prefer your own address, e.g. 203.0.113.7/32",
                OpenSshIngressWarning,
                stacklevel=2,
            )
        return out

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr(cls, value: str) -> str:
        try:
            net = ipaddress.ip_network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a CIDR block ({exc})") from None
        if net.version != 4 or not 16 <= net.prefixlen <= 22 or not net.is_private:
            raise ValueError("must be a private IPv4 block from /16 to /22 (three /24 subnets must fit)")
        return str(net)

    @field_validator("peer_vpc_id")
    @classmethod
    def _peer(cls, value: str | None, info: Any) -> str | None:
        mode = info.data.get("mode")
        if mode == "peering" and not value:
            raise ValueError("required when networking.mode is 'peering' (the VPC to peer with)")
        if mode != "peering" and value:
            raise ValueError("only used when networking.mode is 'peering'")
        return value

    @field_validator("vpc_id")
    @classmethod
    def _shared(cls, value: str | None, info: Any) -> str | None:
        mode = info.data.get("mode")
        if mode == "shared-vpc" and not value:
            raise ValueError("required when networking.mode is 'shared-vpc' (the existing VPC to use)")
        if mode != "shared-vpc" and value:
            raise ValueError("only used when networking.mode is 'shared-vpc'")
        return value

    @property
    def private_head(self) -> bool:
        return self.mode != "public"


class WorkspaceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    workspace_name: str = Field(pattern=NAME_PATTERN)
    provider: ProviderConfig = Field(default_factory=VirtualProviderConfig)
    networking: NetworkingConfig = Field(default_factory=NetworkingConfig)

    @model_validator(mode="after")
    def _reachable(self) -> WorkspaceConfig:
        # Raised as ConfigError (not ValueError) so the key path is exact, not just "networking".
        if (
            self.provider.type != "virtual"
            and self.networking.mode == "public"
            and not self.networking.allowed_ssh_cidrs
        ):
            raise ConfigError(
                "networking.allowed_ssh_cidrs",
                "list who may SSH to the head, e.g. [203.0.113.7/32]; nothing is open by default",
            )
        return self


def _key_path(loc: tuple[int | str, ...], data: Any) -> str:
    """Dotted key path of a pydantic error, without the union's discriminator (``provider.aws.region``)."""
    parts: list[str] = []
    for i, part in enumerate(loc):
        if i == 1 and loc[0] == "provider" and isinstance(data, Mapping):
            provider = data.get("provider")
            if isinstance(provider, Mapping) and part == provider.get("type"):
                continue
        parts.append(str(part))
    return ".".join(parts)


def validate_workspace_config(data: Mapping[str, Any]) -> WorkspaceConfig:
    try:
        return WorkspaceConfig.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(_key_path(tuple(first["loc"]), data), message) from None


def load_workspace_config(source: WorkspaceConfig | Mapping[str, Any] | str | Path) -> WorkspaceConfig:
    """A model as is, a mapping, or a YAML file; bad input raises `ConfigError` naming the key path."""
    if isinstance(source, WorkspaceConfig):
        return source
    if isinstance(source, Mapping):
        return validate_workspace_config(source)
    from .yaml_io import parse_yaml, read_config_text

    path = Path(source).expanduser()
    data = parse_yaml(
        read_config_text(path, "workspace config"), origin=str(path)
    )  # strict: a key given twice is an error
    if not isinstance(data, Mapping):
        raise ConfigError("", f"{path}: expected a mapping of keys (workspace_name, provider, networking)")
    return validate_workspace_config(data)


def dump_workspace_config(config: WorkspaceConfig) -> str:
    import yaml

    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
