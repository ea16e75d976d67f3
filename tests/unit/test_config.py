"""Config loading: templates, merging, validation errors with key paths, dump and the launch hash."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from cloudtik_jupyter.config import (
    ClusterConfig,
    ConfigValidationError,
    config_hash,
    deep_merge,
    dump_config,
    load_config,
    load_config_text,
    shipped_templates,
)
from cloudtik_jupyter.errors import ConfigError
from tests.bad_configs import BAD_CONFIGS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- templates and merging -------------------------------------------------------------------------------


def test_shipped_templates_are_listed() -> None:
    assert {"virtual-small", "virtual-spark"} <= set(shipped_templates())


def test_virtual_small_resolves() -> None:
    config = load_config_text("from: virtual-small\ncluster_name: small\n")
    assert config.cluster_name == "small"
    assert config.provider.type == "virtual"
    assert config.head_node_type == "head"
    worker = config.available_node_types["worker"]
    assert (worker.min_workers, worker.max_workers) == (2, 4)
    assert list(config.worker_types()) == ["worker"]
    assert not config.setup_commands and not config.file_mounts and config.runtime.types == []


def test_virtual_spark_inherits_small_and_adds_spark() -> None:
    config = load_config_text("from: virtual-spark\ncluster_name: spark\n")
    assert config.runtime.types == ["spark"]
    assert config.available_node_types["worker"].max_workers == 4


CLUSTER_EXAMPLES = sorted(p for p in EXAMPLES.glob("*.yaml") if "-workspace" not in p.name)
WORKSPACE_EXAMPLES = sorted(EXAMPLES.glob("*-workspace*.yaml"))


@pytest.mark.parametrize("path", CLUSTER_EXAMPLES, ids=lambda p: p.name)
def test_shipped_examples_load(path: Path) -> None:
    config = load_config(path)
    assert config.cluster_name


@pytest.mark.parametrize("path", WORKSPACE_EXAMPLES, ids=lambda p: p.name)
def test_shipped_workspace_examples_load(path: Path) -> None:
    from cloudtik_jupyter.config.workspace import load_workspace_config

    assert load_workspace_config(path).workspace_name


def test_deep_merge_merges_mappings_and_replaces_lists_and_scalars() -> None:
    base: dict[str, Any] = {
        "a": {"x": 1, "y": [1, 2]},
        "b": 1,
        "p": {"type": "virtual", "address_block": "z"},
    }
    override: dict[str, Any] = {"a": {"y": [3], "z": 0}, "b": 2, "p": {"type": "aws", "region": "r"}}
    assert deep_merge(base, override) == {
        "a": {"x": 1, "y": [3], "z": 0},
        "b": 2,
        "p": {"type": "aws", "region": "r"},  # a different type is a different thing: replaced whole
    }
    assert base["a"] == {"x": 1, "y": [1, 2]}  # inputs untouched


def test_user_config_overrides_template_key_by_key() -> None:
    config = load_config_text(
        "from: virtual-small\ncluster_name: big\n"
        "available_node_types:\n  worker: {max_workers: 8}\n  gpu: {min_workers: 1}\n"
    )
    assert config.available_node_types["worker"].min_workers == 2  # kept from the template
    assert config.available_node_types["worker"].max_workers == 8
    assert set(config.available_node_types) == {"head", "worker", "gpu"}


def test_relative_from_chain_resolves_paths_against_each_file(tmp_path: Path) -> None:
    write(tmp_path / "shared" / "data" / "input.csv", "a,b\n")
    write(
        tmp_path / "shared" / "base.yaml",
        'from: virtual-small\nfile_mounts: {"~/data": ./data}\nsetup_commands: [base]\n',
    )
    write(tmp_path / "team" / "team.yaml", "from: ../shared/base.yaml\nsetup_commands: [team]\n")
    user = write(tmp_path / "cluster.yaml", "from: ./team/team.yaml\ncluster_name: chained\n")
    config = load_config(user)
    assert config.file_mounts == {"~/data": str(tmp_path / "shared" / "data")}
    assert config.setup_commands == ["team"]  # lists replace
    assert config.available_node_types["worker"].min_workers == 2  # from the shipped template at the root


def test_from_cycle_is_detected(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "from: ./b.yaml\n")
    write(tmp_path / "b.yaml", "from: ./a.yaml\n")
    user = write(tmp_path / "cluster.yaml", "from: ./a.yaml\ncluster_name: loop\n")
    with pytest.raises(ConfigError) as info:
        load_config(user)
    assert info.value.path == "from"
    assert "cycle" in info.value.message and "a.yaml -> " in info.value.message


def test_cluster_name_is_not_inherited(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", "from: virtual-small\ncluster_name: shared\n")
    with pytest.raises(ConfigError) as info:
        load_config_text("from: ./base.yaml\n", base_dir=tmp_path)
    assert info.value.path == "cluster_name"
    # ... but a config may start from another full config and rename it
    assert (
        load_config_text("from: ./base.yaml\ncluster_name: mine\n", base_dir=tmp_path).cluster_name == "mine"
    )


def test_empty_node_type_means_defaults() -> None:
    config = load_config_text("cluster_name: bare\nhead_node_type: head\navailable_node_types:\n  head:\n")
    assert config.available_node_types["head"].min_workers == 0


# -- bad configs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "expected"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config_names_the_key(tmp_path: Path, yaml_text: str, expected: str) -> None:
    config_file = write(tmp_path / "cluster.yaml", yaml_text)
    for load in (lambda: load_config(config_file), lambda: load_config_text(yaml_text, base_dir=tmp_path)):
        with pytest.raises(ConfigError) as info:
            load()
        assert expected in str(info.value)
        assert info.value.exit_code == 2
        assert str(info.value).startswith(f"{info.value.path}: " if info.value.path else "")
    assert sorted(os.listdir(tmp_path)) == ["cluster.yaml"]  # nothing created


def test_union_tag_is_not_in_the_path() -> None:
    with pytest.raises(ConfigValidationError) as info:
        load_config_text(
            "cluster_name: t\nfrom: virtual-small\nprovider: {type: virtual, address_block: 5}\n"
        )
    assert info.value.path == "provider.address_block"
    assert info.value.message == "expected a string, got an integer (5)"


def test_every_issue_is_kept_and_the_first_is_the_message() -> None:
    text = (
        "cluster_name: t\nfrom: virtual-small\nidle_timeout_minutes: soon\n"
        "available_node_types: {worker: {foo: 1}}\n"
    )
    with pytest.raises(ConfigValidationError) as info:
        load_config_text(text)
    paths = [issue.path for issue in info.value.issues]
    assert paths == ["available_node_types.worker.foo", "idle_timeout_minutes"]
    assert info.value.path == paths[0]


def test_unknown_key_without_close_match_lists_the_valid_keys() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text("cluster_name: t\nfrom: virtual-small\navailable_node_types: {worker: {zzz: 1}}\n")
    assert "valid keys: max_workers, min_workers, node_config, resources" in info.value.message


def test_bad_yaml_in_a_file_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "cluster_name: a\nhead_node_type: [head\n")
    with pytest.raises(ConfigError, match=r"invalid YAML in .*c\.yaml at line 3, column 1"):
        load_config(path)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.yaml"):
        load_config(str(missing))
    with pytest.raises(ConfigError, match=r"config file not found: .*my-cluster"):
        load_config("my-cluster")
    other = write(tmp_path / "cluster.json", "{}")
    with pytest.raises(ConfigError, match=r"expected a \.yaml or \.yml file.*cluster\.json"):
        load_config(other)


def test_missing_private_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(
            "cluster_name: k\nfrom: virtual-small\nauth: {ssh_private_key: ./id}\n", base_dir=tmp_path
        )
    assert info.value.path == "auth.ssh_private_key"


# -- paths, side effects, dump ---------------------------------------------------------------------------


def test_file_mounts_resolve_against_the_config_dir_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "proj" / "job.py", "print(1)\n")
    path = write(
        tmp_path / "proj" / "cluster.yaml",
        "from: virtual-small\ncluster_name: m\nfile_mounts: {~/job.py: job.py}\n",
    )
    monkeypatch.chdir(tmp_path)
    config = load_config(path)
    assert config.file_mounts == {"~/job.py": str(tmp_path / "proj" / "job.py")}


def test_check_files_can_be_skipped_for_an_existing_cluster(tmp_path: Path) -> None:
    text = "from: virtual-small\ncluster_name: m\nfile_mounts: {/x: ./gone}\n"
    config = load_config_text(text, base_dir=tmp_path, check_files=False)
    assert config.file_mounts == {"/x": str(tmp_path / "gone")}


def test_loading_has_no_side_effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDTIK_HOME", str(tmp_path / "home"))
    source: dict[str, Any] = {
        "from": "virtual-small",
        "cluster_name": "pure",
        "available_node_types": {"worker": {}},
    }
    before = repr(source)
    load_config(source)
    assert repr(source) == before
    assert not (tmp_path / "home").exists()


def test_dump_round_trips(tmp_path: Path) -> None:
    write(tmp_path / "data" / "f.txt", "x")
    text = (
        'from: virtual-spark\ncluster_name: round\nfile_mounts: {"~/data": ./data}\n'
        "runtime: {spark: {worker_cores: 1}}\n"
    )
    config = load_config_text(text, base_dir=tmp_path)
    dumped = dump_config(config)
    assert "from:" not in dumped
    record = write(tmp_path / "elsewhere" / "cluster.yaml", dumped)
    assert load_config(record) == config


# -- launch hash -----------------------------------------------------------------------------------------


def mounted(tmp_path: Path, **extra: Any) -> ClusterConfig:
    data: dict[str, Any] = {
        "from": "virtual-small",
        "cluster_name": "h",
        "file_mounts": {"~/app": "./app"},
        **extra,
    }
    return load_config(data, base_dir=tmp_path)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    write(tmp_path / "app" / "main.py", "print('v1')\n")
    write(tmp_path / "app" / "lib" / "util.py", "X = 1\n")
    return tmp_path / "app"


def test_config_hash_is_stable(tmp_path: Path, app: Path) -> None:
    first = mounted(tmp_path)
    assert config_hash(first, "head") == config_hash(mounted(tmp_path), "head")
    assert len(config_hash(first, "worker")) == 32
    # The same files in another place hash the same: only content counts.
    copy = tmp_path / "copy"
    write(copy / "app" / "main.py", "print('v1')\n")
    write(copy / "app" / "lib" / "util.py", "X = 1\n")
    assert config_hash(mounted(copy), "worker") == config_hash(first, "worker")
    # Counts and timeouts are not setup: changing them re-runs nothing.
    scaled = mounted(tmp_path, available_node_types={"worker": {"max_workers": 9}}, idle_timeout_minutes=1)
    assert config_hash(scaled, "worker") == config_hash(first, "worker")


def test_config_hash_follows_file_contents(tmp_path: Path, app: Path) -> None:
    config = mounted(tmp_path)
    before = config_hash(config, "worker")
    (app / "lib" / "util.py").write_text("X = 2\n")
    changed = config_hash(config, "worker")
    assert changed != before
    write(app / "lib" / "new.py", "")
    added = config_hash(config, "worker")
    assert added != changed
    (app / "main.py").chmod(0o755)
    assert config_hash(config, "worker") != added


def test_config_hash_follows_the_commands_of_its_kind(tmp_path: Path, app: Path) -> None:
    base = mounted(tmp_path)
    head_only = mounted(tmp_path, head_setup_commands=["echo head"])
    assert config_hash(head_only, "head") != config_hash(base, "head")
    assert config_hash(head_only, "worker") == config_hash(base, "worker")
    worker_start = mounted(tmp_path, worker_start_commands=["run"])
    assert config_hash(worker_start, "worker") != config_hash(base, "worker")
    assert config_hash(worker_start, "head") == config_hash(base, "head")
    shared = mounted(tmp_path, initialization_commands=["init"])
    assert config_hash(shared, "head") != config_hash(base, "head")
    assert config_hash(shared, "worker") != config_hash(base, "worker")
    # setup -> start is a different plan even with the same command
    assert config_hash(mounted(tmp_path, setup_commands=["x"]), "head") != config_hash(
        mounted(tmp_path, start_commands=["x"]), "head"
    )


def test_config_hash_follows_the_runtime_section(tmp_path: Path, app: Path) -> None:
    base = mounted(tmp_path)
    spark = mounted(tmp_path, runtime={"types": ["spark"]})
    tuned = mounted(tmp_path, runtime={"types": ["spark"], "spark": {"executor_memory": "2g"}})
    hashes = {config_hash(c, "worker") for c in (base, spark, tuned)}
    assert len(hashes) == 3


def test_config_hash_rejects_unknown_kind(tmp_path: Path, app: Path) -> None:
    with pytest.raises(ValueError, match="node_kind"):
        config_hash(mounted(tmp_path), "controller")
