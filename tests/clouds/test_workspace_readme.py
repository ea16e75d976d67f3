"""The README's workspace guide says what the code does: the permission documents are the ones the tests
evaluate, the config reference has every key, and the virtual example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cloudtik_jupyter.api.workspace import user_permissions
from cloudtik_jupyter.config.loader import load_config
from cloudtik_jupyter.config.workspace import NetworkingConfig, WorkspaceConfig
from cloudtik_jupyter.providers.virtual.node_provider import VirtualNodeProvider

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
GUIDE = README[README.index("## Workspaces") : README.index("## Container mode")]


@pytest.mark.parametrize(("cloud", "fence"), [("aws", "json"), ("gcp", "yaml"), ("azure", "json")])
def test_the_permission_documents_are_the_tested_ones(cloud: str, fence: str) -> None:
    blocks = re.findall(rf"```{fence}\n(.*?)```", GUIDE, re.DOTALL)
    assert user_permissions(cloud) in blocks


def test_the_config_reference_has_every_key() -> None:
    reference = GUIDE[GUIDE.index("### Config reference") :]
    for key in (*WorkspaceConfig.model_fields, *NetworkingConfig.model_fields):
        assert re.search(rf"^\s*{key}:", reference, re.MULTILINE), key
    for mode in ("public", "peering", "shared-vpc"):
        assert f"| `{mode}` |" in GUIDE


def test_the_virtual_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("CLOUDTIK_HOME", str(home))

    def cloudtik(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cloudtik_jupyter.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )

    assert "cloudtik workspace create examples/virtual-workspace.yaml --yes" in GUIDE
    created = cloudtik("workspace", "create", "examples/virtual-workspace.yaml", "--yes")
    assert created.returncode == 0, created.stderr
    assert "is ready" in created.stdout
    info = cloudtik("workspace", "info", "lab")
    (block,) = re.findall(r"address_block:\s+(\S+)", info.stdout)
    config = load_config(ROOT / "examples" / "virtual-lab.yaml")  # what `up examples/virtual-lab.yaml` uses
    assert config.workspace_name == "lab"
    assert (
        str(
            VirtualNodeProvider(
                config.provider, config.cluster_name, workspace_name="lab", home=home
            ).address_block
        )
        == block
    )  # type: ignore[arg-type]
    deleted = cloudtik("workspace", "delete", "lab", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert "removed 127." in deleted.stdout and not (home / "workspaces" / "lab").exists()
