"""The state store's reading of raw Redis replies (the heartbeat index is read without redis-py's helpers)."""

from __future__ import annotations

from cloudtik_jupyter.state.store import _score_pairs


def test_score_pairs_read_resp3_and_resp2_replies_alike() -> None:
    expected = {"n1": 1700000000.5, "n2": 1700000001.25}
    assert dict(_score_pairs([["n1", 1700000000.5], ["n2", 1700000001.25]])) == expected  # RESP3
    assert dict(_score_pairs([["n1", "1700000000.5"], ["n2", "1700000001.25"]])) == expected
    assert dict(_score_pairs(["n1", "1700000000.5", "n2", "1700000001.25"])) == expected  # RESP2, flat
    assert all(isinstance(t, float) for t in dict(_score_pairs(["n1", "5"])).values())
    assert dict(_score_pairs([])) == {} and dict(_score_pairs(None)) == {}
