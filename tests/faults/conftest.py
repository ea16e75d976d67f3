"""The fault suite's state dir fixture (helpers and fault injectors: tests/faults/helpers.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudtik_jupyter import paths
from tests.virtual_nodes import teardown_virtual


@pytest.fixture(scope="module")
def fault_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private state dir for the module's cluster; everything in it is gone at the end."""
    home = tmp_path_factory.mktemp("faults") / "home"
    paths.ensure_private_dir(home)
    saved = {k: os.environ.get(k) for k in ("CLOUDTIK_HOME", "CLOUDTIK_VIRTUAL_IDLE_EXIT")}
    os.environ["CLOUDTIK_HOME"] = str(home)
    os.environ["CLOUDTIK_VIRTUAL_IDLE_EXIT"] = "600"
    try:
        yield home
    finally:
        try:
            teardown_virtual(home)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
