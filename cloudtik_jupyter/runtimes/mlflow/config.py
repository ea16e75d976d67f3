"""The ``runtime.mlflow`` config section: a frozen pydantic model; errors name ``runtime.mlflow.<key>``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from ...config.schema import NAME_PATTERN
from ..sections import Port, parse_section

if TYPE_CHECKING:
    from ...discovery import DiscoveryScope

SECTION = "runtime.mlflow"
_URI = r"^[a-z][a-z0-9+.-]*://\S+$"


class MlflowConfig(BaseModel):
    """A tracking server on the head; or, with `from_cluster`, the one another cluster of the workspace runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    port: Port = 5000
    # Where runs and metrics are kept. Default: SQLite in the head's runtime directory.
    backend_store: str | None = Field(default=None, pattern=_URI)
    # Where artifacts go (the server proxies them, so workers need no storage credentials). Default: the
    # workspace's bucket on AWS, a directory on the head elsewhere.
    artifacts: str | None = Field(default=None, pattern=_URI)
    server_workers: int = Field(default=1, ge=1, le=16)
    # Use the tracking server that cluster publishes in this workspace instead of running one.
    from_cluster: str | None = Field(default=None, pattern=NAME_PATTERN)

    _scope: DiscoveryScope | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> MlflowConfig:
        if self.from_cluster:
            own = [k for k in ("backend_store", "artifacts") if getattr(self, k)]
            if own:
                raise ValueError(f"{own[0]}: a cluster that uses from_cluster runs no tracking server")
        return self

    @property
    def scope(self) -> DiscoveryScope:
        if self._scope is None:
            raise RuntimeError("MlflowConfig is not bound to a cluster (use runtimes.enabled_runtimes)")
        return self._scope


def parse_mlflow_config(section: Mapping[str, Any] | None) -> MlflowConfig:
    return parse_section(MlflowConfig, SECTION, section)
