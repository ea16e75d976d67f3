"""Service discovery between the clusters of a workspace.

A cluster's head publishes its runtimes' endpoints (name, kind, address, port, protocol) to the workspace's
registry each time its services start; `down` withdraws them. Another cluster consumes one by cluster name
and kind (``runtime.mlflow.from_cluster: tracking``), resolved when its nodes start, again at each use
(a job submission, a notebook helper, `info`) and every ``head.discovery_interval`` by its nodes' agents,
so a provider cluster whose head was replaced is found at its new address.

The registry holds one small JSON document per publishing cluster (format 1, see `records`):
on `virtual` the file ``<state dir>/workspaces/<workspace>/services/<cluster>.json``; on a cloud the object
``cloudtik/services/<cluster>.json`` in the workspace's bucket (AWS, GCP) or in the ``cloudtik`` container
of its storage account (Azure), see `clouds`. A consumer's node agents follow a provider that moved
(node/rediscover.py).
"""

from __future__ import annotations

from .records import ClusterServices, PublishedService
from .registry import DiscoveryScope, Registry, lookup, registry_for

__all__ = ["ClusterServices", "DiscoveryScope", "PublishedService", "Registry", "lookup", "registry_for"]
