"""The CLI session's life, through real `cloudtik` processes: started on first use and reused; answers as
the in-process CLI does (cwd, terminal width, errors); a stale socket, a crashed session and a session of
another version are replaced; an idle one exits; `CLOUDTIK_NO_SESSION=1` runs in-process."""

from __future__ import annotations

import os
import signal
import socket
import stat
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest

from cloudtik_jupyter.session.place import _code_stamp
from cloudtik_jupyter.session.wire import Reader, send
from tests.session.helpers import cloudtik, handshake, ping, place_of, sessions, the_session, wait_gone

CONFIG = "from: virtual-small\ncluster_name: {name}\n"


def test_first_use_starts_a_private_session_that_serves_the_next_commands(session_home: Path) -> None:
    first = cloudtik(session_home, "list")
    assert (first.returncode, first.stdout, first.stderr) == (0, "no clusters\n", "")
    session = the_session(session_home)
    place = place_of(session_home)
    assert stat.S_IMODE(os.stat(place["directory"]).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(place["socket"]).st_mode) == 0o600
    assert ping(place)["served"] == 1

    again = cloudtik(session_home, "list")
    assert again.returncode == 0 and the_session(session_home).pid == session.pid
    assert ping(place)["served"] == 2
    # The session is nobody's child and has a session of its own (a terminal's Ctrl-C never reaches it).
    proc = psutil.Process(session.pid)
    assert proc.ppid() != os.getpid() and os.getsid(session.pid) != os.getsid(0)


def test_no_session_runs_in_process(session_home: Path) -> None:
    result = cloudtik(session_home, "list", extra={"CLOUDTIK_NO_SESSION": "1"})
    assert (result.returncode, result.stdout) == (0, "no clusters\n")
    assert sessions(session_home) == []
    assert not Path(place_of(session_home)["socket"]).exists()


def test_answers_like_the_in_process_cli(session_home: Path, tmp_path: Path) -> None:
    """Relative paths resolve in the client's directory; help wraps to the client's terminal; errors are one
    line with the same exit codes."""
    here = tmp_path / "project"
    here.mkdir()
    (here / "rel.yaml").write_text(CONFIG.format(name="relative"))
    cases: list[tuple[tuple[str, ...], dict[str, str], Path | None]] = [
        (("status", "rel.yaml"), {}, here),
        (("status", "rel.yaml"), {}, tmp_path),  # no such file here
        (("--help",), {"COLUMNS": "60"}, None),
        (("exec", "--help"), {"COLUMNS": "120"}, None),
        (("--version",), {}, None),
        (("scale", "relative", "many"), {}, here),
        (("status", "ghost"), {}, None),
        (("bogus",), {}, None),
        (("exec", "nosuch/../x"), {}, None),
    ]
    for args, extra, cwd in cases:
        served = cloudtik(session_home, *args, extra=extra, cwd=cwd)
        local = cloudtik(session_home, *args, extra={**extra, "CLOUDTIK_NO_SESSION": "1"}, cwd=cwd)
        assert (served.returncode, served.stdout, served.stderr) == (
            local.returncode,
            local.stdout,
            local.stderr,
        ), args
    assert ping(place_of(session_home))["served"] == len(cases)
    wide = cloudtik(session_home, "exec", "--help", extra={"COLUMNS": "120"}).stdout
    narrow = cloudtik(session_home, "exec", "--help", extra={"COLUMNS": "60"}).stdout
    assert max(map(len, narrow.splitlines())) <= 60 < max(map(len, wide.splitlines()))


def test_a_stale_socket_is_replaced(session_home: Path) -> None:
    place = place_of(session_home)
    Path(place["directory"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(place["socket"])  # a socket file nobody listens on, as a killed session leaves
    result = cloudtik(session_home, "list")
    assert result.returncode == 0 and result.stdout == "no clusters\n", result.stderr
    assert ping(place)["pid"] == the_session(session_home).pid


def test_a_crashed_session_is_replaced(session_home: Path) -> None:
    assert cloudtik(session_home, "list").returncode == 0
    crashed = the_session(session_home)
    os.kill(crashed.pid, signal.SIGKILL)
    wait_gone(crashed.pid)
    result = cloudtik(session_home, "list")
    assert result.returncode == 0 and result.stdout == "no clusters\n", result.stderr
    assert the_session(session_home).pid != crashed.pid


class _OldSession(threading.Thread):
    """A session of another version on the socket: answers hello with its own identity, records frames."""

    def __init__(self, place: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        Path(place["directory"]).mkdir(mode=0o700, parents=True, exist_ok=True)
        self.listener.bind(place["socket"])
        self.listener.listen()
        self.listener.settimeout(60)
        self.identity = {**place["identity"], "version": "0.0.1-old"}
        self.received: list[str] = []

    def run(self) -> None:
        with self.listener, self.listener.accept()[0] as conn:
            reader = Reader(conn)
            while (frame := reader.read()) is not None:
                self.received.append(frame["op"])
                if frame["op"] == "hello":
                    send(conn, {"op": "hello", "identity": self.identity, "pid": 1})


def test_a_session_of_another_version_is_not_used_but_replaced(session_home: Path) -> None:
    place = place_of(session_home)
    old = _OldSession(place)
    old.start()
    result = cloudtik(session_home, "list")
    old.join(timeout=60)
    assert result.returncode == 0 and result.stdout == "no clusters\n", result.stderr
    assert old.received == ["hello"], "nothing but the handshake goes to another version"
    assert ping(place)["pid"] == the_session(session_home).pid


def test_a_session_asked_by_another_version_retires(session_home: Path) -> None:
    assert cloudtik(session_home, "list").returncode == 0
    session = the_session(session_home)
    place = place_of(session_home)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(place["socket"])
        reader = Reader(sock)
        send(sock, {"op": "hello", "identity": {**place["identity"], "code": "newer"}})
        answer = reader.read()
    assert answer is not None and (answer["op"], answer["kind"]) == ("error", "version"), answer
    wait_gone(session.pid)
    assert not Path(place["socket"]).exists()
    assert cloudtik(session_home, "list").returncode == 0
    assert the_session(session_home).pid != session.pid


def test_the_code_stamp_follows_every_module(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("A = 1\n")
    (package / "sub" / "b.py").write_text("B = 1\n")
    before = _code_stamp(str(package))
    assert _code_stamp(str(package)) == before
    stamp = os.stat(package / "sub" / "b.py")
    os.utime(package / "sub" / "b.py", ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1))
    assert _code_stamp(str(package)) != before
    (package / "sub" / "c.py").write_text("")
    assert len({before, _code_stamp(str(package))}) == 2


def test_an_idle_session_exits_and_cleans_up(session_home: Path) -> None:
    idle = {"CLOUDTIK_SESSION_IDLE": "0.5"}
    assert cloudtik(session_home, "list", extra=idle).returncode == 0
    session = the_session(session_home)
    place = place_of(session_home, **idle)
    wait_gone(session.pid)
    assert not Path(place["socket"]).exists()
    assert sessions(session_home) == []
    log = Path(place["log"]).read_text()
    assert "stopping: idle for 0.5s" in log and "exited after serving 1 commands" in log


def test_an_environment_of_its_own_gets_a_session_of_its_own(session_home: Path) -> None:
    assert cloudtik(session_home, "list").returncode == 0
    assert cloudtik(session_home, "list", extra={"AWS_PROFILE": "other"}).returncode == 0
    assert len(sessions(session_home)) == 2  # never another environment's credentials
    # ... but terminal variables are per command, not per session.
    assert cloudtik(session_home, "list", extra={"COLUMNS": "33", "TERM": "dumb"}).returncode == 0
    assert len(sessions(session_home)) == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="acting as another uid needs root")
def test_another_uid_is_refused_even_through_open_permissions(session_home: Path) -> None:
    """A careless chmod opens the directory and the socket: SO_PEERCRED still refuses another uid."""
    import subprocess

    assert cloudtik(session_home, "list").returncode == 0
    session = the_session(session_home)
    place = place_of(session_home)
    directory, sock_path = Path(place["directory"]), Path(place["socket"])
    os.chmod(directory, 0o711)
    os.chmod(sock_path, 0o666)
    intruder = (
        "import json, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1])\n"
        "body = json.dumps({'op': 'hello', 'identity': {}}).encode()\n"
        "s.sendall(len(body).to_bytes(4, 'big') + body)\n"
        "data = b''\n"
        "while chunk := s.recv(65536): data += chunk\n"
        "print(data[4:].decode())\n"
    )
    try:
        result = subprocess.run(
            ["/usr/bin/python3", "-c", intruder, sock_path.name],
            cwd=directory,
            user=65534,
            group=65534,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.chmod(directory, 0o700)
        os.chmod(sock_path, 0o600)
    assert result.returncode == 0, result.stderr
    assert '"kind":"refused"' in result.stdout, result.stdout
    assert cloudtik(session_home, "list").returncode == 0
    assert the_session(session_home).pid == session.pid
    assert "refused a connection from uid 65534" in Path(place["log"]).read_text()


def test_concurrent_first_calls_start_one_session(session_home: Path) -> None:
    import subprocess

    from tests.session.helpers import CLOUDTIK, env

    clients = [
        subprocess.Popen([CLOUDTIK, "list"], env=env(session_home), stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [c.communicate(timeout=120)[0] for c in clients]
    assert [c.returncode for c in clients] == [0] * 4 and outputs == ["no clusters\n"] * 4
    session = the_session(session_home)
    assert ping(place_of(session_home))["served"] == 4 and session.pid


def test_stop_ends_running_commands_and_the_session(session_home: Path) -> None:
    assert cloudtik(session_home, "list").returncode == 0
    session = the_session(session_home)
    sock, reader = handshake(place_of(session_home))
    with sock:
        send(sock, {"op": "stop"})
        assert reader.read() == {"op": "stopping"}
    wait_gone(session.pid)
    assert sessions(session_home) == []
