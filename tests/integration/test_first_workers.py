"""`up` of a new cluster launches each type's `min_workers` beside the head, not after it.

Their machines boot while the head is set up (on a cloud the longest wait of an `up`); the head's controller
finds them launched and never set up, and sets them up on its first tick, as after a controller restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudtik_jupyter.api import Cluster
from cloudtik_jupyter.cluster.context import ClusterContext
from cloudtik_jupyter.cluster.launcher import first_workers, launch_head, launch_missing_head
from cloudtik_jupyter.cluster.progress import ProgressEvent
from cloudtik_jupyter.config import load_config
from cloudtik_jupyter.errors import CloudtikError
from cloudtik_jupyter.head.identity import HeadIdentity
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.base import NodeSpec
from cloudtik_jupyter.records.layout import HEAD_KEY_FILE, IDENTITY_FILE
from cloudtik_jupyter.ssh.keys import public_key

from .test_controller_ticks import DictProvider
from .test_head_services import FAST

pytestmark = pytest.mark.integration


def config(name: str, types: Mapping[str, int], **extra: Any) -> dict[str, Any]:
    nodes: dict[str, Any] = {"head": {}}
    nodes |= {t: {"min_workers": n, "max_workers": max(n, 4)} for t, n in types.items()}
    return {
        "cluster_name": name,
        "provider": {"type": "virtual"},
        "head_node_type": "head",
        "available_node_types": nodes,
        "head": FAST,
        "idle_timeout_minutes": 0,
        **extra,
    }


def test_up_launches_the_first_workers_while_the_head_is_set_up(cloudtik_home: Path) -> None:
    cluster = Cluster(config("beside", {"worker": 2}))
    provider = cluster._ctx.provider
    seen_at_setup: list[list[tuple[int, str]]] = []

    def progress(event: ProgressEvent) -> None:
        if event.node_kind == "head" and event.phase == "ssh":  # the head's setup begins
            listed = provider.list_nodes({T.CLUSTER: "beside", T.NODE_KIND: T.KIND_WORKER})
            seen_at_setup.append(sorted((n.seq, n.status) for n in listed))

    cluster.up(progress=progress)
    assert seen_at_setup == [[(2, "pending"), (3, "pending")]], (
        "the workers were not launched beside the head"
    )
    status = cluster.status()
    assert [(w.seq, w.status) for w in status.workers] == [(2, "up-to-date"), (3, "up-to-date")]
    kinds = [e.kind for e in status.events]
    assert "node-launched" not in kinds, kinds  # the controller set them up, it launched nothing
    assert "identity-restored" not in kinds, kinds  # a new cluster, not one carried on from a lost head

    # Second step: the controller's own launches carry on after the ids `up` handed out.
    cluster.scale(3)
    assert sorted(w.seq for w in cluster.status().workers) == [2, 3, 4]
    # Third: `up` again on the running cluster launches nothing, beside the head or after it.
    cluster.up()
    assert sorted(w.seq for w in cluster.status().workers) == [2, 3, 4]
    cluster.down()


def test_a_new_head_of_a_known_cluster_launches_no_workers_beside_it(cloudtik_home: Path) -> None:
    """A head replaced after its machine died finds its workers; `up` launches none (its controller
    adopts the live ones and launches what is missing from the request it restores)."""
    cluster = Cluster(config("known", {"worker": 1})).up()
    (worker,) = cluster.status().workers
    head = cluster.status().nodes[0]
    cluster._ctx.provider.terminate_nodes([head.node_id])  # the head's machine is gone
    cluster.up()
    status = cluster.status()
    assert [w.node_id for w in status.workers] == [worker.node_id], "up launched a worker beside the new head"
    assert "identity-restored" in [e.kind for e in status.events]
    cluster.down()


def fresh_context(tmp_path: Path, types: Mapping[str, int]) -> tuple[ClusterContext, DictProvider]:
    provider = DictProvider()
    cfg = load_config(config("dict", types))
    ctx = ClusterContext(cfg, provider=provider, state_dir=tmp_path)  # type: ignore[arg-type]
    return ctx, provider


@settings(max_examples=40, deadline=None)
@given(types=st.dictionaries(st.sampled_from(["cpu", "gpu", "mem"]), st.integers(0, 5), max_size=3))
def test_first_workers_are_each_types_minimum_with_fresh_seq_ids(
    tmp_path_factory: pytest.TempPathFactory, types: dict[str, int]
) -> None:
    ctx, provider = fresh_context(tmp_path_factory.mktemp("first"), types)
    workers = first_workers(ctx)
    assert sorted(s for _, s in workers) == list(range(2, 2 + sum(types.values())))  # after the head's 1
    assert {t: sum(1 for w, _ in workers if w == t) for t in types if types[t]} == {
        t: n for t, n in types.items() if n
    }
    asyncio.run(launch_head(ctx, workers))
    listed = provider.list_nodes({T.CLUSTER: "dict"})
    assert sorted(n.seq for n in listed) == list(range(1, 2 + sum(types.values())))
    assert [n.kind for n in listed].count(T.KIND_HEAD) == 1
    assert all(n.status == T.NodeStatus.PENDING.value for n in listed)

    HeadIdentity(seq_hwm=7, desired=dict(types)).save(ctx.dir / IDENTITY_FILE)  # a head existed before
    assert first_workers(ctx) == []


class RecordingProvider(DictProvider):
    """Keeps each launch's spec; refuses launches of `refuse` (a quota, a bad image)."""

    def __init__(self, refuse: str | None = None) -> None:
        super().__init__()
        self.specs: list[tuple[str, NodeSpec]] = []
        self.refuse = refuse

    def create_nodes(self, spec: NodeSpec, tags: Mapping[str, str], count: int) -> list[str]:
        if tags[T.NODE_KIND] == self.refuse:
            raise CloudtikError(f"quota exceeded for {spec.node_type}")
        self.specs.append((tags[T.NODE_KIND], spec))
        return super().create_nodes(spec, tags, count)


def test_workers_launched_by_up_accept_the_heads_key_and_a_refused_launch_fails_up(tmp_path: Path) -> None:
    provider = RecordingProvider()
    cfg = load_config(config("keys", {"worker": 2}))
    ctx = ClusterContext(cfg, provider=provider, state_dir=tmp_path)  # type: ignore[arg-type]
    asyncio.run(launch_head(ctx, first_workers(ctx)))
    head_key = public_key(ctx.dir / HEAD_KEY_FILE)
    for kind, spec in provider.specs:
        keys = spec.ssh_public_key.splitlines()
        assert ctx.public_key() in keys
        # The head's controller sets the workers up with its own key: without it they refuse it.
        assert (head_key in keys) == (kind == T.KIND_WORKER), (kind, keys)

    # A refused head fails `up`; the next `up` launches the head only: the workers already launched stay
    # the cluster's (its controller sets them up), none is launched twice.
    refusing = RecordingProvider(refuse=T.KIND_HEAD)
    ctx = ClusterContext(cfg, provider=refusing, state_dir=tmp_path / "refused")  # type: ignore[arg-type]
    with pytest.raises(CloudtikError, match="quota exceeded for head"):
        asyncio.run(launch_missing_head(ctx))
    launched = sorted(n.seq for n in refusing.list_nodes({T.CLUSTER: "keys"}))
    assert set(launched) <= {2, 3}
    refusing.refuse = None
    asyncio.run(launch_missing_head(ctx))
    assert sorted(n.seq for n in refusing.list_nodes({T.CLUSTER: "keys"})) == [1, *launched]
