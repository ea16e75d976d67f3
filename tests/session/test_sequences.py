"""Random sequences of clients against one CLI session on a real cluster: quick commands, long execs that
are interrupted (Ctrl-C) or whose clients vanish, garbage frames. The session stays consistent: the same
process serves throughout, every client gets its answer, an interrupted or abandoned command stops on
the node, and once the clients are gone nothing runs and no descriptor is left open."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from cloudtik_jupyter import paths
from cloudtik_jupyter.waiting import wait_for_sync
from tests.session.helpers import CLOUDTIK, FAST_HEAD, cloudtik, env, ping, place_of, the_session
from tests.virtual_nodes import teardown_virtual

QUICK = {
    "status": (("status", "seq"), 0, "workers ready 0 / desired 0"),
    "exec": (("exec", "seq", "echo hi"), 0, "hi\n"),
    "list": (("list",), 0, "seq\tvirtual"),
    "bad input": (("scale", "seq", "many"), 2, "'many' is not a valid integer"),
    "unknown": (("status", "ghost"), 2, "no cluster named 'ghost'"),
}
_markers = itertools.count(1)


@pytest.fixture(scope="module")
def seq_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="ctj-seq-"))
    paths.ensure_private_dir(home)
    config = home / "seq.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "from": "virtual-small",
                "cluster_name": "seq",
                "head": FAST_HEAD,
                "available_node_types": {"worker": {"min_workers": 0, "max_workers": 1}},
            }
        )
    )
    try:
        up = cloudtik(home, "up", str(config), "--yes", "-q")
        assert up.returncode == 0, up.stderr
        yield home
    finally:
        teardown_virtual(home)


def _running(home: Path, marker: str) -> bool:
    pattern = marker.replace(".", "[.]")
    probe = cloudtik(home, "exec", "seq", f"pgrep -f 'sleep {pattern}' >/dev/null && echo yes || echo no")
    assert probe.returncode == 0, probe.stderr
    return probe.stdout.strip() == "yes"


class SessionClients(RuleBasedStateMachine):
    home: Path

    def __init__(self) -> None:
        super().__init__()
        assert cloudtik(self.home, "status", "seq").returncode == 0  # warm: connections and forwards open
        self.pid = the_session(self.home).pid
        self.place = place_of(self.home)
        self.fds = psutil.Process(self.pid).num_fds()
        self.long: dict[str, subprocess.Popen[str]] = {}

    @rule(kind=st.sampled_from(sorted(QUICK)))
    def quick(self, kind: str) -> None:
        args, code, says = QUICK[kind]
        result = cloudtik(self.home, *args)
        assert result.returncode == code, (args, result.stderr)
        assert says in (result.stdout if code == 0 else result.stderr), (args, result)

    @precondition(lambda self: len(self.long) < 3)
    @rule()
    def start_long(self) -> None:
        marker = f"3000.{next(_markers)}"
        client = subprocess.Popen(
            [CLOUDTIK, "exec", "seq", f"echo started; sleep {marker}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(self.home),
        )
        assert client.stdout is not None and client.stdout.readline() == "started\n"
        self.long[marker] = client

    @precondition(lambda self: self.long)
    @rule(data=st.data())
    def interrupt(self, data: st.DataObject) -> None:
        marker = data.draw(st.sampled_from(sorted(self.long)))
        client = self.long.pop(marker)
        client.send_signal(signal.SIGINT)
        _, err = client.communicate(timeout=60)
        assert client.returncode == 130 and "Interrupted" in err, err
        wait_for_sync(lambda: not _running(self.home, marker), timeout=30, what=f"sleep {marker} to stop")

    @precondition(lambda self: self.long)
    @rule(data=st.data())
    def vanish(self, data: st.DataObject) -> None:
        marker = data.draw(st.sampled_from(sorted(self.long)))
        client = self.long.pop(marker)
        client.kill()
        client.communicate(timeout=60)
        wait_for_sync(lambda: not _running(self.home, marker), timeout=30, what=f"sleep {marker} to stop")

    @rule(junk=st.binary(min_size=1, max_size=64))
    def garbage(self, junk: bytes) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(self.place["socket"])
            sock.sendall(b"\xff\xff\xff\xff" + junk)  # a frame far larger than allowed: refused unread
            assert b'"kind":"bad-request"' in sock.recv(65536)

    @invariant()
    def one_session_serves_throughout(self) -> None:
        answer = ping(self.place)
        assert answer["pid"] == self.pid
        assert answer["running"] >= len(self.long)

    def teardown(self) -> None:
        for client in self.long.values():
            client.send_signal(signal.SIGINT)
            client.communicate(timeout=60)
        wait_for_sync(lambda: ping(self.place)["running"] == 0, timeout=30, what="commands to end")
        proc = psutil.Process(self.pid)
        wait_for_sync(lambda: proc.num_fds() == self.fds, timeout=30, what="the session's descriptors")
        assert not any(_running(self.home, m) for m in self.long)


def test_random_clients_leave_the_session_consistent(seq_home: Path) -> None:
    SessionClients.home = seq_home
    run_state_machine_as_test(
        SessionClients,
        settings=settings(
            max_examples=4,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    assert os.path.exists(place_of(seq_home)["socket"])
