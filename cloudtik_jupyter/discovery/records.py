"""The registry's one document per cluster (format 1), validated on the way in and out.

```json
{"format": 1, "workspace": "default", "cluster": "tracking", "published_at": 1764750000.0,
 "services": [{"name": "mlflow-tracking", "kind": "mlflow-tracking", "address": "10.0.1.5",
               "port": 5000, "protocol": "http"}]}
```
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ..config.schema import NAME_PATTERN
from ..errors import CloudtikError, ConfigError

FORMAT = 1
MAX_DOCUMENT_BYTES = 64 * 1024  # a cluster publishes a handful of endpoints
_TOKEN = r"^[a-z][a-z0-9-]{0,39}$"


def _ip(value: str) -> str:
    return str(ipaddress.ip_address(value))  # an address, never a host name to resolve or a URL


class PublishedService(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_TOKEN)
    kind: str = Field(pattern=_TOKEN)
    address: Annotated[str, AfterValidator(_ip)]
    port: int = Field(ge=1, le=65535)
    protocol: str = Field(pattern=r"^[a-z][a-z0-9+.-]{0,15}$")

    @property
    def url(self) -> str:
        return f"{self.protocol}://{self.address}:{self.port}"


class ClusterServices(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = 1
    workspace: str = Field(pattern=NAME_PATTERN)
    cluster: str = Field(pattern=NAME_PATTERN)
    published_at: float
    services: list[PublishedService] = Field(default_factory=list, max_length=64)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, data: str | bytes, where: str) -> ClusterServices:
        if len(data) > MAX_DOCUMENT_BYTES:
            raise CloudtikError(f"{where}: a service document over {MAX_DOCUMENT_BYTES} bytes; ignored")
        try:
            return cls.model_validate(json.loads(data))
        except (ValueError, ValidationError) as exc:
            first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise CloudtikError(f"{where}: not a service document of format {FORMAT} ({first})") from None


def object_key(prefix: str, cluster: str) -> str:
    """Where `cluster`'s document lives under `prefix`; a name that is not a cluster name is refused
    before any request is made (it would name another object: ``../``, ``a/b``, ``x.json?``)."""
    if not isinstance(cluster, str) or not re.fullmatch(NAME_PATTERN, cluster):
        raise ConfigError("cluster_name", f"not a cluster name: {cluster!r}")
    return f"{prefix}{cluster}.json"
