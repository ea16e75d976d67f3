"""A user watching a real `virtual` cluster while others act on it from the terminal: the watch reads the
head's store (no provider listing while the head is up), `cloudtik kill-node` and a worker's process tree
dying both take the worker out of the watch promptly (long before the controller's period), and `scale`
again is seen by the watch and by `cloudtik status` (a new process each)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from cloudtik_jupyter.api import Cluster
from cloudtik_jupyter.records.cluster import ClusterStatus
from cloudtik_jupyter.waiting import wait_for
from tests.integration.test_cli_journeys import cloudtik
from tests.jupyter.helpers import kill_node, small_config

pytestmark = pytest.mark.integration
# A controller period longer than every wait below: a dead worker leaving the watch within one is the client
# marking it (kill-node) or the controller's silence watch, not its period.
HEAD = {"controller_interval": 120.0, "heartbeat_interval": 0.5, "heartbeat_timeout": 10.0}
PROMPTLY = 30.0  # seconds: a deadline for the waits (the machine may be loaded), well within the period


class CountingProvider:
    """The watcher's own provider, counting every listing it makes (all else passes through)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.listings = 0

    def list_nodes(self, tags: Mapping[str, str]) -> Any:
        self.listings += 1
        return self.inner.list_nodes(tags)

    def non_terminated_nodes(self, tags: Mapping[str, str]) -> Any:
        self.listings += 1
        return self.inner.non_terminated_nodes(tags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Watch:
    def __init__(self, cluster: Cluster) -> None:
        self.latest: ClusterStatus | None = None
        self.task = asyncio.ensure_future(self.run(cluster))

    async def run(self, cluster: Cluster) -> None:
        async for status in cluster.watch_async(max_interval=1.0):
            self.latest = status

    def workers(self) -> list[tuple[str, str]]:
        return [(w.node_id, w.status) for w in self.latest.workers] if self.latest else []

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def test_kill_a_worker_twice_and_scale_again_while_watching(cloudtik_home: Path) -> None:
    name = "watched"
    owner = Cluster(small_config(name, workers=1, max_workers=3, head=HEAD))
    await owner.up_async()
    watcher = Cluster(name)  # another client (a notebook, the panel's server): the head known from `up`
    counted = CountingProvider(watcher._ctx.provider)
    watcher._ctx._provider = counted  # type: ignore[assignment]
    watch = Watch(watcher)
    try:
        await wait_for(
            lambda: (
                watch.latest is not None and watch.latest.source == "store" and len(watch.latest.nodes) == 2
            ),
            timeout=30,
            what="the watch to read the store",
        )
        status = cloudtik(cloudtik_home, "status", name)
        assert status.returncode == 0 and "workers ready 1 / desired 1" in status.stdout, status.stderr
        # `cloudtik kill-node` in another process: gone from the watch at once, then replaced.
        killed = cloudtik(cloudtik_home, "kill-node", name, "--yes")
        assert killed.returncode == 0, killed.stderr
        victim = killed.stdout.split()[1]
        await wait_for(
            lambda: victim not in [n for n, _ in watch.workers()],
            timeout=PROMPTLY,
            what="the killed worker to leave",
        )
        await wait_for(
            lambda: [s for n, s in watch.workers() if n != victim] == ["up-to-date"],
            timeout=60,
            what="the replacement in the watch",
        )
        # A worker's process tree dies (an instance dying under the cloud): the controller's silence watch
        # looks at once, long before its period; the watch drops the worker, and it is replaced.
        ((second, _),) = watch.workers()
        kill_node(cloudtik_home, second)
        await wait_for(
            lambda: second not in [n for n, _ in watch.workers()],
            timeout=PROMPTLY,
            what="the dead worker to leave",
        )
        # Scale again from the terminal: the watch and a new `status` process see both workers.
        scaled = cloudtik(cloudtik_home, "scale", name, "2", "-q")
        assert scaled.returncode == 0, scaled.stderr
        await wait_for(
            lambda: [s for _, s in watch.workers()] == ["up-to-date"] * 2,
            timeout=60,
            what="two workers in the watch",
        )
        again = cloudtik(cloudtik_home, "status", name)
        assert again.returncode == 0 and "workers ready 2 / desired 2" in again.stdout, again.stderr
        assert victim not in again.stdout and second not in again.stdout
    finally:
        await watch.stop()
        await owner.down_async()
    assert counted.listings == 0  # the watch never listed the provider: the head was up throughout
