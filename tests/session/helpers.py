"""Running the real `cloudtik` entry point against a state dir, and finding the CLI session it uses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

from cloudtik_jupyter.session import admin
from cloudtik_jupyter.session.wire import Reader, send
from cloudtik_jupyter.waiting import wait_for_sync

CLOUDTIK = str(Path(sys.executable).parent / "cloudtik")  # the installed entry point
FAST_HEAD = {"controller_interval": 0.5, "heartbeat_interval": 0.5, "heartbeat_timeout": 5.0}


def env(home: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "CLOUDTIK_NO_SESSION"}
    return {**base, "CLOUDTIK_HOME": str(home), "CLOUDTIK_VIRTUAL_IDLE_EXIT": "600", **extra}


def cloudtik(
    home: Path, *args: str, extra: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLOUDTIK, *args],
        capture_output=True,
        text=True,
        env=env(home, **(extra or {})),
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def place_of(home: Path, **extra: str) -> dict[str, Any]:
    """The session place a `cloudtik` run with this environment uses: socket, directory, identity."""
    code = (
        "import json; from cloudtik_jupyter.session import place; p = place.current(); "
        "print(json.dumps({'socket': p.socket, 'directory': p.directory, 'identity': p.identity, "
        "'log': p.log}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env(home, **extra), capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out))


def sessions(home: Path) -> list[admin.SessionProcess]:
    return admin.sessions(str(home))


def the_session(home: Path) -> admin.SessionProcess:
    found = sessions(home)
    assert len(found) == 1, found
    return found[0]


def wait_gone(pid: int, timeout: float = 30.0) -> None:
    wait_for_sync(
        lambda: not psutil.pid_exists(pid) or _zombie(pid), timeout=timeout, what=f"pid {pid} to exit"
    )


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def handshake(place: dict[str, Any], identity: dict[str, Any] | None = None) -> tuple[socket.socket, Reader]:
    """A raw connection to the session that has said hello (as a client would)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(place["socket"])
    reader = Reader(sock)
    send(sock, {"op": "hello", "identity": identity or place["identity"]})
    answer = reader.read()
    assert answer is not None and answer["op"] == "hello", answer
    return sock, reader


def ping(place: dict[str, Any]) -> dict[str, Any]:
    sock, reader = handshake(place)
    with sock:
        send(sock, {"op": "ping"})
        answer = reader.read()
    assert answer is not None and answer["op"] == "pong", answer
    return answer
