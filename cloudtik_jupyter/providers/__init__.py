"""Provider registry. Cloud SDKs are imported only when their provider is used."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config.schema import ClusterConfig
    from .base import NodeProvider, WorkspaceProvider

# type -> "module:NodeProviderClass"; modules are imported lazily.
_NODE_PROVIDERS: dict[str, str] = {
    "virtual": "cloudtik_jupyter.providers.virtual.node_provider:VirtualNodeProvider",
    "aws": "cloudtik_jupyter.providers.aws.node_provider:AwsNodeProvider",
    "gcp": "cloudtik_jupyter.providers.gcp.node_provider:GcpNodeProvider",
    "azure": "cloudtik_jupyter.providers.azure.node_provider:AzureNodeProvider",
}
_WORKSPACE_PROVIDERS: dict[str, str] = {
    "virtual": "cloudtik_jupyter.providers.virtual.workspace:VirtualWorkspaceProvider",
    "aws": "cloudtik_jupyter.providers.aws.workspace:AwsWorkspaceProvider",
    "gcp": "cloudtik_jupyter.providers.gcp.workspace:GcpWorkspaceProvider",
    "azure": "cloudtik_jupyter.providers.azure.workspace:AzureWorkspaceProvider",
}


def provider_types() -> list[str]:
    return sorted(set(_NODE_PROVIDERS) | set(_WORKSPACE_PROVIDERS))


def _load(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def node_provider(config: ClusterConfig) -> NodeProvider:
    """The NodeProvider for a validated cluster config."""
    kind = config.provider.type
    if kind not in _NODE_PROVIDERS:
        raise ConfigError(
            "provider.type", f"unknown provider {kind!r} (known: {', '.join(provider_types())})"
        )
    cls = _load(_NODE_PROVIDERS[kind])
    provider: NodeProvider = cls(config.provider, config.cluster_name, workspace_name=config.workspace_name)
    return provider


def workspace_provider(provider_config: Any, workspace_name: str) -> WorkspaceProvider:
    kind = provider_config.type
    if kind not in _WORKSPACE_PROVIDERS:
        raise ConfigError("provider.type", f"no workspace support for provider {kind!r}")
    cls = _load(_WORKSPACE_PROVIDERS[kind])
    provider: WorkspaceProvider = cls(provider_config, workspace_name)
    return provider
