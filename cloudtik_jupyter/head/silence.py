"""A node that falls silent is looked for at once, not on the controller's next period.

Views read the node table the controller mirrors from the provider (cluster/readmodel.py), so a node
that dies (an instance terminated from the cloud console, a process tree killed on `virtual`) would stay
in every view until the controller's next listing: up to `head.controller_interval`. Instead the
controller checks the heartbeat index four times a `heartbeat_interval` (one score-range read per shard
that returns only the nodes already late: usually nothing, whatever the node count) and
wakes its tick as soon as a node misses SILENT_AFTER intervals; the tick lists the provider and removes
the node's row if the provider no longer has it. Once per silence: a node that beats again may wake it
again later, a hung one that stays listed costs one extra tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection

from redis.exceptions import RedisError

from ..state.store import StateStore

log = logging.getLogger("cloudtik.controller")

SILENT_AFTER = 1.25  # heartbeat intervals without a heartbeat before the controller looks
CHECKS_PER_INTERVAL = 4  # how often the heartbeat index is read (one range read per shard each)


class SilenceWatch:
    def __init__(self) -> None:
        self.suspected: set[str] = set()

    def newly_silent(
        self, beats: dict[str, float], known: Collection[str], now: float, interval: float
    ) -> list[str]:
        """Nodes (of `known`) that have beaten but not within SILENT_AFTER intervals, each once per silence.
        `beats` may hold every node's last heartbeat or only the old ones (`StateStore.heartbeats_before`)."""
        limit = SILENT_AFTER * interval
        silent = {node_id for node_id, beat in beats.items() if now - beat > limit and node_id in known}
        found = sorted(silent - self.suspected)
        self.suspected = silent  # a node that beat again (or left) is no longer suspected
        return found


async def watch_silence(
    store: StateStore,
    known: Callable[[], Collection[str]],
    interval: Callable[[], float],
    wake: asyncio.Event,
    watch: SilenceWatch | None = None,
) -> None:
    """Run beside the controller's loop: set `wake` when a node of `known()` falls silent."""
    watch = watch or SilenceWatch()
    while True:
        await asyncio.sleep(interval() / CHECKS_PER_INTERVAL)  # the check's period, not synchronisation
        now = time.time()
        try:
            beats = await store.heartbeats_before(now - SILENT_AFTER * interval())
        except (RedisError, OSError) as exc:  # the store restarting: the tick's own period covers it
            log.debug("silence check skipped: %s", exc)
            continue
        silent = watch.newly_silent(beats, known(), now, interval())
        if silent:
            log.info("silent node(s) %s: looking at the provider now", ", ".join(silent[:5]))
            wake.set()
