"""Helpers for the server-extension and browser tests: clusters made by the real CLI in another process."""

from __future__ import annotations

import contextlib
import os
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
from cloudtik_jupyter.providers.virtual.testing import teardown_virtual

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
    workdir: Path, name: str, *, workers: int, max_workers: int, template: str = "virtual-small"
) -> CliCluster:
    config = workdir / f"{name}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "from": template,
                "cluster_name": name,
                "available_node_types": {"worker": {"min_workers": workers, "max_workers": max_workers}},
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


# A tiny web service for the head: answers every path with the request's headers as JSON, and /redirect
# with a redirect to the service's own root, so a test sees exactly what the proxy passes on.
ECHO_SERVICE = r"""
import http.server, json, os, sys
class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/redirect"):
            self.send_response(302); self.send_header("Location", "/landed?from=redirect"); self.end_headers(); return
        body = json.dumps({"path": self.path, "headers": dict(self.headers)}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "service=1; Path=/"); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
server = http.server.HTTPServer((os.environ["CLOUDTIK_NODE_IP"], 0), Echo)
with open(sys.argv[1] + ".tmp", "w") as f: f.write(str(server.server_address[1]))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()
"""


def start_echo_service(cluster_name: str, workdir: Path) -> int:
    """Start the echo service on the cluster's head (a daemon of the head node, gone with it); its port."""
    from cloudtik_jupyter.api import Cluster
    from cloudtik_jupyter.waiting import wait_for_sync

    script = workdir / "echo_service.py"
    script.write_text(ECHO_SERVICE)
    cluster = Cluster(cluster_name)
    try:
        cluster.upload(script, "echo_service.py")
        cluster.exec(
            "rm -f echo.port; nohup python3 echo_service.py echo.port < /dev/null > echo.log 2>&1 &",
            check=True,
        )

        def port() -> int | None:
            (result,) = cluster.exec("cat echo.port 2>/dev/null")
            return int(result.stdout) if result.stdout.strip() else None

        return wait_for_sync(port, timeout=30, what="the echo service on the head to listen")
    finally:
        cluster.close()
