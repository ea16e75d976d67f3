"""Fixtures for the Jupyter front end: a real IPython shell with the extension, on real virtual clusters.

`cloudtik_home` is tests/integration/conftest.py's fixture (same teardown: every virtual node and the
hypervisor stopped, the test failing if any process is left) but on a *short* path: the head's node agent
keeps Unix sockets under the state dir, and pytest's tmp_path can exceed AF_UNIX's 108 bytes.
Helpers are in tests/jupyter/helpers.py.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from cloudtik_jupyter import paths
from tests.virtual_nodes import teardown_virtual

if TYPE_CHECKING:
    from cloudtik_jupyter.jupyter.view import ClusterView
    from tests.jupyter.kernel import Kernel


@pytest.fixture
def cloudtik_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
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


@pytest.fixture(scope="session")
def ipython(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InteractiveShell]:
    """One InteractiveShell for the session (it is a singleton), its profile in a temp dir."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
        config = Config()
        config.HistoryManager.hist_file = ":memory:"
        shell = InteractiveShell.instance(config=config)
        yield shell


@pytest.fixture
def shell(ipython: InteractiveShell, request: pytest.FixtureRequest) -> Iterator[InteractiveShell]:
    """The shell with `%load_ext cloudtik_jupyter` done, on the test's private state dir."""
    request.getfixturevalue("cloudtik_home")
    ipython.run_line_magic("load_ext", "cloudtik_jupyter")
    try:
        yield ipython
    finally:
        ipython.run_line_magic("unload_ext", "cloudtik_jupyter")
        ipython.reset(new_session=False)


@pytest.fixture
def views() -> Iterator[list[ClusterView]]:
    """Views a test made; closed at the end so no watch outlives the test."""
    made: list[ClusterView] = []
    yield made
    for view in made:
        view.close()


@pytest.fixture
def kernel(cloudtik_home: Path, tmp_path: Path) -> Iterator[Kernel]:
    """A real ipykernel on the test's private state dir, `%load_ext cloudtik_jupyter` done."""
    import os

    from tests.jupyter.kernel import Kernel

    started = Kernel({**os.environ, "CLOUDTIK_HOME": str(cloudtik_home)}, tmp_path)
    try:
        started.ok("%load_ext cloudtik_jupyter")
        yield started
    finally:
        started.close()
