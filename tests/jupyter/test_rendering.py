"""How the notebook shows clusters (pure rendering), where its links point, and the widget relay that keeps
views live while a cell runs. No cluster needed."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from cloudtik_jupyter.jupyter import links as L
from cloudtik_jupyter.jupyter import rendering as R
from cloudtik_jupyter.jupyter.updater import BUSY_AFTER, Inbox
from cloudtik_jupyter.records.cluster import ClusterInfo, ClusterStatus, NodeRow, ServiceLink

HEAD_IP = "127.9.0.1"
GIB = 1024**3


def test_rows_carry_sparklines_of_the_last_minute() -> None:
    assert R.sparkline([0, 50, 100], 100) == "▁▅█"
    assert R.sparkline([], 100) == "" and R.sparkline([1.0], 0) == ""
    assert len(R.sparkline(list(range(100)), 100)) == R.SPARK_POINTS  # the most recent ones
    row = NodeRow(
        "vn-1",
        1,
        "head",
        "head",
        HEAD_IP,
        None,
        "up-to-date",
        0.5,
        12.0,
        GIB,
        4 * GIB,
        "m1",
        cpu_history=(0.0, 100.0),
        memory_history=(GIB, 4 * GIB),
    )
    cells = R.row_cells(row)
    assert (cells.cpu, cells.cpu_trend, cells.memory_trend) == ("12%", "▁█", "▃█")
    text = R.status_text(ClusterStatus("c", "virtual", [row], 0, 0))
    assert "cpu, last min" in text and "▁█" in text


@pytest.fixture
def jupyter_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This process as a kernel of a Jupyter server whose info file says base URL /hub/user/me/."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("JPY_PARENT_PID", "4242")
    monkeypatch.setenv("JPY_SESSION_NAME", "analysis.ipynb")
    (tmp_path / "jpserver-4242.json").write_text(json.dumps({"pid": 4242, "base_url": "/hub/user/me/"}))
    L.jupyter_base_url.cache_clear()
    yield tmp_path
    L.jupyter_base_url.cache_clear()


def test_links_go_through_the_jupyter_server_when_there_is_one(jupyter_server: Path) -> None:
    links = [
        ServiceLink("Spark master UI", f"http://{HEAD_IP}:8080", "web"),
        ServiceLink("Spark master", f"spark://{HEAD_IP}:7077", "endpoint"),
    ]
    hrefs = L.link_hrefs("c", links)
    assert hrefs == {f"http://{HEAD_IP}:8080": "/hub/user/me/cloudtik/proxy/c/8080/"}
    html = R.links_html(links, hrefs)
    assert (
        'href="/hub/user/me/cloudtik/proxy/c/8080/"' in html
        and f"<code>spark://{HEAD_IP}:7077</code>" in html
    )
    status = ClusterStatus("c", "virtual", [], 0, 0, links=links)
    assert "/hub/user/me/cloudtik/proxy/c/8080/" in R.status_html(status)
    info = ClusterInfo("c", "virtual", HEAD_IP, [], links=links)  # what `%cloudtik info` shows
    assert 'href="/hub/user/me/cloudtik/proxy/c/8080/"' in R.info_html(info)


def test_without_a_jupyter_server_links_are_the_raw_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)  # nbclient, a terminal IPython
    L.jupyter_base_url.cache_clear()
    try:
        links = [ServiceLink("ui", f"http://{HEAD_IP}:8080", "web")]
        assert L.link_hrefs("c", links) == {}
        assert f'href="http://{HEAD_IP}:8080"' in R.links_html(links)
    finally:
        L.jupyter_base_url.cache_clear()


class BusyOwner:
    """A thread whose event loop made an Inbox, then runs a "cell" that blocks it until released."""

    def __init__(self, relay: bool) -> None:
        self.applied: list[tuple[int, str]] = []
        self.threads: set[str] = set()
        self.made = threading.Event()
        self.release = threading.Event()
        self.inbox: Inbox[int] | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(relay),), name="owner")
        self._thread.start()
        assert self.made.wait(10)

    def apply(self, messages: list[int]) -> None:
        self.threads.add(threading.current_thread().name)
        self.applied += [(m, threading.current_thread().name) for m in messages]

    async def _main(self, relay: bool) -> None:
        self.inbox = Inbox(self.apply, relay=relay)
        self.made.set()
        await asyncio.sleep(0)
        self.release.wait(30)  # the running cell: the loop does nothing else meanwhile
        await asyncio.sleep(0)  # the cell ended: pending callbacks (the owner's flush) run

    def finish(self) -> None:
        self.release.set()
        self._thread.join(30)


def wait_until(condition: threading.Event | object, seconds: float) -> bool:
    done = threading.Event()
    deadline = threading.Timer(seconds, done.set)
    deadline.start()
    try:
        while not done.is_set():
            if callable(condition) and condition():
                return True
            done.wait(0.01)
        return False
    finally:
        deadline.cancel()


def test_messages_reach_the_widgets_while_the_owner_is_busy() -> None:
    owner = BusyOwner(relay=True)
    try:
        assert owner.inbox is not None
        for i in range(3):
            owner.inbox.post(i)
        assert wait_until(lambda: len(owner.applied) == 3, BUSY_AFTER + 5), "not applied while busy"
        assert owner.threads == {"cloudtik-widget-relay"}
    finally:
        owner.finish()
    assert [m for m, _ in owner.applied] == [0, 1, 2]  # once each, in order


def test_without_the_relay_a_busy_owner_applies_only_when_the_cell_ends() -> None:
    owner = BusyOwner(relay=False)
    assert owner.inbox is not None
    owner.inbox.post(1)
    assert not wait_until(lambda: bool(owner.applied), BUSY_AFTER * 3)
    owner.finish()
    assert owner.applied == [(1, "owner")]


def test_relay_and_owner_together_apply_every_message_once_in_order() -> None:
    owner = BusyOwner(relay=True)
    assert owner.inbox is not None
    inbox = owner.inbox
    posters = [
        threading.Thread(target=lambda k=k: [inbox.post(k * 1000 + i) for i in range(300)]) for k in range(3)
    ]
    for t in posters:
        t.start()
    for t in posters:
        t.join(30)
    owner.finish()  # the owner's own flush races the relay's last one
    assert wait_until(lambda: len(owner.applied) == 900, 10)
    got = [m for m, _ in owner.applied]
    assert sorted(got) == sorted(k * 1000 + i for k in range(3) for i in range(300))
    for k in range(3):
        mine = [m for m in got if m // 1000 == k]
        assert mine == sorted(mine)  # each poster's messages in the order it posted them


class InboxMachine(RuleBasedStateMachine):
    """Any sequence of posts (from any thread), owner flushes, relay flushes and a close: every message
    is applied once, in order, and nothing after the close."""

    def __init__(self) -> None:
        super().__init__()
        self.applied: list[int] = []
        self.inbox: Inbox[int] = Inbox(self.applied.extend)
        self.posted: list[int] = []
        self.closed_at: int | None = None

    @rule(n=st.integers(), from_thread=st.booleans())
    def post(self, n: int, from_thread: bool) -> None:
        if from_thread:
            poster = threading.Thread(target=self.inbox.post, args=(n,))
            poster.start()
            poster.join(10)
        else:
            self.inbox.post(n)
        if self.closed_at is None:
            self.posted.append(n)

    @rule()
    def owner_flush(self) -> None:
        self.inbox.flush()

    @rule()
    def relay_flush(self) -> None:
        relay = threading.Thread(target=self.inbox._apply_pending)
        relay.start()
        relay.join(10)

    @rule()
    def close(self) -> None:
        self.inbox.close()
        if self.closed_at is None:
            self.closed_at = len(self.applied)

    @invariant()
    def applied_once_in_order(self) -> None:
        assert self.applied == self.posted[: len(self.applied)]
        if self.closed_at is not None:
            assert len(self.applied) == self.closed_at


TestInboxSequences = InboxMachine.TestCase
TestInboxSequences.settings = settings(max_examples=60, stateful_step_count=20, deadline=None)
