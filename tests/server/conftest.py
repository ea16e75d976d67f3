"""Fixtures for the server extension: a real jupyter_server (pytest-jupyter) with the extension enabled, and
real virtual clusters made by the `cloudtik` CLI in another process.

pytest-jupyter's fixtures are made visible to this directory only; its hooks and autouse fixtures are not
used: pytest-asyncio runs the tests, the server runs on that same loop (`jp_asyncio_loop` below), and only
tests that use a server start and stop one (`jp_serverapp` below).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jupyter_server.serverapp import ServerApp
from traitlets.config import Config

from .helpers import CliCluster, cli_down, cli_up, short_cloudtik_home

# importlib: the package's attribute `jupyter_core` is shadowed by the jupyter_core package it imports.
_core = importlib.import_module("pytest_jupyter.jupyter_core")
_server = importlib.import_module("pytest_jupyter.jupyter_server")
_tornasync = importlib.import_module("pytest_jupyter.pytest_tornasync")

echo_kernel_spec = _core.echo_kernel_spec
jp_config_dir = _core.jp_config_dir
jp_data_dir = _core.jp_data_dir
jp_env_config_path = _core.jp_env_config_path
jp_env_jupyter_path = _core.jp_env_jupyter_path
jp_environ = _core.jp_environ
jp_home_dir = _core.jp_home_dir
jp_kernel_dir = _core.jp_kernel_dir
jp_runtime_dir = _core.jp_runtime_dir
jp_system_config_path = _core.jp_system_config_path
jp_system_jupyter_path = _core.jp_system_jupyter_path
jp_argv = _server.jp_argv
jp_auth_header = _server.jp_auth_header
jp_base_url = _server.jp_base_url
jp_configurable_serverapp = _server.jp_configurable_serverapp
jp_fetch = _server.jp_fetch
jp_http_port = _server.jp_http_port
jp_logging_stream = _server.jp_logging_stream
jp_nbconvert_templates = _server.jp_nbconvert_templates
jp_root_dir = _server.jp_root_dir
jp_template_dir = _server.jp_template_dir
jp_web_app = _server.jp_web_app
http_server = _tornasync.http_server
http_server_client = _tornasync.http_server_client
http_server_port = _tornasync.http_server_port


@pytest.fixture
async def jp_asyncio_loop() -> asyncio.AbstractEventLoop:
    """The server runs on the loop pytest-asyncio runs the test on (pytest-jupyter would make its own)."""
    return asyncio.get_running_loop()


@pytest.fixture
def jp_serverapp(
    jp_server_config: Config,
    jp_argv: list[str],
    jp_configurable_serverapp: Callable[..., ServerApp],
    jp_asyncio_loop: asyncio.AbstractEventLoop,
) -> Iterator[ServerApp]:
    """A started jupyter_server; at teardown its extensions are stopped (ours closes its SSH connections)."""
    app = jp_configurable_serverapp(config=jp_server_config, argv=jp_argv)
    try:
        yield app
    finally:
        jp_asyncio_loop.run_until_complete(app._cleanup())
        ServerApp.clear_instance()


@pytest.fixture
def cloudtik_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private state dir on a short path (the head's agent keeps Unix sockets under it); at teardown every
    virtual node and the hypervisor are stopped, and the test fails if any process is left."""
    with short_cloudtik_home(monkeypatch) as home:
        yield home


@pytest.fixture
def jp_server_config(cloudtik_home: Path) -> Config:
    # Depends on cloudtik_home so the server (and its SSH connections) stops before the nodes are torn down.
    return Config({"ServerApp": {"jpserver_extensions": {"cloudtik_jupyter.server": True}}})


@pytest.fixture
def cli_cluster(cloudtik_home: Path, tmp_path: Path) -> Iterator[CliCluster]:
    """Cluster "cli" (head + 1 worker, at most 3) brought up by `cloudtik up` in another process."""
    cluster = cli_up(tmp_path, "cli", workers=1, max_workers=3)
    yield cluster
    cli_down(cluster)
