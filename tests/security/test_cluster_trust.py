"""The trust boundaries of a real virtual cluster (one head, one worker, shared by these tests):
what a worker holds, what a download from it can do here, and what `status` says when the head's host
key changes. The user's side is trusted; the head less; a worker less still."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import psutil
import pytest

from cloudtik_jupyter import paths
from cloudtik_jupyter.api import Cluster
from cloudtik_jupyter.cluster.context import HOST_KEYS_FILE
from cloudtik_jupyter.cluster.live import redis_dir
from cloudtik_jupyter.runtimes.secret import SECRET_FILE
from cloudtik_jupyter.ssh.host_keys import HostKeyStore, fingerprint
from cloudtik_jupyter.waiting import wait_for_sync
from tests.virtual_nodes import teardown_virtual

pytestmark = pytest.mark.integration
NAME = "trust"
BUSY_CPU = 5.0  # head.idle_cpu_percent's default: a worker using more is busy


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("trust") / "home"
    paths.ensure_private_dir(home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLOUDTIK_HOME", str(home))
        mp.setenv("CLOUDTIK_VIRTUAL_IDLE_EXIT", "600")
        config = {
            "cluster_name": NAME,
            "provider": {"type": "virtual"},
            "head_node_type": "head",
            "available_node_types": {"head": {}, "worker": {"min_workers": 1, "max_workers": 1}},
            "head": {"controller_interval": 1.0},
        }
        try:
            made = Cluster(config).up()
            yield made
            made.close()
        finally:
            teardown_virtual(home)


def worker_of(cluster: Cluster) -> str:
    (worker,) = cluster.status().workers
    return worker.node_id


REDIS_ATTEMPT = textwrap.dedent(
    """
    import json, pathlib, sys
    import redis
    state = pathlib.Path.home() / ".cloudtik" / "node" / "redis"
    endpoints = json.loads((state / "endpoints.json").read_text())
    password = (state / "password").read_text().strip()
    client = redis.Redis(host=endpoints["primary"]["host"], port=endpoints["primary"]["port"],
                         username="node-" + sys.argv[1], password=password)
    client.ping()
    for command in (("CONFIG", "SET", "dir", "/tmp"), ("FLUSHALL",), ("HSET", "cloudtik:node:" + sys.argv[2], "status", "x"),
                    ("HSET", "cloudtik:desired", "worker", "0")):
        try:
            client.execute_command(*command)
            print("ALLOWED", command[0])
        except redis.exceptions.NoPermissionError:
            print("REFUSED", command[0])
    """
)


def test_a_worker_holds_only_its_own_restricted_redis_user(cluster: Cluster) -> None:
    worker = worker_of(cluster)
    head = cluster.status().head
    assert head is not None
    script = shlex.join(["python3", "-c", REDIS_ATTEMPT, worker, head.node_id])
    (result,) = cluster.exec(script, node=worker, check=True)
    refused = ["REFUSED CONFIG", "REFUSED FLUSHALL", "REFUSED HSET", "REFUSED HSET"]  # ... nor scale requests
    assert result.stdout.split("\n")[:4] == refused, result.stdout
    admin = (redis_dir(cluster._ctx) / "password").read_text().strip()
    (on_worker,) = cluster.exec("cat ~/.cloudtik/node/redis/password", node=worker, check=True)
    assert on_worker.stdout.strip() and on_worker.stdout.strip() != admin
    # The head's controller gave it a per-node password and the runtime secret, both 0600.
    (modes,) = cluster.exec(
        f"stat -c '%a' ~/.cloudtik/node/redis/password ~/.cloudtik/node/{SECRET_FILE}",
        node=worker,
        check=True,
    )
    assert modes.stdout.split() == ["600", "600"]
    secret = (paths.cluster_dir(NAME) / SECRET_FILE).read_text().strip()
    shown = [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])]
    assert not [c for c in shown if secret in c or admin in c], "a secret is on a command line"


def test_a_workers_own_user_reports_its_activity(cluster: Cluster) -> None:
    """What idle release is judged on (user CPU beyond the agent's services) is written by the worker's
    agent through its restricted user, from its own address: a user's job shows up in the head's store."""
    worker = worker_of(cluster)
    (job,) = cluster.exec(
        "setsid sh -c 'while :; do :; done' >/dev/null 2>&1 < /dev/null & echo $!", node=worker, check=True
    )
    pid = int(job.stdout.strip())

    async def user_cpu() -> float:
        head = await cluster._ctx.head()
        assert head is not None
        health = (await (await cluster._ctx.store(head)).all_health()).get(worker)
        return health.activity.user_cpu if health is not None else 0.0

    try:
        wait_for_sync(
            lambda: cluster._sync(user_cpu()) > BUSY_CPU,
            timeout=60,
            what="the worker's job in its health report",
        )
    finally:
        cluster.exec(f"kill {pid}", node=worker, check=False)
    wait_for_sync(
        lambda: cluster._sync(user_cpu()) < BUSY_CPU, timeout=60, what="the job's end to be reported"
    )


def test_a_download_never_follows_a_link_the_worker_planted(cluster: Cluster, tmp_path: Path) -> None:
    worker = worker_of(cluster)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    cluster.exec(f"mkdir -p ~/out && ln -sfn {victim} ~/out/result", node=worker, check=True)
    dest = tmp_path / "dest"
    cluster.download("~/out", dest, node=worker)
    assert dest.joinpath("result").is_symlink()
    cluster.exec("rm ~/out/result && echo pwned > ~/out/result", node=worker, check=True)
    cluster.download("~/out", dest, node=worker)
    assert victim.read_text() == "precious"
    assert dest.joinpath("result").read_text() == "pwned\n"


def test_status_names_a_changed_head_host_key_with_both_fingerprints(cluster: Cluster) -> None:
    head = cluster.status().head
    assert head is not None and cluster.status().error is None
    pins = HostKeyStore(paths.cluster_dir(NAME) / HOST_KEYS_FILE)
    original = pins.get(head.node_id)
    assert original is not None
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    pins.forget(head.node_id)
    pins.pin(head.node_id, impostor, original.address)  # as if another machine answered before
    try:
        status = Cluster(NAME).status()  # a fresh client: connects anew
        assert status.error is not None
        assert fingerprint(impostor) in status.error and original.fingerprint in status.error
        assert "CHANGED" in status.error and head.node_id in status.error
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        done = subprocess.run(
            [sys.executable, "-m", "cloudtik_jupyter.cli", "status", NAME],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert done.returncode == 1 and "Traceback" not in done.stderr
        (line,) = [line for line in done.stderr.splitlines() if line.strip()]
        assert line.startswith("Error: host key of node") and fingerprint(impostor) in line
        assert original.fingerprint in line
    finally:
        pins.forget(head.node_id)
        pins.pin(head.node_id, original.host_key, original.address, original.source)
    assert Cluster(NAME).status().error is None
