"""The head's state store: typed tables over a Redis primary plus shards.

Layout. Node data lives on the shard chosen by a stable hash (crc32) of the node id:
  ``cloudtik:node:<id>``     hash, the node row (one field changes atomically, e.g. status)
  ``cloudtik:nodes``         set of registered node ids on this shard
  ``cloudtik:heartbeats``    sorted set node id -> last heartbeat time (lost nodes = a range query)
  ``cloudtik:processes``     hash node id -> JSON list of its processes
  ``cloudtik:metrics``       hash node id -> JSON metrics
  ``cloudtik:history:<id>``  list, the node's last HISTORY_LENGTH (time, cpu, memory) samples (a ring)
The primary holds what must be global: ``cloudtik:seq`` (sequence ids, INCR), ``cloudtik:events``
(a capped list) and the ``cloudtik:changes`` pub/sub channel every write publishes on.

A heartbeat is six commands in one pipeline to its shard (two for its history ring); a batch of
heartbeats is five commands per shard (multi-member ZADD/HSET, one script call for every ring).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import redis.asyncio as aioredis

from . import desired as desired_counts
from .changes import CHANNEL, ChangeSubscription
from .clients import redis_client as _client
from .endpoints import RedisEndpoints
from .records import (
    MAX_IDS_PER_CHANGE,
    TERMINATED,
    Change,
    ChangeKind,
    Event,
    Heartbeat,
    MetricSample,
    NodeActivity,
    NodeHealth,
    NodeMetrics,
    NodeRecord,
    ProcessRecord,
    decode_metrics,
    decode_processes,
    encode_metrics,
    encode_processes,
    health_summary,
)

__all__ = ["NodeHealth", "StateStore", "health_summary"]

NODES = "cloudtik:nodes"
HEARTBEATS = "cloudtik:heartbeats"
PROCESSES = "cloudtik:processes"
# node id -> NodeHealth.encode(): what the controller needs every tick (busiest service, failed services,
# activity), without decoding every node's process list.
HEALTH = "cloudtik:health"
METRICS = "cloudtik:metrics"
HISTORY_LENGTH = 60  # samples per node: a minute at the default heartbeat interval


def history_key(node_id: str) -> str:
    return f"cloudtik:history:{node_id}"


SEQ = "cloudtik:seq"
EVENTS = "cloudtik:events"
UPDATE_TRIES = (
    "cloudtik:update-tries"  # node id -> failed setup/recovery tries (survives controller restarts)
)

# Raise the sequence counter to at least ARGV[1] (the controller adopting nodes numbered before it ran).
_SEQ_FLOOR = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) return tonumber(ARGV[1]) end
return current
"""


# KEYS: the node's row, the heartbeat index; ARGV: node id, the terminated status.
_MARK_TERMINATED = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'status', ARGV[2]) end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""


def node_key(node_id: str) -> str:
    return f"cloudtik:node:{node_id}"


def shard_index(node_id: str, shard_count: int) -> int:
    """Stable across processes and restarts (unlike ``hash()``)."""
    return zlib.crc32(node_id.encode()) % shard_count


# One read command (ARGV[1], its arguments after) on every key, replies in the order of KEYS (as a flat
# list each: an HGETALL gives field, value, field, value, ...).
_EACH = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call(ARGV[1], key, unpack(ARGV, 2)) end
return out
"""

# Push ARGV[i + 1] onto each node's ring KEYS[i] and keep its last ARGV[1] samples.
_PUSH_SAMPLES = """
local keep = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('RPUSH', key, ARGV[i + 1])
  redis.call('LTRIM', key, -keep, -1)
end
return #KEYS
"""


def _score_pairs(reply: Any) -> Iterable[tuple[str, float]]:
    """(member, score) pairs of a raw ZRANGE ... WITHSCORES reply: nested pairs (RESP3: scores are already
    floats) or flat (RESP2: scores are strings)."""
    if reply and isinstance(reply[0], list) and isinstance(reply[0][1], float):
        return cast("list[tuple[str, float]]", reply)
    if reply and isinstance(reply[0], list):
        return [(member, float(score)) for member, score in reply]
    items = iter(reply or ())
    return [(member, float(score)) for member, score in zip(items, items, strict=True)]


# What views read is decoded entry by entry: a row no version of cloudtik wrote (a restricted worker user
# can write its own metrics, history and events) is skipped, never an exception in every view.
_UNDECODABLE = (ValueError, TypeError, KeyError, IndexError, AttributeError)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sane_metrics(raw: str | bytes | None) -> NodeMetrics | None:
    try:
        m = decode_metrics(raw)
    except _UNDECODABLE:
        return None
    if m is None or not (_number(m.cpu_percent) and _number(m.memory_used) and _number(m.memory_total)):
        return None
    return m


def _samples(ring: list[Any]) -> list[MetricSample]:
    samples = []
    for raw in ring:
        try:
            samples.append(MetricSample.decode(raw))
        except _UNDECODABLE:
            continue
    return samples


Series = tuple[tuple[float, ...], tuple[int, ...]]  # cpu percents, memory used


def _series(ring: list[Any]) -> Series:
    """A history ring as two columns: one split for the whole ring; sample by sample only if some sample
    does not decode (then those are skipped)."""
    try:
        flat = ",".join(ring).split(",")
        if len(flat) != 3 * len(ring):
            raise ValueError("not three fields a sample")
        return tuple(map(float, flat[1::3])), tuple(map(int, flat[2::3]))
    except _UNDECODABLE:
        samples = _samples(ring)
        return tuple(s.cpu_percent for s in samples), tuple(s.memory_used for s in samples)


def _sane_event(raw: str | bytes) -> Event | None:
    try:
        e = Event.from_json(raw)
    except _UNDECODABLE:
        return None
    ok = _number(e.time) and isinstance(e.kind, str) and isinstance(e.message, str)
    return e if ok and (e.node_id is None or isinstance(e.node_id, str)) else None


def _push_sample(pipe: Any, node_id: str, sample: MetricSample) -> None:
    pipe.rpush(history_key(node_id), sample.encode())
    pipe.ltrim(history_key(node_id), -HISTORY_LENGTH, -1)


class StateStore:
    """Typed access to the cluster's state. Create with `connect`; close with `close` or ``async with``."""

    def __init__(
        self,
        primary: aioredis.Redis,
        shards: Sequence[aioredis.Redis],
        *,
        max_events: int = 1000,
        restricted: bool = False,
    ):
        self._primary = primary
        self._shards = list(shards) or [primary]
        self._max_events = max_events
        # A worker's user (acl.py) may append events but not trim them: the admin's next event trims.
        self._restricted = restricted

    @classmethod
    def connect(
        cls,
        endpoints: RedisEndpoints,
        password: str | None = None,
        *,
        timeout: float = 5.0,
        max_events: int = 1000,
        username: str | None = None,
        source_address: str | None = None,
    ) -> StateStore:
        """Clients for every server (connections open lazily). Password: argument, env, or file.
        `username`: a worker's restricted user (acl.py); None is the admin. `source_address`: connect from
        this local address (a node's own)."""
        pw = password if password is not None else endpoints.read_password()
        primary = _client(endpoints.primary, pw, timeout, source_address, username)
        shards = [_client(s, pw, timeout, source_address, username) for s in endpoints.shards]
        return cls(primary, shards, max_events=max_events, restricted=username is not None)

    @classmethod
    def over_sockets(
        cls, primary: Path, shards: Sequence[Path], password: str, *, timeout: float = 5.0
    ) -> StateStore:
        """Clients for servers reached through Unix sockets (a client's SSH forwards to the head)."""
        return cls(_client(primary, password, timeout), [_client(s, password, timeout) for s in shards])

    async def close(self) -> None:
        for client in {id(c): c for c in [self._primary, *self._shards]}.values():
            await client.aclose()

    async def __aenter__(self) -> StateStore:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def shard_count(self) -> int:
        return len(self._shards)

    def shard_of(self, node_id: str) -> int:
        return shard_index(node_id, len(self._shards))

    def _shard(self, node_id: str) -> aioredis.Redis:
        return self._shards[self.shard_of(node_id)]

    async def reload_acl(self) -> None:
        """Every server re-reads its ACL file (users added or removed: acl.py)."""
        await asyncio.gather(*(c.execute_command("ACL", "LOAD") for c in self._servers()))

    def _servers(self) -> list[aioredis.Redis]:
        return list({id(c): c for c in [self._primary, *self._shards]}.values())

    async def ping(self) -> None:
        """Raises redis' ConnectionError / AuthenticationError unless every server answers."""
        await asyncio.gather(self._primary.ping(), *(s.ping() for s in self._shards))

    async def _publish(self, change: Change) -> None:
        await self._primary.publish(CHANNEL, change.to_json())

    def subscribe(self) -> ChangeSubscription:
        """``async with store.subscribe() as changes: async for change in changes: ...``"""
        return ChangeSubscription(self._primary.pubsub())

    # -- node table ---------------------------------------------------------------------------

    async def upsert_node(self, record: NodeRecord) -> None:
        """Write every field of the node row (the controller's view of the node)."""
        shard = self._shard(record.node_id)
        async with shard.pipeline(transaction=True) as pipe:
            fields: dict[Any, Any] = record.to_fields()
            pipe.hset(node_key(record.node_id), mapping=fields)
            pipe.sadd(NODES, record.node_id)
            await pipe.execute()
        await self._publish(Change(ChangeKind.NODE, (record.node_id,), record.status))

    async def upsert_nodes(self, records: Sequence[NodeRecord]) -> None:
        """Many `upsert_node`s: one pipeline per shard, one notification."""
        groups: dict[int, list[NodeRecord]] = {}
        for record in records:
            groups.setdefault(self.shard_of(record.node_id), []).append(record)

        async def write(index: int, rows: list[NodeRecord]) -> None:
            async with self._shards[index].pipeline(transaction=False) as pipe:
                for row in rows:
                    fields: dict[Any, Any] = row.to_fields()
                    pipe.hset(node_key(row.node_id), mapping=fields)
                pipe.sadd(NODES, *(row.node_id for row in rows))
                await pipe.execute()

        await asyncio.gather(*(write(i, rows) for i, rows in groups.items()))
        ids = tuple(r.node_id for r in records) if len(records) <= MAX_IDS_PER_CHANGE else ()
        await self._publish(Change(ChangeKind.NODE, ids, "many"))

    async def register_node(self, record: NodeRecord) -> None:
        """An agent announcing itself: identity fields are written, an existing status/seq id is kept."""
        fields: dict[Any, Any] = record.to_fields()
        keep = {k: fields.pop(k) for k in ("status", "seq_id") if k in fields}
        shard = self._shard(record.node_id)
        key = node_key(record.node_id)
        async with shard.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            for name, value in keep.items():
                pipe.hsetnx(key, name, value)
            pipe.sadd(NODES, record.node_id)
            await pipe.execute()
        await self._publish(Change(ChangeKind.NODE, (record.node_id,), "registered"))

    async def set_node_status(self, node_id: str, status: str) -> None:
        shard = self._shard(node_id)
        async with shard.pipeline(transaction=True) as pipe:
            pipe.hset(node_key(node_id), mapping={"node_id": node_id, "status": status})
            pipe.sadd(NODES, node_id)
            await pipe.execute()
        await self._publish(Change(ChangeKind.NODE, (node_id,), status))

    async def mark_terminated(self, node_id: str) -> None:
        """A client terminated the node itself: views drop it now (not on the controller's next look),
        and the controller wakes (a NODE_REMOVED change) to remove the row once the provider agrees."""
        # Only a row that exists: one the controller already removed must not come back as a stub.
        await self._shard(node_id).eval(
            _MARK_TERMINATED, 2, node_key(node_id), HEARTBEATS, node_id, TERMINATED
        )
        await self._publish(Change(ChangeKind.NODE_REMOVED, (node_id,), TERMINATED))

    async def node(self, node_id: str) -> NodeRecord | None:
        shard = self._shard(node_id)
        async with shard.pipeline(transaction=False) as pipe:
            pipe.hgetall(node_key(node_id))
            pipe.zscore(HEARTBEATS, node_id)
            fields, beat = await pipe.execute()
        if not fields and beat is None:
            return None
        return NodeRecord.from_fields(node_id, fields, float(beat) if beat is not None else None)

    async def _rows(self, shard: aioredis.Redis, beats: dict[str, float | None]) -> list[NodeRecord]:
        ids = list(beats)
        if not ids:
            return []
        # One script call for every row of the shard: a command per row costs the client more than the
        # server (a thousand rows: most of a status read).
        rows = await shard.eval(_EACH, len(ids), *map(node_key, ids), "HGETALL")
        return [
            NodeRecord.from_fields(i, dict(zip(f[::2], f[1::2], strict=False)), beats[i])
            for i, f in zip(ids, rows, strict=True)
        ]

    async def _shard_nodes(self, shard: aioredis.Redis) -> list[NodeRecord]:
        async with shard.pipeline(transaction=False) as pipe:
            pipe.smembers(NODES)
            pipe.zrange(HEARTBEATS, 0, -1, withscores=True)
            members, scored = await pipe.execute()
        # Nodes that heartbeat without a row are listed too: the controller must see strangers.
        beats: dict[str, float | None] = dict.fromkeys(sorted(members))
        beats.update({node_id: float(score) for node_id, score in scored})
        return await self._rows(shard, beats)

    async def nodes(self) -> list[NodeRecord]:
        """Every node, ordered by sequence id (unnumbered last), then id."""
        per_shard = await asyncio.gather(*(self._shard_nodes(s) for s in self._shards))
        records = [r for rows in per_shard for r in rows]
        return sorted(records, key=lambda r: (r.seq_id is None, r.seq_id or 0, r.node_id))

    async def remove_node(self, node_id: str) -> bool:
        """Delete the node and everything reported about it. True if there was anything."""
        shard = self._shard(node_id)
        async with shard.pipeline(transaction=True) as pipe:
            pipe.delete(node_key(node_id))
            pipe.srem(NODES, node_id)
            pipe.zrem(HEARTBEATS, node_id)
            pipe.hdel(PROCESSES, node_id)
            pipe.hdel(HEALTH, node_id)
            pipe.hdel(METRICS, node_id)
            pipe.delete(history_key(node_id))
            removed = await pipe.execute()
        await self._publish(Change(ChangeKind.NODE_REMOVED, (node_id,)))
        return any(removed)

    # -- heartbeats, processes, metrics ------------------------------------------------------

    async def heartbeat(
        self,
        node_id: str,
        processes: Iterable[ProcessRecord] = (),
        metrics: NodeMetrics | None = None,
        *,
        now: float | None = None,
        activity: NodeActivity | None = None,
    ) -> bool:
        """Record one node's heartbeat. True when its shard did not know the node (first
        heartbeat, or the shard lost its data in a restart): the agent then registers again."""
        t = time.time() if now is None else now
        async with self._shard(node_id).pipeline(transaction=False) as pipe:
            pipe.zadd(HEARTBEATS, {node_id: t})
            processes = tuple(processes)
            pipe.hset(PROCESSES, node_id, encode_processes(processes))
            pipe.hset(HEALTH, node_id, health_summary(processes, activity))
            sample = metrics or NodeMetrics()
            pipe.hset(METRICS, node_id, encode_metrics(sample))
            _push_sample(pipe, node_id, MetricSample(t, sample.cpu_percent, sample.memory_used))
            added, *_ = await pipe.execute()
        await self._publish(Change(ChangeKind.HEARTBEAT, (node_id,)))
        return bool(added)

    async def heartbeats(self, batch: Sequence[Heartbeat], *, now: float | None = None) -> int:
        """Record many heartbeats: three commands per shard, one notification. Returns how many
        nodes were new to their shard."""
        t = time.time() if now is None else now
        groups: dict[int, list[Heartbeat]] = {}
        for beat in batch:
            groups.setdefault(self.shard_of(beat.node_id), []).append(beat)

        async def write(index: int, beats: list[Heartbeat]) -> int:
            async with self._shards[index].pipeline(transaction=False) as pipe:
                pipe.zadd(HEARTBEATS, {b.node_id: b.time if b.time is not None else t for b in beats})
                pipe.hset(PROCESSES, mapping={b.node_id: encode_processes(b.processes) for b in beats})
                pipe.hset(HEALTH, mapping={b.node_id: health_summary(b.processes, b.activity) for b in beats})
                pipe.hset(METRICS, mapping={b.node_id: encode_metrics(b.metrics) for b in beats})
                # Every node's ring in one script call: two commands per node would halve the ingest.
                pipe.eval(
                    _PUSH_SAMPLES,
                    len(beats),
                    *(history_key(b.node_id) for b in beats),
                    HISTORY_LENGTH,
                    *(
                        MetricSample(
                            b.time if b.time is not None else t, b.metrics.cpu_percent, b.metrics.memory_used
                        ).encode()
                        for b in beats
                    ),
                )
                added, *_ = await pipe.execute()
            return int(added)

        added = await asyncio.gather(*(write(i, beats) for i, beats in groups.items()))
        ids = tuple(b.node_id for b in batch) if len(batch) <= MAX_IDS_PER_CHANGE else ()
        await self._publish(Change(ChangeKind.HEARTBEAT, ids))
        return sum(added)

    async def heartbeat_times(self) -> dict[str, float]:
        """Node id -> last heartbeat (unix time), for every node: one range read per shard."""
        # The raw command: redis-py's own ZRANGE reply handling re-encodes every RESP3 score to bytes and
        # back, most of the cost of this read at 10,000 nodes.
        per_shard = await asyncio.gather(
            *(s.execute_command("ZRANGE", HEARTBEATS, 0, -1, "WITHSCORES") for s in self._shards)
        )
        times: dict[str, float] = {}
        for rows in per_shard:
            times.update(_score_pairs(rows))
        return times

    async def heartbeats_before(self, cutoff: float) -> dict[str, float]:
        """Node id -> last heartbeat, for the nodes that last beat before `cutoff` (unix time) only: one
        score-range read per shard, as small as the answer (usually empty) whatever the node count."""
        per_shard = await asyncio.gather(
            *(
                s.execute_command("ZRANGE", HEARTBEATS, "-inf", f"({cutoff}", "BYSCORE", "WITHSCORES")
                for s in self._shards
            )
        )
        times: dict[str, float] = {}
        for rows in per_shard:
            times.update(_score_pairs(rows))
        return times

    async def all_health(self) -> dict[str, NodeHealth]:
        """Node id -> busiest service and failed services, for every node: one read per shard."""
        per_shard = await asyncio.gather(*(s.hgetall(HEALTH) for s in self._shards))
        health: dict[str, NodeHealth] = {}
        for rows in cast("list[dict[str, str]]", per_shard):
            health.update(zip(rows, map(NodeHealth.parse, rows.values()), strict=True))
        return health

    async def all_processes(self) -> dict[str, list[ProcessRecord]]:
        """Node id -> its processes as last reported, for every node: one read per shard."""
        per_shard = await asyncio.gather(*(s.hgetall(PROCESSES) for s in self._shards))
        return {str(k): decode_processes(v) for rows in per_shard for k, v in rows.items()}

    async def all_metrics(self) -> dict[str, NodeMetrics]:
        """Node id -> its last metrics; an entry that does not decode (a broken or hostile writer) is left
        out, not the whole table."""
        per_shard = await asyncio.gather(*(s.hgetall(METRICS) for s in self._shards))
        return {
            str(k): m for rows in per_shard for k, v in rows.items() if (m := _sane_metrics(v)) is not None
        }

    async def histories(self, node_ids: Iterable[str]) -> dict[str, list[MetricSample]]:
        """Each node's recent samples, oldest first: one pipeline per shard."""
        groups: dict[int, list[str]] = {}
        for node_id in node_ids:
            groups.setdefault(self.shard_of(node_id), []).append(node_id)

        async def read(index: int, ids: list[str]) -> dict[str, list[MetricSample]]:
            async with self._shards[index].pipeline(transaction=False) as pipe:
                for node_id in ids:
                    pipe.lrange(history_key(node_id), 0, -1)
                rings = await pipe.execute()
            return {i: _samples(ring) for i, ring in zip(ids, rings, strict=True)}

        per_shard = await asyncio.gather(*(read(i, ids) for i, ids in groups.items()))
        return {node_id: ring for part in per_shard for node_id, ring in part.items()}

    async def history_series(self, node_ids: Iterable[str]) -> dict[str, Series]:
        """Each node's recent (cpu percents, memory used), oldest first: what views draw, read without a
        record per sample (a thousand nodes' minute is 60,000 samples)."""
        groups: dict[int, list[str]] = {}
        for node_id in node_ids:
            groups.setdefault(self.shard_of(node_id), []).append(node_id)

        async def read(index: int, ids: list[str]) -> dict[str, Series]:
            rings = await self._shards[index].eval(_EACH, len(ids), *map(history_key, ids), "LRANGE", 0, -1)
            return {i: _series(ring) for i, ring in zip(ids, rings, strict=True)}

        per_shard = await asyncio.gather(*(read(i, ids) for i, ids in groups.items()))
        return {node_id: series for part in per_shard for node_id, series in part.items()}

    async def processes(self, node_id: str) -> list[ProcessRecord]:
        return decode_processes(await self._shard(node_id).hget(PROCESSES, node_id))

    async def metrics(self, node_id: str) -> NodeMetrics | None:
        return decode_metrics(await self._shard(node_id).hget(METRICS, node_id))

    async def lost_nodes(self, timeout: float, now: float | None = None) -> list[NodeRecord]:
        """Nodes whose last heartbeat is older than `timeout` seconds (never-seen nodes are not lost)."""
        cutoff = (time.time() if now is None else now) - timeout

        async def shard_lost(shard: aioredis.Redis) -> list[NodeRecord]:
            stale = cast(
                "list[tuple[str, float]]",
                await shard.zrangebyscore(HEARTBEATS, "-inf", f"({cutoff}", withscores=True),
            )
            return await self._rows(shard, {node_id: float(score) for node_id, score in stale})

        per_shard = await asyncio.gather(*(shard_lost(s) for s in self._shards))
        return sorted((r for rows in per_shard for r in rows), key=lambda r: r.node_id)

    # -- primary: sequence ids, events -------------------------------------------------------

    async def next_seq_id(self) -> int:
        """Unique, increasing, never reused (the primary persists its counter). The first is 1 (the head)."""
        return int(await self._primary.incr(SEQ))

    async def ensure_seq_at_least(self, floor: int) -> int:
        """Make sure the next `next_seq_id` is above `floor`; returns the counter."""
        return int(await self._primary.eval(_SEQ_FLOOR, 1, SEQ, floor))

    async def set_desired(self, counts: dict[str, int]) -> None:
        """Record a scale request (node type -> workers) and wake the controller."""
        if counts:
            await desired_counts.request(self._primary, counts)
        await self._publish(Change(ChangeKind.SCALE, (), ",".join(f"{k}={v}" for k, v in counts.items())))

    async def release_desired(self, node_type: str, expected: int | None, new: int) -> bool:
        """The controller lowering a request after releasing idle workers: only if it is still `expected`
        (False when a request changed it meanwhile)."""
        return await desired_counts.release(self._primary, node_type, expected, new)

    async def seed_desired(self, counts: dict[str, int], version: int) -> bool:
        """A new head restoring its predecessor's requests: only into a store that has none."""
        return await desired_counts.seed(self._primary, counts, version)

    async def request_reconcile(self, why: str) -> None:
        """Wake the controller now (e.g. its config changed), without changing any request."""
        await self._publish(Change(ChangeKind.SCALE, (), why))

    async def desired(self) -> dict[str, int]:
        return (await desired_counts.read(self._primary)).counts

    async def desired_state(self) -> desired_counts.DesiredState:
        """Counts, their version and when the last scale request came (server clock)."""
        return await desired_counts.read(self._primary)

    async def seq_counter(self) -> int:
        """The highest sequence id handed out so far (0 in a new store)."""
        return int(await self._primary.get(SEQ) or 0)

    async def add_update_try(self, node_id: str) -> int:
        return int(await self._primary.hincrby(UPDATE_TRIES, node_id, 1))

    async def update_tries(self) -> dict[str, int]:
        raw = await self._primary.hgetall(UPDATE_TRIES)
        return {str(k): int(v) for k, v in raw.items()}

    async def clear_update_tries(self, node_id: str) -> None:
        await self._primary.hdel(UPDATE_TRIES, node_id)

    async def add_event(
        self, kind: str, message: str, node_id: str | None = None, *, now: float | None = None
    ) -> Event:
        event = Event(time.time() if now is None else now, kind, message, node_id)
        async with self._primary.pipeline(transaction=True) as pipe:
            pipe.rpush(EVENTS, event.to_json())
            if not self._restricted:
                pipe.ltrim(EVENTS, -self._max_events, -1)
            await pipe.execute()
        await self._publish(Change(ChangeKind.EVENT, (node_id,) if node_id else (), kind))
        return event

    async def events(self, limit: int = 100) -> list[Event]:
        """The last `limit` events, oldest first."""
        if limit <= 0:
            return []
        return [
            e for raw in await self._primary.lrange(EVENTS, -limit, -1) if (e := _sane_event(raw)) is not None
        ]
