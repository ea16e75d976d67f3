"""Hostile clients of the CLI session (same uid: a buggy or malicious local program): garbage, huge frames,
wrong fields, missing or extra descriptors, silence, disconnects. Each gets an error (or a closed
connection); nothing runs; the session keeps serving, with no descriptor left open."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from cloudtik_jupyter.session.wire import MAX_FRAME, Reader, encode, send
from cloudtik_jupyter.waiting import wait_for_sync
from tests.session.helpers import cloudtik, handshake, ping, place_of, the_session


def _raw(place: dict[str, Any], data: bytes) -> dict[str, Any] | None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(place["socket"])
        sock.sendall(data)
        return Reader(sock).read()


def _after_hello(
    place: dict[str, Any], frame: dict[str, Any], fds: tuple[int, ...] = ()
) -> dict[str, Any] | None:
    sock, reader = handshake(place)
    with sock:
        send(sock, frame, fds=fds)
        return reader.read()


def _run_frame(**override: Any) -> dict[str, Any]:
    frame = {"op": "run", "argv": ["list"], "cwd": "/", "umask": 0o22, "env": {}}
    frame.update(override)
    return frame


def test_hostile_frames_get_an_error_and_nothing_runs(session_home: Path, tmp_path: Path) -> None:
    assert cloudtik(session_home, "list").returncode == 0
    session = the_session(session_home)
    place = place_of(session_home)
    proc = psutil.Process(session.pid)
    baseline = proc.num_fds()
    marker = tmp_path / "ran"
    devnull = os.open(os.devnull, os.O_RDWR)
    would_run = ["exec", "nosuch", f"touch {marker}"]

    cases: list[tuple[str, Callable[[], dict[str, Any] | None], str]] = [
        ("http", lambda: _raw(place, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "larger than"),
        ("huge length", lambda: _raw(place, (2**32 - 1).to_bytes(4, "big")), "larger than"),
        ("just too large", lambda: _raw(place, (MAX_FRAME + 1).to_bytes(4, "big") + b"{}"), "larger than"),
        ("not json", lambda: _raw(place, encode({"op": "x"})[:4] + b"\xff" * 10), "not JSON"),
        ("a list", lambda: _raw(place, len(b"[1]").to_bytes(4, "big") + b"[1]"), "not an object"),
        ("no op", lambda: _raw(place, len(b'{"a":1}').to_bytes(4, "big") + b'{"a":1}'), "not an object"),
        ("run first", lambda: _raw(place, encode(_run_frame())), "expected hello"),
        ("no descriptors", lambda: _after_hello(place, _run_frame(argv=would_run)), "descriptors"),
        (
            "two descriptors",
            lambda: _after_hello(place, _run_frame(argv=would_run), (devnull, devnull)),
            "descriptors",
        ),
        ("argv", lambda: _after_hello(place, _run_frame(argv="list"), (devnull,) * 3), "argv"),
        ("relative cwd", lambda: _after_hello(place, _run_frame(cwd="tmp"), (devnull,) * 3), "cwd"),
        ("umask", lambda: _after_hello(place, _run_frame(umask=-1), (devnull,) * 3), "umask"),
        (
            "env beyond the terminal",
            lambda: _after_hello(place, _run_frame(env={"LD_PRELOAD": "/x.so"}), (devnull,) * 3),
            "terminal",
        ),
        ("unknown op", lambda: _after_hello(place, {"op": "shell"}), "unknown op"),
    ]
    try:
        for name, attempt, says in cases:
            answer = attempt()
            assert answer is not None and answer["op"] == "error" and says in answer["error"], (name, answer)
    finally:
        os.close(devnull)

    # Silent, half-sent and vanished clients.
    for partial in (b"", b"\x00\x00", encode({"op": "hello"})[:-3]):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(place["socket"])
            sock.sendall(partial)

    assert not marker.exists(), "a refused request ran"
    answer = ping(place)
    assert answer["pid"] == session.pid and answer["served"] == 1 and answer["running"] == 0
    result = cloudtik(session_home, "list")
    assert result.returncode == 0 and result.stdout == "no clusters\n"
    wait_for_sync(lambda: proc.num_fds() == baseline, timeout=30, what="the session's descriptors to settle")


def test_a_client_that_says_nothing_is_dropped(session_home: Path) -> None:
    """A connection that never says hello does not hold the session (it is dropped after a while)."""
    assert cloudtik(session_home, "list").returncode == 0
    place = place_of(session_home)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.connect(place["socket"])
        # Others are served meanwhile.
        assert cloudtik(session_home, "list").returncode == 0
        silent.settimeout(60)
        answer = Reader(silent).read()  # the session gives up on it
    assert answer is not None and answer["op"] == "error" and "timed out" in answer["error"]
