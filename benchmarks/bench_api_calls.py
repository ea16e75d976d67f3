"""Cloud API calls a 10-node AWS cluster costs while people watch it (moto on 127.0.0.1, no SSH).

The nodes are launched through the launcher's own `launch_node` (the provider's RunInstances); nothing
ever connects to the addresses moto hands out (the `endpoint_url` in the config makes every SSH target
refuse). Two figures, calls counted with botocore event hooks on each view's EC2 client:

- cold status: one `status` read as a new CLI process makes it (a new Cluster: nothing cached);
- watchers on the store: 3 views (`Cluster.watch_async`, as the notebook view, the panel and
  `status --watch` use it) on the cluster as it is while its head is up: the head's state store (a local
  redis-server standing in for the head's, the node table mirrored into it as the controller does) with
  every node heartbeating each second. The views read the store (cluster/readmodel.py): the issue's
  target is <= 2 listings/min in total, whatever the watchers and nodes;
- watchers, head unreachable: the same views when the head is up-to-date but its store cannot be reached
  from here, so they fall back to the provider (listings shared by the process's watchers, at most one
  per cluster every RELIST_UNREACHABLE seconds; the status says "head unreachable").

Calls are split into listings (DescribeInstances by filter), per-node describes (DescribeInstances by
instance id) and anything else. Then the same cluster on GCP and Azure (the local fake REST servers of
tests/clouds/fakes, requests counted by the fake): calls of a cold status read and of a warm one (the
same process again, as a watcher or the CLI session reads). Run it on another checkout (PYTHONPATH) to
compare before/after.

    .venv/bin/python benchmarks/bench_api_calls.py [--seconds 30] [--nodes 10] [--watchers 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any


class CallCounter:
    """EC2 calls seen by botocore's before-call event on every client it is attached to."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def attach(self, ec2: Any) -> None:
        ec2.meta.events.register("before-call.ec2", self._seen)

    def _seen(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "DescribeInstances":
            self.calls["per-node describe" if params.get("InstanceIds") else "listing"] += 1
        else:
            self.calls[f"other ({model.name})"] += 1

    def total(self) -> int:
        return sum(self.calls.values())


def config(endpoint: str, image: str, nodes: int) -> dict[str, Any]:
    return {
        "cluster_name": "bench",
        "workspace_name": "bench",
        "provider": {"type": "aws", "region": "us-east-1", "endpoint_url": endpoint},
        "auth": {"ssh_user": "spark"},
        "head_node_type": "head",
        "available_node_types": {
            "head": {"node_config": {"ImageId": image}},
            "worker": {
                "node_config": {"ImageId": image},
                "min_workers": nodes - 1,
                "max_workers": nodes - 1,
            },
        },
    }


async def launch(cfg: dict[str, Any], nodes: int) -> None:
    from cloudtik_jupyter.cluster import launcher
    from cloudtik_jupyter.cluster.context import ClusterContext
    from cloudtik_jupyter.config import load_config
    from cloudtik_jupyter.providers import tags as T

    ctx = ClusterContext(load_config(cfg, check_files=False))
    ctx.save_record()
    head = await launcher.launch_node(ctx, "head", T.KIND_HEAD, launcher.HEAD_SEQ)
    for seq in range(2, nodes + 1):
        await launcher.launch_node(ctx, "worker", T.KIND_WORKER, seq)
    # Set up, as far as the provider's tags say: views then look for the head's store (unreachable here).
    for node_id in ctx.provider.non_terminated_nodes(ctx.cluster_tags()):
        ctx.provider.set_node_tags(node_id, {T.NODE_STATUS: T.NodeStatus.UP_TO_DATE.value})
    assert head
    await ctx.close()


def cold_status(cfg: dict[str, Any], reads: int) -> CallCounter:
    from cloudtik_jupyter.api import Cluster

    counter = CallCounter()
    for _ in range(reads):
        cluster = Cluster(cfg)  # as a new `cloudtik status` process: nothing cached
        counter.attach(cluster._ctx.provider.clients.ec2)  # type: ignore[attr-defined]
        status = cluster.status()
        assert len(status.nodes) > 0
    return counter


async def watchers(
    cfg: dict[str, Any], count: int, seconds: float, endpoints: Any = None
) -> tuple[CallCounter, list[int]]:
    """`count` views for `seconds`; with `endpoints`, each reaches the head's store there (its own client,
    as separate processes would) while every node heartbeats once a second."""
    from cloudtik_jupyter.api import Cluster
    from cloudtik_jupyter.state.records import NodeMetrics
    from cloudtik_jupyter.state.store import StateStore

    counter = CallCounter()
    updates = [0] * count
    sources: set[str] = set()

    async def watch(i: int) -> None:
        cluster = Cluster(cfg)
        counter.attach(cluster._ctx.provider.clients.ec2)  # type: ignore[attr-defined]
        if endpoints is not None:
            local = StateStore.connect(endpoints)

            async def store(head: Any) -> StateStore:
                return local

            cluster._ctx.store = store  # type: ignore[method-assign]  # no SSH forward to moto's addresses
        async for status in cluster.watch_async(max_interval=1.0):
            updates[i] += 1
            sources.add(status.source)

    async def heartbeats(stop: asyncio.Event) -> None:
        async with StateStore.connect(endpoints) as store:
            ids = [r.node_id for r in await store.nodes()]
            while not stop.is_set():
                started = time.monotonic()
                for node_id in ids:  # one change per node per second, as the agents send them
                    await store.heartbeat(node_id, metrics=NodeMetrics(10.0, 1 << 30, 4 << 30))
                await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))  # the agents' period

    stop = asyncio.Event()
    beating = asyncio.create_task(heartbeats(stop)) if endpoints is not None else None
    tasks = [asyncio.create_task(watch(i)) for i in range(count)]
    try:
        done, _ = await asyncio.wait(tasks, timeout=seconds)
        for task in done:
            task.result()  # a view that ended early is a failure, not a figure
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        stop.set()
        if beating is not None:
            await beating
    if endpoints is not None:
        assert sources == {"store"}, sources  # every view read the store, none fell back
    return counter, updates


async def head_store(cfg: dict[str, Any], work: str) -> Any:
    """A redis-server standing in for the head's store, the node table mirrored as the controller does;
    the client knows the head as `up` leaves it (one listing). Returns the running servers."""
    import random

    from cloudtik_jupyter.cluster.context import ClusterContext
    from cloudtik_jupyter.config import load_config
    from cloudtik_jupyter.state.records import NodeRecord
    from cloudtik_jupyter.state.redis_server import prepare_redis, start_redis_servers
    from cloudtik_jupyter.state.store import StateStore

    host = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(2, 250)}"
    servers = await start_redis_servers(prepare_redis(Path(work) / "redis", host, shards=2))
    ctx = ClusterContext(load_config(cfg, check_files=False))
    nodes = await ctx.nodes()  # what `up` lists last: the client remembers the head
    async with StateStore.connect(servers.plan.endpoints) as store:
        await store.upsert_nodes(
            [
                NodeRecord(n.node_id, n.node_type, n.kind, n.address.internal_ip, n.status, n.seq)
                for n in nodes
            ]
        )
    await ctx.close()
    return servers


def fake_clouds(home: str, nodes: int, reads: int) -> None:
    """Cold and warm status reads on GCP and Azure: requests as the fake REST servers saw them."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "clouds"))
    from fakes.azure import FakeAzure
    from fakes.envs import AzureEnv, GcpEnv
    from fakes.gcp import FakeGcp

    from cloudtik_jupyter.api import Cluster

    os.environ.update(
        AZURE_CONFIG_DIR=os.path.join(home, "none"),
        CLOUDSDK_CONFIG=os.path.join(home, "none"),
        GOOGLE_APPLICATION_CREDENTIALS=os.path.join(home, "none.json"),
    )
    gcp_image = {"sourceImage": "projects/debian-cloud/global/images/family/debian-12"}
    azure_image = {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}}
    for cloud, fake, make_env, image in (
        ("gcp", FakeGcp(), GcpEnv, gcp_image),
        ("azure", FakeAzure(), AzureEnv, azure_image),
    ):
        fake.start()
        try:
            env = make_env(fake, Path(home))  # type: ignore[operator]
            env.workspace("bench").create()
            cfg = {
                **config("", "", nodes),
                "provider": env.provider_dict(),
                "available_node_types": {
                    "head": {"node_config": image},
                    "worker": {"node_config": image, "min_workers": nodes - 1, "max_workers": nodes - 1},
                },
            }
            asyncio.run(launch(cfg, nodes))
            cold: Counter[str] = Counter()
            warm: Counter[str] = Counter()
            for _ in range(reads):
                cluster = Cluster(cfg)
                for seen in (cold, warm):
                    before = len(fake.server.requests)
                    assert cluster.status().nodes
                    for r in fake.server.requests[before:]:
                        *_, kind, last = r.path.rstrip("/").split("/")
                        one = last.startswith("bench-")  # a node's own resource, not a collection
                        seen[f"{r.method} {'one of ' + kind if one else 'list ' + last}"] += 1
            for label, seen in (("cold", cold), ("warm", warm)):
                print(f"{cloud} {label} status: {sum(seen.values()) / reads:.1f} calls/status")
                for kind, n in sorted(seen.items()):
                    print(f"    {kind:<32} {n / reads:8.1f} /status")
        finally:
            fake.stop()


def show(title: str, counter: CallCounter, per: float, unit: str) -> None:
    print(f"{title}: {counter.total() / per:.1f} calls/{unit}")
    for kind, n in sorted(counter.calls.items()):
        print(f"    {kind:<32} {n / per:8.1f} /{unit}")


def main(seconds: float, nodes: int, count: int, reads: int) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        with tempfile.TemporaryDirectory(prefix="cloudtik-bench-calls-") as home:
            os.environ.update(
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
                AWS_DEFAULT_REGION="us-east-1",
                AWS_CONFIG_FILE=os.path.join(home, "none"),
                AWS_SHARED_CREDENTIALS_FILE=os.path.join(home, "none"),
                AWS_EC2_METADATA_DISABLED="true",
                CLOUDTIK_HOME=home,
            )
            import logging

            from cloudtik_jupyter.api.workspace import Workspace
            from cloudtik_jupyter.providers.aws.clients import make_clients

            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            ec2 = make_clients("us-east-1", endpoint).ec2
            image = str(ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])
            Workspace(
                {
                    "workspace_name": "bench",
                    "provider": {"type": "aws", "region": "us-east-1", "endpoint_url": endpoint},
                    "networking": {"allowed_ssh_cidrs": ["203.0.113.7/32"]},
                }
            ).create()
            cfg = config(endpoint, image, nodes)
            asyncio.run(launch(cfg, nodes))

            print(f"{nodes}-node cluster on AWS (moto); calls counted by botocore event hooks")
            show("cold status (a new process each)", cold_status(cfg, reads), reads, "status")
            servers = asyncio.run(head_store(cfg, home))
            try:
                started = time.monotonic()
                counter, updates = asyncio.run(watchers(cfg, count, seconds, servers.plan.endpoints))
                minutes = (time.monotonic() - started) / 60
            finally:
                asyncio.run(servers.stop())
            show(f"{count} watchers for {seconds:.0f} s on the head's store", counter, minutes, "min")
            listings = counter.calls["listing"] / minutes
            print(f"    updates seen: {updates} (coalesced: at most one per heartbeat_interval = 1 s)")
            print(f"    target (issue 15): <= 2 listings/min in total: {listings:.1f}")
            started = time.monotonic()
            counter, updates = asyncio.run(watchers(cfg, count, seconds))
            minutes = (time.monotonic() - started) / 60
            show(
                f"{count} watchers for {seconds:.0f} s, head unreachable (provider)", counter, minutes, "min"
            )
            listings = counter.calls["listing"] / minutes
            print(f"    listings/min in total: {listings:.1f}; updates seen: {updates}")
            fake_clouds(home, nodes, reads)
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--watchers", type=int, default=3)
    parser.add_argument("--reads", type=int, default=5)
    args = parser.parse_args()
    main(args.seconds, args.nodes, args.watchers, args.reads)
