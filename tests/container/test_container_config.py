"""The `docker:` section, the container spec derived from it and the shell run on nodes (no daemon needed)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

import pytest

from cloudtik_jupyter.cluster.updater import plan_for
from cloudtik_jupyter.config import ConfigValidationError, config_hash, load_config_text
from cloudtik_jupyter.container import scripts
from cloudtik_jupyter.container.skeleton import skeleton_tar
from cloudtik_jupyter.container.spec import Mount, container_name, container_spec, resource_limits

BASE = "from: virtual-small\ncluster_name: boxed\n"
ENABLED = "docker: {enabled: true, image: 'cloudtik-skeleton:local', pull_before_run: false"


@pytest.mark.parametrize(
    ("docker", "path", "message"),
    [
        ("{enabled: true}", "docker.image", "required when docker.enabled is true"),
        ("{enabled: true, image: 'a b'}", "docker.image", "not an image reference"),
        ("{enabeld: true}", "docker.enabeld", "did you mean 'enabled'?"),
        (
            "{image: x, run_options: ['--cpus=1', '--privileged']}",
            "docker.run_options[1]",
            "every capability and device",
        ),
        (
            "{image: x, worker_run_options: ['--network bridge']}",
            "docker.worker_run_options[0]",
            "host networking",
        ),
        ("{image: x, run_options: ['--ulimit \"a']}", "docker.run_options[0]", "cannot split"),
        ("{image: x, mounts: ['/a:/b', 'rel:/x']}", "docker.mounts[1]", "host path must be absolute"),
        ("{image: x, mounts: ['/a:/b:rx']}", "docker.mounts[0]", "mode must be ro or rw"),
        ("{image: x, mounts: ['/a']}", "docker.mounts[0]", "expected HOST:CONTAINER"),
        ("{enabled: yes please}", "docker.enabled", "expected true or false"),
    ],
)
def test_bad_docker_sections_name_the_key(docker: str, path: str, message: str) -> None:
    with pytest.raises(ConfigValidationError) as info:
        load_config_text(f"{BASE}docker: {docker}\n")
    assert info.value.path == path
    assert message in str(info.value)


def test_spec_follows_the_config() -> None:
    config = load_config_text(
        BASE
        + ENABLED
        + ", host_environment: true, mounts: ['~/data:/data:ro', '/scratch:/scratch'],"
        + " run_options: ['--ulimit nofile=1024:1024'], worker_run_options: ['--shm-size=1g']}\n"
        + "available_node_types: {worker: {resources: {CPU: 2, memory: 1073741824}}}\n"
    )
    worker = container_spec(config, "vn-0123456789", "worker", "worker", ["CLOUDTIK_NODE_KIND"])
    assert worker.name == container_name("boxed", "vn-0123456789") == "cloudtik-boxed-vn-0123456789"
    assert worker.mounts[0] == Mount("~", "~")  # the node's home, shared
    assert Mount("/usr", "/usr", read_only=True) in worker.mounts
    readonly = [m.source for m in worker.mounts if m.read_only and m.source == m.target]
    for path in (sys.prefix, sys.base_prefix):  # the node's interpreter and packages, read-only
        assert any(path == r or path.startswith(r + "/") for r in readonly)
    assert Mount("~/data", "/data", read_only=True) in worker.mounts
    assert Mount("/scratch", "/scratch") in worker.mounts
    assert [o for o in worker.options if o.startswith("--")] == [
        "--cpus=2",
        "--memory=1073741824b",
        "--pid=host",  # the virtual provider tells live nodes by host PIDs
        "--ulimit",
        "--shm-size=1g",
    ]
    assert {"HOME", "PATH", "CLOUDTIK_HOME", "CLOUDTIK_NODE_KIND"} <= set(worker.env_names)
    head = container_spec(config, "vn-0123456789", "head", "head")
    assert "--shm-size=1g" not in head.options and "DOCKER_HOST" in head.env_names
    assert head.digest != worker.digest


def test_resource_limits() -> None:
    assert resource_limits({}) == []
    assert resource_limits({"CPU": 0.5, "memory": 2**29}) == ["--cpus=0.5", "--memory=536870912b"]


def test_launch_hash_changes_with_the_mode_only_when_containers_are_on() -> None:
    host = load_config_text(BASE)
    assert plan_for(host, "worker").launch_hash == config_hash(host, "worker")  # host mode: unchanged
    boxed = load_config_text(BASE + ENABLED + "}\n")
    other = load_config_text(BASE + ENABLED.replace("local", "v2") + "}\n")
    hashes = {plan_for(c, "worker").launch_hash for c in (host, boxed, other)}
    assert len(hashes) == 3


def _bash_syntax(script: str) -> None:
    checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr + script


def test_node_scripts_are_valid_shell() -> None:
    config = load_config_text(BASE + ENABLED + ", mounts: ['~/my data:/data']}\n")
    spec = container_spec(config, "vn-0123456789", "head", "head")
    for script in (
        scripts.inspect_script(spec),
        scripts.start_script(spec),
        scripts.status_script(spec.name, 123),
        scripts.gone_script(spec.name),
        scripts.leave_container_script(),
        scripts.exec_command(spec.name, "echo 'it''s' \"$HOME\"", tty_if_terminal=True),
        scripts.copy_in_script(spec.name, "~/.cloudtik/container/up", "/srv/x", True),
        scripts.copy_out_script(spec.name, "/srv/x", "~/.cloudtik/container/down"),
    ):
        _bash_syntax(script)
    assert "-v \"$HOME\"/'my data':/data" in scripts.run_command(spec)
    assert "--privileged" not in scripts.run_command(spec)


def test_exec_command_keeps_the_command_intact() -> None:
    command = scripts.exec_command("c1", "printf '%s\\n' \"a b\" $((1+1))")
    # What the node's shell hands to `docker exec`: the command, verbatim, as one argument.
    argv = subprocess.run(
        ["bash", "-c", command.replace("docker exec -i c1", "printf '%s\\0'", 1)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")[:-1]
    assert argv == ["/bin/bash", "-c", "printf '%s\\n' \"a b\" $((1+1))"]


@pytest.mark.parametrize(
    ("path", "home"), [("~", True), ("~/x", True), ("jobs/a.py", True), ("/srv/x", False)]
)
def test_paths_under_the_home_are_shared(path: str, home: bool) -> None:
    assert scripts.in_home(path) is home


def test_skeleton_image_layout(tmp_path: Path) -> None:
    with tarfile.open(fileobj=BytesIO(skeleton_tar())) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["sbin"].isdir()  # --init mounts docker-init at /sbin/docker-init
    assert members["bin"].issym() and members["bin"].linkname == "usr/bin"
    assert members["tmp"].mode == 0o1777
    assert all(m.isdir() or m.issym() for m in members.values())  # no file: the node provides them
