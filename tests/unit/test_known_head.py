"""Where the client remembers the head (`clusters/NAME/head.json`, so views reach its store without a cloud
call): written 0600 only beside a cluster's record, read back equal, and anything else in it reads as
"unknown" (the next status lists the cloud), never an exception."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cloudtik_jupyter.cluster.context import HEAD_FILE, ClusterContext, load_head
from cloudtik_jupyter.config import load_config
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.base import ListedNode, NodeAddress

HEAD = ListedNode(
    "vn-1",
    {T.NODE_KIND: T.KIND_HEAD, T.NODE_STATUS: "up-to-date", T.NODE_SEQ: "1"},
    NodeAddress("127.9.0.2", "127.9.0.2", 2222, "ssh-ed25519 AAAA"),
)


def context(tmp_path: Path) -> ClusterContext:
    config = load_config(
        {
            "cluster_name": "kh",
            "provider": {"type": "virtual"},
            "head_node_type": "head",
            "available_node_types": {"head": {}},
        },
        check_files=False,
    )
    return ClusterContext(config, state_dir=tmp_path / "kh")


def test_the_head_is_kept_beside_the_record_and_read_back(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.remember_head(HEAD)
    assert not (ctx.dir / HEAD_FILE).exists()  # no record: nothing written (e.g. after `down`)
    ctx.save_record()
    ctx.remember_head(HEAD)
    ctx.remember_head(HEAD)  # unchanged: not rewritten
    path = ctx.dir / HEAD_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert context(tmp_path).known_head() == HEAD  # another process reads it back
    ctx.remember_head(None)  # the listing found no head
    assert not path.exists() and context(tmp_path).known_head() is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"node_id": "vn-1"}',
        '{"node_id": "vn-1", "tags": [], "address": ["127.0.0.2", null, 22, null]}',
        '{"node_id": "vn-1", "tags": {}, "address": ["127.0.0.2", null, "ssh", null]}',
        '{"node_id": "vn-1", "tags": {}, "address": ["127.0.0.2"]}',
        '{"node_id": "vn-1", "tags": {}, "address": ["127.0.0.2", null, 22, null]}',  # not a head
    ],
)
def test_a_garbled_file_reads_as_unknown(tmp_path: Path, text: str) -> None:
    path = tmp_path / HEAD_FILE
    path.write_text(text)
    assert load_head(path) is None
    assert load_head(tmp_path / "missing") is None
