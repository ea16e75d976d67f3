"""Helpers for the server-extension and browser tests: clusters made by the real CLI in another process."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from cloudtik_jupyter import paths
from tests.virtual_nodes import teardown_virtual

CLI_TIMEOUT = 120.0


@dataclass(frozen=True)
class CliCluster:
    name: str
    config: Path
    up_seconds: float


@contextlib.contextmanager
def short_cloudtik_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="ctj-"))
    paths.ensure_private_dir(home)
    monkeypatch.setenv("CLOUDTIK_HOME", str(home))
    monkeypatch.setenv("CLOUDTIK_VIRTUAL_IDLE_EXIT", "600")  # tests stop the hypervisor themselves
    try:
        yield home
    finally:
        try:
            teardown_virtual(home)
        finally:
            shutil.rmtree(home, ignore_errors=True)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real `cloudtik` CLI in a new process (it inherits $CLOUDTIK_HOME)."""
    argv = [sys.executable, "-m", "cloudtik_jupyter.cli", *args]
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=CLI_TIMEOUT, env=os.environ.copy(), check=False
        )
    except subprocess.TimeoutExpired as exc:  # say what it was doing
        raise AssertionError(
            f"`cloudtik {' '.join(args)}` still running after {CLI_TIMEOUT:g}s:\n{exc.stdout!s}\n{exc.stderr!s}"
        ) from None


def cli_up(
    workdir: Path,
    name: str,
    *,
    workers: int,
    max_workers: int,
    template: str = "virtual-small",
    extra: dict[str, object] | None = None,
) -> CliCluster:
    config = workdir / f"{name}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "from": template,
                "cluster_name": name,
                "available_node_types": {"worker": {"min_workers": workers, "max_workers": max_workers}},
                **(extra or {}),
            }
        )
    )
    started = time.monotonic()
    done = cli("up", str(config), "--yes")
    assert done.returncode == 0, f"cloudtik up failed:\n{done.stdout}\n{done.stderr}"
    return CliCluster(name, config, time.monotonic() - started)


def cli_down(cluster: CliCluster) -> None:
    """Best effort: the test may have taken it down already; the home's teardown catches the rest."""
    cli("down", cluster.name, "--yes")


# A tiny web service for the head (tornado, from this interpreter): echoes requests as JSON, redirects,
# streams server-sent events (the second only after /release: streaming, not buffering), echoes WebSocket
# messages, and tries to set Jupyter's cookies. Beside it a "trap" port that counts every connection: a
# port the cluster does not declare, which nothing may reach.
ECHO_SERVICE = r"""
import asyncio, json, os, sys
from tornado import web, websocket

ip = os.environ["CLOUDTIK_NODE_IP"]
port, trap_port = int(sys.argv[1]), int(sys.argv[2])
released = asyncio.Event()
hits = 0

class Echo(web.RequestHandler):
    def check_xsrf_cookie(self): pass
    def echo(self):
        self.set_header("Set-Cookie", "service=1; Path=/; Domain=example.org")
        self.add_header("Set-Cookie", "_xsrf=stolen; Path=/")
        self.add_header("Set-Cookie", "username-127-0-0-1-8888=evil; Path=/")
        self.set_header("Referrer-Policy", "unsafe-url")
        self.write({"path": self.request.uri, "method": self.request.method,
                    "headers": dict(self.request.headers), "body": self.request.body.decode()})
    get = post = put = delete = echo

class Redirect(web.RequestHandler):
    def get(self, absolute):
        self.redirect((f"http://{ip}:{port}" if absolute else "") + "/landed?from=redirect")

class Events(web.RequestHandler):
    async def get(self):
        self.set_header("Content-Type", "text/event-stream")
        self.write("data: one\n\n"); await self.flush()
        await released.wait()
        self.write("data: two\n\n")

class Release(web.RequestHandler):
    def get(self):
        released.set(); self.write("released")

class Page(web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/html")
        self.write(f'<a id="self" href="http://{ip}:{port}/landed">me</a>')

class SocketPage(web.RequestHandler):  # a service UI that talks to its service over a WebSocket
    def get(self):
        self.set_header("Content-Type", "text/html")
        self.write('''<title>echo</title><div id="out">connecting</div><script>
const out = document.getElementById("out");
const socket = new WebSocket(new URL("ws", location.href.replace(/^http/, "ws")));
socket.onopen = () => socket.send("hello");
socket.onmessage = e => { out.textContent = e.data; };
socket.onerror = () => { out.textContent = "websocket error"; };
let cookies; try { cookies = document.cookie; } catch (e) { cookies = "refused"; }
document.title = "cookies: " + cookies;
</script>''')

class Echoes(websocket.WebSocketHandler):
    def check_origin(self, origin): return True
    def on_message(self, message):
        if message == "cookie?":  # what the proxy passed on when the socket was opened
            self.write_message("cookie: " + self.request.headers.get("Cookie", "")
                               + "; authorization: " + self.request.headers.get("Authorization", ""))
        else:
            self.write_message("echo: " + message)

async def trap(reader, writer):
    global hits
    hits += 1
    with open("trap.hits", "w") as f: f.write(str(hits))
    writer.close()

async def main():
    app = web.Application([(r"/ws", Echoes), (r"/events", Events), (r"/release", Release),
                           (r"/page", Page), (r"/socket-page", SocketPage), (r"/(absolute-)?redirect", Redirect), (r"/.*", Echo)])
    app.listen(port, address=ip)
    await asyncio.start_server(trap, ip, trap_port)
    with open("echo.ready", "w") as f: f.write("ready")
    await asyncio.Event().wait()

asyncio.run(main())
"""
ECHO_PORT = 28080  # declared in the cluster's proxy.allowed_ports
TRAP_PORT = 28081  # not declared


def start_echo_service(cluster_name: str, workdir: Path) -> None:
    """Start the echo service and the trap on the cluster's head (daemons of the head node, gone with it)."""
    from cloudtik_jupyter.api import Cluster
    from cloudtik_jupyter.waiting import wait_for_sync

    script = workdir / "echo_service.py"
    script.write_text(ECHO_SERVICE)
    cluster = Cluster(cluster_name)
    python = shlex.quote(sys.executable)  # the virtual head shares this machine (and its tornado)
    try:
        cluster.upload(script, "echo_service.py")
        cluster.exec(
            f"rm -f echo.ready trap.hits; nohup {python} echo_service.py {ECHO_PORT} {TRAP_PORT}"
            " < /dev/null > echo.log 2>&1 &",
            check=True,
        )

        def ready() -> bool:
            (result,) = cluster.exec("cat echo.ready 2>/dev/null || tail -5 echo.log")
            if "Error" in result.stdout:
                raise AssertionError(f"the echo service failed:\n{result.stdout}")
            return result.stdout.strip() == "ready"

        wait_for_sync(ready, timeout=30, what="the echo service on the head to listen")
    finally:
        cluster.close()


def trap_hits(cluster_name: str) -> int:
    """How many connections reached the trap port on the head."""
    from cloudtik_jupyter.api import Cluster

    cluster = Cluster(cluster_name)
    try:
        (result,) = cluster.exec("cat trap.hits 2>/dev/null || echo 0")
        return int(result.stdout.strip())
    finally:
        cluster.close()
