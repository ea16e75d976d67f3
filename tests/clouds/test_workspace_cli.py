"""`cloudtik workspace ...`: against moto as a real subprocess, and the virtual default in-process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from aws_inventory import leaks, region_inventory
from click.testing import CliRunner
from conftest import MotoAws

from cloudtik_jupyter.cli.workspace import workspace
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.aws.node_provider import AwsNodeProvider
from cloudtik_jupyter.providers.base import NodeSpec


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`cloudtik workspace ...` as a user runs it: a fresh interpreter (env: moto, fake keys, state dir)."""
    return subprocess.run(
        [sys.executable, "-m", "cloudtik_jupyter.cli", "workspace", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
    )


def _write(path: Path, data: dict) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_create_status_info_delete_against_moto(aws: MotoAws, tmp_path: Path) -> None:
    c = aws.clients()
    before = region_inventory(c)
    config = _write(tmp_path / "analytics.yaml", aws.config_dict("analytics"))

    created = cli("create", config, "--yes")
    assert created.returncode == 0, created.stderr
    for resource in ("vpc", "nat-gateway", "security-group", "head-instance-profile", "bucket"):
        assert resource in created.stdout
    assert "missing" not in created.stdout and "is ready" in created.stdout

    started = time.monotonic()
    status = cli("status", "analytics")  # by name: the record from `create`
    status_seconds = time.monotonic() - started
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("present") == 16 and "missing" not in status.stdout
    print(f"cli workspace status against moto: {status_seconds:.2f}s")

    info = cli("info", "analytics")
    assert info.returncode == 0 and "networking:" in info.stdout and "vpc-" in info.stdout

    deleted = cli("delete", "analytics", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert "is deleted" in deleted.stdout
    assert leaks(before, region_inventory(c)) == {}
    assert cli("status", "analytics").returncode == 2  # forgotten: no such workspace


def test_errors_are_one_red_line_with_the_right_exit_code(aws: MotoAws, tmp_path: Path) -> None:
    bad = aws.config_dict("ws")
    bad["networking"] = {"mode": "public"}  # nobody may SSH in: refused, nothing created
    result = cli("create", _write(tmp_path / "bad.yaml", bad), "--yes")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: networking.allowed_ssh_cidrs: list who may SSH to the head, e.g. [203.0.113.7/32]; "
        "nothing is open by default"
    ]

    c = aws.clients()
    config = _write(tmp_path / "ws.yaml", aws.config_dict("ws"))
    assert cli("create", config, "--yes").returncode == 0
    image = c.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    AwsNodeProvider(aws.provider_config(), "etl", workspace_name="ws", clients=c).create_nodes(
        NodeSpec("w", {"ImageId": image}), {T.NODE_KIND: T.KIND_WORKER}, 1
    )
    refused = cli("delete", "ws", "--yes")
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1 and "clusters: etl" in refused.stderr
    forced = cli("delete", "ws", "--yes", "--force")
    assert forced.returncode == 0, forced.stderr


def test_open_ssh_prints_a_warning(aws: MotoAws, tmp_path: Path) -> None:
    config = _write(tmp_path / "open.yaml", aws.config_dict("open", allowed_ssh_cidrs=["0.0.0.0/0"]))
    result = CliRunner().invoke(workspace, ["status", config])
    assert result.exit_code == 0
    assert "Warning: networking.allowed_ssh_cidrs opens SSH to the whole internet" in result.output


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLOUDTIK_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_virtual_workspace_commands(home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    config = _write(tmp_path / "lab.yaml", {"workspace_name": "lab"})
    created = runner.invoke(workspace, ["create", config, "--yes"])
    assert created.exit_code == 0, created.output
    assert "address-block" in created.output and "is ready" in created.output
    info = runner.invoke(workspace, ["info", "lab"])
    assert info.exit_code == 0 and "address_block:" in info.output
    assert runner.invoke(workspace, ["update", config, "--yes"]).exit_code == 0
    deleted = runner.invoke(workspace, ["delete", "lab", "--yes"])
    assert deleted.exit_code == 0 and not (home / "workspaces" / "lab").exists()
    unknown = runner.invoke(workspace, ["status", "nope"])
    assert unknown.exit_code == 2 and "no workspace named 'nope'" in unknown.output


def test_importing_the_package_does_not_import_boto3() -> None:
    code = (
        "import sys, cloudtik_jupyter, cloudtik_jupyter.api.workspace, cloudtik_jupyter.cli.workspace, "
        "cloudtik_jupyter.providers, cloudtik_jupyter.config.workspace\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 imported eagerly'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
