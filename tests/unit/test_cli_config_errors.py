"""Bad input through the real `cloudtik` CLI: exit 2, one line naming the key, nothing created."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cloudtik_jupyter.cli import main
from tests.bad_configs import BAD_CONFIGS


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("CLOUDTIK_HOME", str(state))
    return state


@pytest.mark.parametrize(("case", "text", "expected"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_exits_2_naming_the_key(
    home: Path, tmp_path: Path, case: str, text: str, expected: str
) -> None:
    config = tmp_path / "cfg" / "cluster.yaml"
    config.parent.mkdir()
    config.write_text(text)
    result = CliRunner().invoke(main, ["up", str(config), "--yes"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert expected in lines[0]
    assert "Traceback" not in result.output
    assert not home.exists(), "a bad config must create nothing"


def test_bad_config_in_a_real_process(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("from: virtual-small\ncluster_name: x\nprovider: {type: nimbus}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "cloudtik_jupyter.cli", "up", str(config), "--yes"],
        capture_output=True,
        text=True,
        env={**os.environ, "CLOUDTIK_HOME": str(home)},
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "provider.type" in proc.stderr
    assert not home.exists()


def test_missing_config_file_and_unknown_cluster(home: Path) -> None:
    result = CliRunner().invoke(main, ["up", "nowhere.yaml"])
    assert result.exit_code == 2 and "nowhere.yaml" in result.output
    result = CliRunner().invoke(main, ["status", "ghost"])
    assert result.exit_code == 2 and "no cluster named 'ghost'" in result.output
