"""Is the head really working? A head whose node runs but whose agent, store or services died is an error
(`status` says so and exits 1; `up` repairs it), not "up-to-date"."""

from __future__ import annotations

import time

from redis.exceptions import RedisError

from ..errors import CloudtikError
from ..state.records import ProcessStatus
from .context import ClusterContext, NodeRef


async def head_problem(ctx: ClusterContext, head: NodeRef, beat: float | None = None) -> str | None:
    """Why the head is not healthy (one line), or None. `beat`: its last heartbeat if already read."""
    timeout = ctx.config.head.heartbeat_timeout
    try:
        store = await ctx.store(head)
        if beat is None:
            beat = (await store.heartbeat_times()).get(head.node_id)
        processes = await store.processes(head.node_id)
    except (CloudtikError, OSError, RedisError) as exc:
        return f"head {head.node_id}: its state store does not answer ({_short(exc)})"
    if beat is None:
        return f"head {head.node_id}: its node agent has never reported"
    age = time.time() - beat
    if age > timeout:
        return f"head {head.node_id}: its node agent has not reported for {age:.0f}s"
    failed = [p.name for p in processes if p.status in (ProcessStatus.FAILED, ProcessStatus.STOPPED)]
    if failed:
        return f"head {head.node_id}: service(s) not running: {', '.join(failed)}"
    return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
