"""What service discovery costs: the registry's calls on each provider, and a consumer node's follow-up.

For the file registry (virtual) and the GCP and Azure registries (the real SDKs against the local fakes
of tests/clouds/fakes, requests counted by the fake): median milliseconds and requests of one `put`, one
`get` and one `list` of N published clusters. Then what one consumer node spends per
`head.discovery_interval` to follow its provider (`node.rediscover.runtime_specs`: the cluster config read,
one lookup, the runtime services worked out), as a share of one core at the default interval (5 s).

    .venv/bin/python benchmarks/bench_discovery.py [--clusters 20] [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_INTERVAL = 5.0


def doc(cluster: str) -> Any:
    from cloudtik_jupyter.discovery import ClusterServices, PublishedService

    service = PublishedService(name="mlflow-tracking", kind="mlflow-tracking", address="10.0.1.5", port=5000, protocol="http")
    return ClusterServices(workspace="bench", cluster=cluster, published_at=1.0, services=[service])


def timed(fn: Callable[[], Any], rounds: int, requests: Callable[[], int]) -> tuple[float, float]:
    """(median ms, requests per call)."""
    times, before = [], requests()
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), (requests() - before) / rounds


def measure(name: str, registry: Any, requests: Callable[[], int], clusters: int, rounds: int) -> None:
    for i in range(clusters):
        registry.put(doc(f"c{i}"))
    put = timed(lambda: registry.put(doc("c0")), rounds, requests)
    get = timed(lambda: registry.get("c0"), rounds, requests)
    listing = timed(registry.list, max(rounds // 4, 1), requests)
    print(
        f"{name:8} put {put[0]:6.1f} ms ({put[1]:.0f} req)   get {get[0]:6.1f} ms ({get[1]:.0f} req)   "
        f"list of {clusters} {listing[0]:7.1f} ms ({listing[1]:.0f} req)"
    )


def follow_cost(home: Path, rounds: int) -> float:
    """Median ms of one rediscovery on a consumer's worker (virtual: the file registry)."""
    import yaml

    from cloudtik_jupyter.config import load_config
    from cloudtik_jupyter.discovery.registry import publish
    from cloudtik_jupyter.node.config import AgentConfig, RuntimeNode
    from cloudtik_jupyter.node.rediscover import runtime_specs

    def cfg(name: str, mlflow: dict[str, Any]) -> dict[str, Any]:
        return {
            "from": "virtual-small",
            "cluster_name": name,
            "workspace_name": "bench",
            "available_node_types": {"worker": {"min_workers": 1, "resources": {"CPU": 1, "memory": 2**30}}},
            "runtime": {"types": ["dask", "mlflow"], "mlflow": mlflow},
        }

    publish(load_config(cfg("tracking", {})), "127.61.0.1")
    state = home / "node"
    state.mkdir()
    (state / "cluster.yaml").write_text(yaml.safe_dump(cfg("trainer", {"from_cluster": "tracking"})))
    node = RuntimeNode(cluster_config=state / "cluster.yaml", head_ip="127.60.0.1", runtime_dir=state / "rt")
    agent = AgentConfig(
        node_id="w1", kind="worker", address="127.60.0.2", run_dir=state / "agent",
        redis_endpoints_file=state / "endpoints.json", runtime_node=node,
    )  # fmt: skip
    return timed(lambda: runtime_specs(agent), rounds, lambda: 0)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "clouds"))
    from fakes.azure import FakeAzure
    from fakes.envs import AzureEnv, GcpEnv
    from fakes.gcp import FakeGcp

    from cloudtik_jupyter.discovery import DiscoveryScope, registry_for
    from cloudtik_jupyter.providers.azure.naming import AzureNames, default_resource_group
    from cloudtik_jupyter.providers.azure.storage import ensure_account
    from cloudtik_jupyter.providers.gcp.naming import GcpNames

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        os.environ["CLOUDTIK_HOME"] = str(home / "home")
        from cloudtik_jupyter.config.schema import VirtualProviderConfig

        files = registry_for(DiscoveryScope("bench", VirtualProviderConfig(type="virtual")))
        measure("virtual", files, lambda: 0, args.clusters, args.rounds)

        gcp = GcpEnv(FakeGcp().start(), home)
        try:
            bucket = GcpNames("bench", gcp.project).bucket
            gcp.clients().storage.buckets().insert(project=gcp.project, body={"name": bucket}).execute()
            registry = registry_for(DiscoveryScope("bench", gcp.provider_config()))
            measure("gcp", registry, lambda: len(gcp.fake.server.requests), args.clusters, args.rounds)
        finally:
            gcp.fake.stop()

        azure = AzureEnv(FakeAzure().start(), home)
        try:
            names = AzureNames("bench", azure.subscription, default_resource_group("bench"))
            c = azure.clients()
            c.resource.resource_groups.create_or_update(names.resource_group, {"location": azure.location})
            ensure_account(c, names)
            registry = registry_for(DiscoveryScope("bench", azure.provider_config()))
            measure("azure", registry, lambda: len(azure.fake.server.requests), args.clusters, args.rounds)
        finally:
            azure.fake.stop()

        ms = follow_cost(home, args.rounds)
        share = ms / 1000 / DEFAULT_INTERVAL * 100
        print(f"follow   one rediscovery on a consumer node {ms:.1f} ms = {share:.2f}% of a core at {DEFAULT_INTERVAL:g} s")


if __name__ == "__main__":
    main()
