"""The head's identity, kept where a new head finds it: the client's record and the workers' provider tags.

A head can die with its disk (its instance is gone). What a new head must not lose:
- its SSH key for the workers: generated and kept by the client (``head_key`` in the cluster's record,
  0600) and uploaded on every head setup, so workers set up by the old head accept the new one;
- the sequence counter's high-water mark: a new head must never hand out an id again;
- the desired counts (the user's requests and the idle releases since).

The client refreshes `HeadIdentity` in its record (``identity.json``) whenever it reads the head's store
(up, scale, status) and uploads it with the head's setup. The controller also writes the high-water mark
and each type's desired count (with the store's version of it) into worker tags. A new controller takes,
per item, the newest of the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import paths
from ..errors import CloudtikError
from ..providers import tags as T

if TYPE_CHECKING:
    from ..cluster.context import NodeRef
    from ..providers.base import NodeProvider
    from ..state.store import StateStore

from ..records.layout import IDENTITY_FILE as IDENTITY_FILE

RESERVE_ON = 3  # workers that carry the high-water mark before new seq ids are handed out


@dataclass(frozen=True)
class HeadIdentity:
    seq_hwm: int = 1  # the head is 1
    desired: dict[str, int] = field(default_factory=dict)
    desired_version: int = 0

    def to_json(self) -> str:
        return json.dumps(
            {"seq_hwm": self.seq_hwm, "desired": self.desired, "desired_version": self.desired_version},
            sort_keys=True,
        )

    @classmethod
    def load(cls, path: Path) -> HeadIdentity | None:
        """The record at `path`, or None if it is missing or unreadable (then the tags decide)."""
        try:
            data = json.loads(path.read_text())
            return cls(
                seq_hwm=int(data.get("seq_hwm", 1)),
                desired={str(k): int(v) for k, v in dict(data.get("desired", {})).items()},
                desired_version=int(data.get("desired_version", 0)),
            )
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    def save(self, path: Path) -> None:
        paths.write_private(path, self.to_json() + "\n")


def desired_tag(count: int, version: int) -> str:
    return f"{count}v{version}"  # fits every cloud's label rules (GCP: [a-z0-9_-])


def parse_desired_tag(value: str | None) -> tuple[int, int] | None:
    """(count, version) from a `desired_tag`, None if absent or malformed."""
    if not value:
        return None
    count, sep, version = value.partition("v")
    if not sep or not _digits(count) or not _digits(version):
        return None
    return int(count), int(version)


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _int_tag(tags: Mapping[str, str], key: str) -> int:
    with contextlib.suppress(ValueError):
        return int(tags.get(key, "0"))
    return 0


def recovered_identity(client: HeadIdentity | None, node_tags: Iterable[Mapping[str, str]]) -> HeadIdentity:
    """What a new head starts from: the newest of the client's record and the live nodes' tags."""
    base = client or HeadIdentity()
    hwm = base.seq_hwm
    per_type: dict[str, tuple[int, int]] = {}  # type -> (version, count), from tags
    for tags in node_tags:
        hwm = max(hwm, _int_tag(tags, T.SEQ_HWM), _int_tag(tags, T.NODE_SEQ))
        parsed = parse_desired_tag(tags.get(T.DESIRED))
        node_type = tags.get(T.NODE_TYPE, "")
        if parsed is not None and node_type:
            count, version = parsed
            if version > per_type.get(node_type, (-1, 0))[0]:
                per_type[node_type] = (version, count)
    desired = dict(base.desired)
    version = base.desired_version
    for node_type, (tag_version, count) in per_type.items():
        if tag_version > base.desired_version or node_type not in desired:
            desired[node_type] = count
            version = max(version, tag_version)
    return HeadIdentity(seq_hwm=hwm, desired=desired, desired_version=version)


# -- the controller's side (I/O) ---------------------------------------------------------------------


async def restore_identity(store: StateStore, record: Path, workers: list[NodeRef]) -> str | None:
    """On a controller's start: raise the seq counter to the high-water mark and seed the desired counts
    into a store that has none. Returns what it restored, to log, or None if the store already knew."""
    client = HeadIdentity.load(record)
    known = recovered_identity(client, [w.tags for w in workers])
    before = await store.seq_counter()
    counter = await store.ensure_seq_at_least(known.seq_hwm)
    seeded = bool(known.desired) and await store.seed_desired(known.desired, known.desired_version)
    # Brand-new: no record, and no worker was ever set up by a head (those `up` launched beside this one).
    new = client is None and not any(T.HEAD_ID in w.tags for w in workers)
    if not seeded and (counter == before or known.seq_hwm <= 1 or new):
        return None  # the store knew it all, or a brand-new cluster
    if seeded:
        requests = "desired " + ", ".join(f"{t}: {n}" for t, n in sorted(known.desired.items()))
    else:
        requests = "desired counts as the store has them" if known.desired else "no scale requests to restore"
    return f"carrying on from the previous head: seq ids continue after {counter}; {requests}"


def tag_writes(
    workers: Sequence[tuple[str, str, Mapping[str, str]]],
    counts: Mapping[str, int],
    version: int,
    counter: int,
    tagged_version: int,
) -> list[tuple[str, dict[str, str]]]:
    """Which worker tags to write (node id, tags) so that live workers carry the high-water mark and each
    type's desired count. `workers`: (node id, node type, current tags), oldest first."""
    writes: list[tuple[str, dict[str, str]]] = []
    if version != tagged_version:  # a request or a release: every worker of the type learns it
        for node_id, node_type, current in workers:
            tags = {T.SEQ_HWM: str(counter)}
            if node_type in counts:
                tags[T.DESIRED] = desired_tag(counts[node_type], version)
            if any(current.get(k) != v for k, v in tags.items()):
                writes.append((node_id, tags))
    elif workers and not any(_int_tag(t, T.SEQ_HWM) >= counter for _, _, t in workers):
        writes.append((workers[0][0], {T.SEQ_HWM: str(counter)}))  # its holder is gone
    return writes


def reservation(
    workers: Sequence[tuple[str, str, Mapping[str, str]]], hwm: int
) -> list[tuple[str, dict[str, str]]]:
    """Before handing out seq ids up to `hwm`: mark it on a few of the oldest workers, so a head crash
    right after the launch (the new nodes dead too) still cannot hand those ids out again."""
    return [(node_id, {T.SEQ_HWM: str(hwm)}) for node_id, _, _ in workers[:RESERVE_ON]]


async def tag_identity(
    store: StateStore, provider: NodeProvider, workers: list[NodeRef], tagged_version: int
) -> int:
    """Keep the high-water mark and the desired counts in worker tags when they changed; returns the
    desired version now tagged. One provider call per worker only when a request or release happened."""
    if not workers:
        return tagged_version
    wanted, counter = await asyncio.gather(store.desired_state(), store.seq_counter())
    if wanted.version == tagged_version and any(_int_tag(w.tags, T.SEQ_HWM) >= counter for w in workers):
        return tagged_version  # the usual tick: nothing new, and the oldest workers carry the mark
    listed = [(w.node_id, w.node_type, w.tags) for w in workers]
    await write_tags(provider, tag_writes(listed, wanted.counts, wanted.version, counter, tagged_version))
    return wanted.version


async def write_tags(provider: NodeProvider, writes: list[tuple[str, dict[str, str]]]) -> None:
    def write() -> None:
        for node_id, tags in writes:
            with contextlib.suppress(CloudtikError):  # terminated meanwhile
                provider.set_node_tags(node_id, tags)

    if writes:
        await asyncio.to_thread(write)
