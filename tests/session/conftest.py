"""`session_home`: a private state dir for `cloudtik` runs with the CLI session on; at teardown every
session of it is stopped by PID, and the test fails if any process using it is left."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudtik_jupyter import paths
from tests.integration.conftest import cloudtik_home  # noqa: F401  (a state dir with nodes: same teardown)
from tests.virtual_nodes import teardown_virtual


@pytest.fixture
def session_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    paths.ensure_private_dir(home)
    try:
        yield home
    finally:
        teardown_virtual(home)  # sessions by pid, then nodes; fails on leftovers
