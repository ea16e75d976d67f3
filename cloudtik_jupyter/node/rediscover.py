"""Follow the services other clusters publish: a consumer's runtime services carry the address of what
they use (``MLFLOW_TRACKING_URI``) from the moment they start. When the provider cluster's head is
replaced its services come back elsewhere and publish their new address; the node agent of every node
of the consumer works its runtime services out again every ``head.discovery_interval`` seconds, exactly
as `node.start` does, and restarts those whose spec changed. A provider that is down (nothing
published) leaves them as they are: they find it again once it is back.
"""

from __future__ import annotations

from collections.abc import Mapping

from .config import AgentConfig, ServiceSpec


def runtime_specs(config: AgentConfig) -> list[ServiceSpec]:
    """The node's runtime services as `node.start` would start them now (consumed services looked up)."""
    from ..config import load_config
    from ..records.node_env import NodeIdentity
    from .start import runtime_services

    node = config.runtime_node
    if node is None:
        return []
    cluster = load_config(node.cluster_config, check_files=False)
    identity = NodeIdentity(
        cluster=cluster.cluster_name,
        node_id=config.node_id,
        kind=config.kind,
        node_type=config.node_type,
        ip=config.address,
        head_ip=node.head_ip,
        seq=config.seq_id,
    )
    return runtime_services(cluster, identity, node.cluster_config.parent)


def changed(running: Mapping[str, ServiceSpec], fresh: list[ServiceSpec]) -> list[ServiceSpec]:
    """The fresh specs of services that run here with another spec (services are never added or removed
    here: that is a config change, which `up` applies)."""
    return [s for s in fresh if s.name in running and running[s.name] != s]
