"""The head's identity a new head restores: the newest of the client's record and the workers' tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudtik_jupyter.head.identity import (
    HeadIdentity,
    desired_tag,
    parse_desired_tag,
    recovered_identity,
    reservation,
    tag_writes,
)
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.state.records import NodeActivity, NodeHealth


def worker(node_type: str, seq: int, hwm: int | None = None, desired: str | None = None) -> dict[str, str]:
    tags = {T.NODE_TYPE: node_type, T.NODE_SEQ: str(seq)}
    if hwm is not None:
        tags[T.SEQ_HWM] = str(hwm)
    if desired is not None:
        tags[T.DESIRED] = desired
    return tags


def test_the_highest_mark_and_the_newest_request_win() -> None:
    client = HeadIdentity(seq_hwm=5, desired={"cpu": 3, "gpu": 1}, desired_version=4)
    tags = [worker("cpu", 2, hwm=9, desired="2v6"), worker("cpu", 7, desired="3v4"), worker("gpu", 3, hwm=3)]
    known = recovered_identity(client, tags)
    assert known.seq_hwm == 9
    assert known.desired == {"cpu": 2, "gpu": 1} and known.desired_version == 6  # a release after the record
    older = recovered_identity(HeadIdentity(5, {"cpu": 4}, 8), tags)
    assert older.desired == {"cpu": 4} and older.desired_version == 8  # the record is newer than the tags


def test_no_record_no_tags_is_a_fresh_cluster() -> None:
    assert recovered_identity(None, []) == HeadIdentity(seq_hwm=1, desired={}, desired_version=0)
    assert recovered_identity(None, [worker("cpu", 12)]).seq_hwm == 12  # a live worker's own seq counts


@pytest.mark.parametrize("value", ["", "v", "3v", "v3", "abc", "-1v2", "3v-1", "1.5v2", "3v2v1", "\uff13v1"])
def test_malformed_desired_tags_are_ignored(value: str) -> None:
    assert parse_desired_tag(value) is None
    assert recovered_identity(None, [worker("cpu", 2, desired=value)]).desired == {}


def test_garbage_in_tags_and_record_does_not_raise(tmp_path: Path) -> None:
    assert recovered_identity(None, [{T.SEQ_HWM: "lots", T.NODE_SEQ: "-"}]).seq_hwm == 1
    for text in ("", "[]", '{"seq_hwm": "x"}', '{"desired": 3}', "\x00\xff"):
        (tmp_path / "identity.json").write_text(text)
        assert HeadIdentity.load(tmp_path / "identity.json") is None
    assert HeadIdentity.load(tmp_path / "missing.json") is None
    record = HeadIdentity(7, {"cpu": 2}, 3)
    record.save(tmp_path / "identity.json")
    assert HeadIdentity.load(tmp_path / "identity.json") == record
    assert (tmp_path / "identity.json").stat().st_mode & 0o777 == 0o600


def test_tags_are_written_only_when_something_changed() -> None:
    workers = [
        ("n2", "cpu", worker("cpu", 2, hwm=4, desired=desired_tag(2, 3))),
        ("n4", "cpu", worker("cpu", 4)),
    ]
    assert tag_writes(workers, {"cpu": 2}, 3, 4, tagged_version=3) == []  # the mark is held by n2
    writes = tag_writes(workers, {"cpu": 2}, 4, 4, tagged_version=3)  # a new request: every worker learns it
    assert writes == [("n2", {T.SEQ_HWM: "4", T.DESIRED: "2v4"}), ("n4", {T.SEQ_HWM: "4", T.DESIRED: "2v4"})]
    lost_holder = [("n4", "cpu", worker("cpu", 4, hwm=2))]
    assert tag_writes(lost_holder, {}, 3, 5, tagged_version=3) == [("n4", {T.SEQ_HWM: "5"})]
    assert reservation(workers, 9) == [("n2", {T.SEQ_HWM: "9"}), ("n4", {T.SEQ_HWM: "9"})]


def test_node_health_round_trips_and_reads_the_old_format() -> None:
    health = NodeHealth(12.5, ("spark-worker",), NodeActivity(97.0, 1, True))
    assert NodeHealth.parse(health.encode()) == health
    assert NodeHealth.parse("3.0|redis") == NodeHealth(3.0, ("redis",), NodeActivity())  # before activity
    assert NodeHealth.parse("0.0||0.0|0|").activity.runtime_busy is None
    for garbage in ("nan?|x|y|z|w", "1|a|b", "|||||||", "0|0|0|zero|1"):
        assert NodeHealth.parse(garbage).activity.runtime_busy is not False  # never reads as idle
