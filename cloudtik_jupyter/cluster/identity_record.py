"""The client's copy of the head's identity (head/identity.py), refreshed whenever the client reads the
head's store: `up`, `scale` and `status` (and so every live view)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..head.identity import IDENTITY_FILE, HeadIdentity
from .context import ClusterContext

if TYPE_CHECKING:
    from ..state.desired import DesiredState
    from ..state.store import StateStore


async def remember_identity(
    ctx: ClusterContext, store: StateStore, wanted: DesiredState | None = None
) -> None:
    """Save what a new head would need after a crash of this one (written only when it changed)."""
    wanted = wanted or await store.desired_state()
    known = HeadIdentity(max(await store.seq_counter(), 1), wanted.counts, wanted.version)
    if HeadIdentity.load(ctx.dir / IDENTITY_FILE) != known:
        known.save(ctx.dir / IDENTITY_FILE)
