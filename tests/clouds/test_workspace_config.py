"""Workspace config: bad input is a ConfigError naming the key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloudtik_jupyter.config.workspace import (
    WorkspaceConfig,
    dump_workspace_config,
    load_workspace_config,
)
from cloudtik_jupyter.errors import ConfigError

AWS = {"type": "aws", "region": "eu-west-1"}
SSH = {"allowed_ssh_cidrs": ["198.51.100.0/24"]}


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ({"workspace_name": "Bad Name"}, "workspace_name", "pattern"),
        ({"workspace_name": "w", "colour": 1}, "colour", "Extra inputs"),
        ({"workspace_name": "w", "provider": {**AWS, "regoin": "x"}}, "provider.regoin", "Extra inputs"),
        (
            {"workspace_name": "w", "provider": {"type": "ibm"}},
            "provider",
            "does not match any of the expected tags",
        ),
        (
            {"workspace_name": "w", "provider": AWS},
            "networking.allowed_ssh_cidrs",
            "nothing is open by default",
        ),
        (
            {"workspace_name": "w", "networking": {"allowed_ssh_cidrs": ["1.2.3.4/8"]}},
            "networking.allowed_ssh_cidrs",
            "host bits",
        ),
        (
            {"workspace_name": "w", "networking": {"mode": "bridge"}},
            "networking.mode",
            "'public', 'peering' or 'shared-vpc'",
        ),
        ({"workspace_name": "w", "networking": {"mode": "peering"}}, "networking.peer_vpc_id", "required"),
        ({"workspace_name": "w", "networking": {"mode": "shared-vpc"}}, "networking.vpc_id", "required"),
        ({"workspace_name": "w", "networking": {"vpc_id": "vpc-1"}}, "networking.vpc_id", "only used"),
        (
            {"workspace_name": "w", "networking": {"vpc_cidr": "10.0.0.0/8"}},
            "networking.vpc_cidr",
            "/16 to /22",
        ),
        ({"workspace_name": "w", "networking": {"vpc_cidr": "8.8.0.0/16"}}, "networking.vpc_cidr", "private"),
    ],
)
def test_errors_name_the_key_path(data: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_workspace_config(data)
    assert err.value.path == path
    assert message in err.value.message


def test_yaml_round_trip_and_file_errors(tmp_path: Path) -> None:
    data = {
        "workspace_name": "w",
        "provider": AWS,
        "networking": {"mode": "peering", "peer_vpc_id": "vpc-9", **SSH},
    }
    config = load_workspace_config(data)
    assert isinstance(config, WorkspaceConfig) and config.networking.private_head
    file = tmp_path / "w.yaml"
    file.write_text(dump_workspace_config(config))
    assert load_workspace_config(file) == config
    assert load_workspace_config(str(file)) == config

    file.write_text("workspace_name: [unclosed")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_workspace_config(file)
    file.write_text("workspace_name: a\nworkspace_name: b\n")
    with pytest.raises(ConfigError, match="duplicate key 'workspace_name'"):
        load_workspace_config(file)
    file.write_text("- a list")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_workspace_config(file)
    with pytest.raises(ConfigError, match="workspace config not found"):
        load_workspace_config(tmp_path / "missing.yaml")


def test_examples_are_valid() -> None:
    examples = sorted((Path(__file__).parents[2] / "examples").glob("aws-workspace*.yaml"))
    assert examples
    for example in examples:
        assert load_workspace_config(example).provider.type == "aws"
    import yaml

    from cloudtik_jupyter.config.schema import ClusterConfig

    root = examples[0].parent
    cluster = ClusterConfig.model_validate(yaml.safe_load((root / "aws-cluster.yaml").read_text()))
    assert cluster.workspace_name == load_workspace_config(root / "aws-workspace.yaml").workspace_name
