"""Desired worker counts on the store's primary: the user's requests, and the controller's idle releases.

    cloudtik:desired        hash  node type -> desired workers
    cloudtik:desired-meta   hash  version (+1 on every change), requested_at (server time of the last
                                  scale request: no idle release within idle_timeout of it)

A request overwrites counts. A release is a compare-and-set (it lowers a count only if nobody changed it
since the controller read it), so a request landing mid-tick is never overwritten. The version lets a new
head pick the newest of what the client and the provider tags remember (`head/identity.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis.asyncio as aioredis

DESIRED = "cloudtik:desired"
DESIRED_META = "cloudtik:desired-meta"

# KEYS: desired, meta. ARGV: type1, count1, type2, count2, ...
_REQUEST = """
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local now = redis.call('TIME')
redis.call('HSET', KEYS[2], 'requested_at', now[1] .. '.' .. string.format('%06d', tonumber(now[2])))
return redis.call('HINCRBY', KEYS[2], 'version', 1)
"""

# KEYS: desired, meta. ARGV: type, expected ('' = unset), new. Returns the new version, or 0 if it changed.
_RELEASE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (current or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return redis.call('HINCRBY', KEYS[2], 'version', 1)
"""

# KEYS: desired, meta. ARGV: version, type1, count1, ... Seeds counts only into a store that has none.
_SEED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local v = tonumber(redis.call('HGET', KEYS[2], 'version') or '0')
if v < tonumber(ARGV[1]) then redis.call('HSET', KEYS[2], 'version', ARGV[1]) end
return 1
"""

# Server time, so the controller (on the head, beside the primary) and the clients share one clock.
_NOW = "local t = redis.call('TIME') return t[1] .. '.' .. string.format('%06d', tonumber(t[2]))"


@dataclass(frozen=True)
class DesiredState:
    counts: dict[str, int] = field(default_factory=dict)
    version: int = 0
    requested_at: float | None = None  # server time of the last scale request
    now: float = 0.0  # server time when read


async def request(primary: aioredis.Redis, counts: dict[str, int]) -> int:
    args = [str(x) for kv in counts.items() for x in kv]
    return int(await primary.eval(_REQUEST, 2, DESIRED, DESIRED_META, *args))


async def release(primary: aioredis.Redis, node_type: str, expected: int | None, new: int) -> bool:
    want = "" if expected is None else str(expected)
    done = await primary.eval(_RELEASE, 2, DESIRED, DESIRED_META, node_type, want, str(new))
    return bool(int(done))


async def seed(primary: aioredis.Redis, counts: dict[str, int], version: int) -> bool:
    args = [str(x) for kv in counts.items() for x in kv]
    done = await primary.eval(_SEED, 2, DESIRED, DESIRED_META, str(version), *args)
    return bool(int(done))


async def read(primary: aioredis.Redis) -> DesiredState:
    async with primary.pipeline(transaction=False) as pipe:
        pipe.hgetall(DESIRED)
        pipe.hgetall(DESIRED_META)
        pipe.eval(_NOW, 0)
        counts, meta, now = await pipe.execute()
    requested = meta.get("requested_at")
    return DesiredState(
        counts={str(k): int(v) for k, v in counts.items()},
        version=int(meta.get("version", 0)),
        requested_at=float(requested) if requested else None,
        now=float(now),
    )
