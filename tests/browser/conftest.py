"""Fixtures for the browser test: a real `jupyter lab` (its own process, with the server extension and the
built labextension) and Playwright driving Debian's chromium (scripts/install-browser.sh).

Every process started here is stopped by its finalizer, by process group id (never by name).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cloudtik_jupyter.waiting import wait_for_sync

from ..server.helpers import short_cloudtik_home

ROOT = Path(__file__).resolve().parents[2]
LABEXTENSIONS = ROOT / "labextension" / "dist"  # holds the built cloudtik-jupyter/ (npm run build)
BROWSER = Path(os.environ.get("CLOUDTIK_BROWSER", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts"
LAB_START_TIMEOUT = 90.0
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@dataclass(frozen=True)
class Lab:
    url: str  # base URL, ending with '/'
    token: str
    log: Path


@pytest.fixture
def cloudtik_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with short_cloudtik_home(monkeypatch) as home:
        yield home


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM to the process group we created (the server shuts its kernels down), then SIGKILL."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)


@pytest.fixture
def lab(cloudtik_home: Path, tmp_path: Path) -> Iterator[Lab]:
    """`jupyter lab` on 127.0.0.1 with a fresh Jupyter config/data/runtime dir; the token goes by the
    environment (never on the command line)."""
    if not (LABEXTENSIONS / "cloudtik-jupyter" / "package.json").exists():
        pytest.fail(
            f"the labextension is not built ({LABEXTENSIONS}): run "
            "`npm --prefix labextension ci && npm --prefix labextension run build`"
        )
    token = secrets.token_hex(16)
    port = _free_port()
    config_dir = tmp_path / "jupyter-config"
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"cloudtik_jupyter.server": True}}})
    )
    root = tmp_path / "notebooks"
    root.mkdir()
    env = {
        **os.environ,
        "JUPYTER_TOKEN": token,
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
    }
    log = tmp_path / "lab.log"
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.extra_labextensions_path={LABEXTENSIONS}",
        # Nothing to fetch from the internet: no update check, no extension manager's index.
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                answer = httpx.get(f"{url}api/status", headers={"Authorization": f"token {token}"}, timeout=2)
            except httpx.HTTPError:
                return False
            return answer.status_code == 200

        wait_for_sync(ready, timeout=LAB_START_TIMEOUT, what="jupyter lab to answer")
        yield Lab(url, token, log)
    finally:
        _stop(proc)


@pytest.fixture
def browser_context(tmp_path: Path) -> Iterator[object]:
    """A headless chromium with a fresh profile (user-data-dir)."""
    if not BROWSER.exists():
        pytest.fail(f"{BROWSER} is missing: run scripts/install-browser.sh")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(BROWSER),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
            permissions=["clipboard-read", "clipboard-write"],
        )
        try:
            yield context
        finally:
            context.close()
