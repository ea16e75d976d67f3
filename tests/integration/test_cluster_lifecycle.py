"""`up`/`exec`/`down` of real virtual clusters through the API and the real `cloudtik` CLI."""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncssh
import psutil
import pytest

from cloudtik_jupyter import paths
from cloudtik_jupyter.api import Cluster
from cloudtik_jupyter.cluster.context import HOST_KEYS_FILE, KEY_FILE
from cloudtik_jupyter.errors import CannotConnect, CloudtikError, CommandFailed, HostKeyChanged
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.virtual.client import HypervisorClient
from cloudtik_jupyter.ssh.host_keys import HostKeyStore
from cloudtik_jupyter.waiting import wait_for_sync
from tests.cli_process import cli as run_cli
from tests.virtual_nodes import processes_using_home

ROOT = Path(__file__).resolve().parents[2]


def small(name: str = "life", workers: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "cluster_name": name,
        "provider": {"type": "virtual"},
        "head_node_type": "head",
        "available_node_types": {"head": {}, "worker": {"min_workers": workers, "max_workers": 4}},
        **extra,
    }


cli = functools.partial(run_cli, timeout=120)  # the CLI as a process, as a user runs it


def listening_on(ips: set[str]) -> list[Any]:
    return [c for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN and c.laddr.ip in ips]


def test_up_exec_down(cloudtik_home: Path) -> None:
    cluster = Cluster(small()).up()
    status = cluster.status()
    assert [n.kind for n in status.nodes] == ["head", "worker", "worker"]
    assert all(n.status == "up-to-date" for n in status.nodes)
    assert [n.seq for n in status.nodes] == [1, 2, 3]
    ips = {n.internal_ip for n in status.nodes}
    assert len(ips) == 3

    results = cluster.exec("echo $CLOUDTIK_NODE_IP", all_nodes=True, check=True)
    assert [r.stdout.strip() for r in results] == [n.internal_ip for n in status.nodes]
    worker = status.workers[1]
    (only,) = cluster.exec("echo $CLOUDTIK_NODE_KIND $CLOUDTIK_HEAD_IP; exit 3", node=str(worker.seq))
    assert only.exit_status == 3 and only.stdout.split() == ["worker", status.nodes[0].internal_ip]

    # The cluster's own key, pinned host keys, and files 0600.
    record = paths.cluster_dir("life")
    for secret in (record / KEY_FILE, record / HOST_KEYS_FILE):
        assert secret.stat().st_mode & 0o777 == 0o600
    pins = HostKeyStore(record / HOST_KEYS_FILE)
    for n in status.nodes:
        pinned = pins.get(n.node_id)
        assert pinned is not None and pinned.host_key == cluster._ctx.provider.address(n.node_id).host_key

    # Workers are private: the client cannot reach a worker's SSH server directly, only through the head.
    async def direct() -> None:
        async with asyncssh.connect(
            worker.internal_ip,
            cluster._ctx.provider.address(worker.node_id).ssh_port,
            username=cluster.config.auth.ssh_user,
            client_keys=[str(record / KEY_FILE)],
            known_hosts=None,
            connect_timeout=5,
        ):
            pass

    with pytest.raises((OSError, asyncssh.Error)):
        asyncio.run(direct())

    assert cluster.down() == 3
    assert Cluster.list() == []
    # The last cluster gone, the hypervisor goes with it (not a minute later when idle), as with the CLI.
    assert HypervisorClient(cloudtik_home).ping() is None
    wait_for_sync(
        lambda: not processes_using_home(cloudtik_home),
        timeout=10,
        what="every node process and the hypervisor to exit",
    )
    assert listening_on(ips) == []
    assert not record.exists()


def test_up_is_idempotent_and_syncs_file_mounts(cloudtik_home: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "input.txt").write_text("42\n")
    config = small(
        "idem",
        file_mounts={"~/data": str(data)},
        setup_commands=["echo ran >> ~/setup-runs"],
        start_commands=["cat ~/data/input.txt > ~/started"],
    )
    cluster = Cluster(config).up()
    before = cluster.status()
    cluster.up()
    after = cluster.status()
    assert [n.node_id for n in after.nodes] == [n.node_id for n in before.nodes]
    runs = cluster.exec("wc -l < ~/setup-runs; cat ~/started", all_nodes=True, check=True)
    assert [r.stdout.split() for r in runs] == [["1", "42"]] * 3

    # A changed config (a different mounted file) re-runs setup on every node, still without new nodes.
    (data / "input.txt").write_text("43\n")
    Cluster(config).up()
    runs = cluster.exec("wc -l < ~/setup-runs; cat ~/started", all_nodes=True, check=True)
    assert [r.stdout.split() for r in runs] == [["2", "43"]] * 3
    assert [n.node_id for n in cluster.status().nodes] == [n.node_id for n in before.nodes]
    cluster.down()


def test_failing_setup_names_node_command_and_output(cloudtik_home: Path) -> None:
    cluster = Cluster(small("broken", workers=0, setup_commands=["echo disk full >&2; exit 7"]))
    with pytest.raises(CommandFailed) as info:
        cluster.up()
    message = str(info.value)
    assert "exit 7" in message and "exited with 7" in message and "disk full" in message
    (head,) = cluster.status().nodes
    assert head.status == T.NodeStatus.UPDATE_FAILED.value
    cluster.down()


def test_interrupted_up_converges_without_duplicates(cloudtik_home: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    config = tmp_path / "gated.yaml"
    config.write_text(
        "from: virtual-small\ncluster_name: gated\n"
        f"worker_setup_commands: ['while [ ! -e {gate} ]; do sleep 0.05; done']\n"
    )
    env = {**os.environ, "CLOUDTIK_HOME": str(cloudtik_home)}
    client = subprocess.Popen(
        [sys.executable, "-m", "cloudtik_jupyter.cli", "up", str(config), "--yes"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        cluster = Cluster(str(config))

        def setting_up_workers() -> bool:
            statuses = [n.status for n in cluster.status().workers]
            return statuses.count(T.NodeStatus.SETTING_UP.value) == 2

        wait_for_sync(setting_up_workers, timeout=60, what="both workers to be setting up")
        client.kill()  # the client dies mid-setup, as a closed laptop would
    finally:
        client.kill()
        client.wait(timeout=30)

    gate.touch()
    done = cli(cloudtik_home, "up", str(config), "--yes")
    assert done.returncode == 0, done.stderr
    status = cluster.status()
    assert len(status.nodes) == 3, status.nodes
    assert [n.kind for n in status.nodes] == ["head", "worker", "worker"]
    assert all(n.status == "up-to-date" for n in status.nodes)
    assert cli(cloudtik_home, "down", "gated", "--yes").returncode == 0


def test_changed_host_key_is_refused(cloudtik_home: Path) -> None:
    cluster = Cluster(small("pinned", workers=0)).up()
    (head,) = cluster.status().nodes
    cluster.close()
    # The node now presents a different host key than the one pinned for it (as an impostor would).
    pins = HostKeyStore(paths.cluster_dir("pinned") / HOST_KEYS_FILE)
    original = pins.get(head.node_id)
    assert original is not None
    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    pins.forget(head.node_id)
    pins.pin(head.node_id, impostor, original.address)
    with pytest.raises(HostKeyChanged) as info:
        Cluster("pinned").exec("true")
    assert head.node_id in str(info.value)
    result = cli(cloudtik_home, "exec", "pinned", "true")
    assert result.returncode == 1 and "host key" in result.stderr.lower()
    assert Cluster("pinned").down() == 1


def count_listings(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """The tag filters of every provider listing `cluster` makes from now on (appended as they happen)."""
    provider = cluster._ctx.provider
    listings: list[dict[str, str]] = []
    real_list = provider.list_nodes

    def counted(tags: Any) -> Any:
        listings.append(dict(tags))
        return real_list(tags)

    monkeypatch.setattr(provider, "list_nodes", counted)
    return listings


def test_head_commands_use_the_remembered_head_and_find_a_replaced_one(
    cloudtik_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """exec/upload/download/submit/attach on the head go to the head this machine last saw (no cloud call);
    when that head is gone, one listing finds the new one; a head that cannot be reached and is still
    the one the cloud lists fails once, with the reason (not tried twice)."""
    cluster = Cluster(small("remember", workers=0)).up()
    provider = cluster._ctx.provider
    real_list = provider.list_nodes
    listings = count_listings(cluster, monkeypatch)
    assert cluster.exec("echo ok", check=True)[0].stdout == "ok\n"
    (tmp_path / "in.txt").write_text("42")
    cluster.upload(tmp_path / "in.txt", "in.txt")
    cluster.download("in.txt", tmp_path / "back.txt")
    assert (tmp_path / "back.txt").read_text() == "42"
    assert cluster.attach(command="exit 3") == 3
    assert listings == [], "a command on the remembered head listed the cloud"

    # The head dies and another process brings up a new one; this object still remembers the old head.
    (old_head,) = cluster.status().nodes
    provider.terminate_nodes([old_head.node_id])
    Cluster("remember").up()
    (result,) = cluster.exec("echo $CLOUDTIK_NODE_ID", check=True)
    new_head = result.stdout.strip()
    assert new_head != old_head.node_id and len(listings) == 1
    assert cluster.exec("true")[0].exit_status == 0 and len(listings) == 1  # remembered again

    # Unreachable, and still what the cloud lists (a listing that lags): one failure, no second attempt.
    (head,) = real_list({T.CLUSTER: "remember"})
    provider.terminate_nodes([head.node_id])  # its address refuses connections now

    def lagging(tags: Any) -> Any:
        listings.append(dict(tags))
        return [head]

    monkeypatch.setattr(provider, "list_nodes", lagging)
    cluster.close()
    with pytest.raises(CannotConnect):
        cluster.exec("true")
    assert len(listings) == 2
    assert Cluster("remember").down() == 0  # nothing left to terminate; the record goes


def test_info_and_head_ip_read_the_heads_store_not_the_cloud(
    cloudtik_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`info`, `head-ip` and `worker-ips` read what `status` reads: the head's store (no cloud listing);
    the provider only once the head no longer answers, and then they say what it says."""
    cluster = Cluster(small("addresses", workers=2)).up()
    provider = cluster._ctx.provider
    listed = provider.list_nodes({T.CLUSTER: "addresses"})
    head = next(n for n in listed if n.kind == T.KIND_HEAD)
    workers = sorted(n.address.internal_ip for n in listed if n.kind == T.KIND_WORKER)
    listings = count_listings(cluster, monkeypatch)
    info = cluster.info()
    assert info.head_ip == (head.address.external_ip or head.address.internal_ip)
    assert sorted(info.worker_ips) == sorted(cluster.worker_ips()) == workers
    assert cluster.head_ip() == info.head_ip
    assert listings == [], "info / head-ip / worker-ips listed the cloud"

    provider.terminate_nodes([head.node_id])  # the head's machine is gone: its store cannot answer
    cluster.close()
    info = cluster.info()
    assert info.head_ip is None and sorted(info.worker_ips) == workers  # what the cloud still has
    assert listings, "a head that does not answer must be looked up"
    with pytest.raises(CloudtikError, match="has no head node"):
        cluster.head_ip()
    assert Cluster("addresses").down() == 2


def test_cli_end_to_end(cloudtik_home: Path) -> None:
    up = cli(cloudtik_home, "up", "examples/virtual-small.yaml", "--yes")
    assert up.returncode == 0, up.stderr
    assert "up-to-date" in up.stdout
    ran = cli(cloudtik_home, "exec", "small", "echo $CLOUDTIK_NODE_KIND", "--all-nodes")
    assert ran.returncode == 0, ran.stderr
    lines = sorted(line.split("] ", 1)[1] for line in ran.stdout.splitlines())
    assert lines == ["head", "worker", "worker"]
    assert cli(cloudtik_home, "exec", "small", "exit 5").returncode == 5
    status = cli(cloudtik_home, "status", "small")
    assert status.returncode == 0 and status.stdout.count("up-to-date") == 3
    head_ip = cli(cloudtik_home, "head-ip", "small").stdout.strip()
    workers = cli(cloudtik_home, "worker-ips", "small").stdout.split()
    assert head_ip.startswith("127.") and len(workers) == 2 and head_ip not in workers
    assert "small\tvirtual" in cli(cloudtik_home, "list").stdout
    down = cli(cloudtik_home, "down", "small", "--yes")
    assert down.returncode == 0, down.stderr
    assert cli(cloudtik_home, "list").stdout.strip() == "no clusters"


def test_upload_download(cloudtik_home: Path, tmp_path: Path) -> None:
    cluster = Cluster(small("files", workers=1)).up()
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_text("alpha")
    cluster.upload(src, "~/copied", all_nodes=True)
    results = cluster.exec("cat ~/copied/sub/a.txt", all_nodes=True, check=True)
    assert [r.stdout for r in results] == ["alpha", "alpha"]
    cluster.exec("echo beta > ~/copied/b.txt", node="2", check=True)
    cluster.download("~/copied", tmp_path / "back", node="2")
    assert (tmp_path / "back" / "b.txt").read_text() == "beta\n"
    assert (tmp_path / "back" / "sub" / "a.txt").read_text() == "alpha"
    cluster.down()


def test_cli_attach_opens_a_shell_in_a_pty(cloudtik_home: Path) -> None:
    import pty
    import select

    Cluster(small("shell", workers=0)).up()
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    env = {**os.environ, "CLOUDTIK_HOME": str(cloudtik_home), "PATH": path, "TERM": "dumb"}
    parent, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloudtik_jupyter.cli", "attach", "shell"],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env,
        start_new_session=True,
    )
    os.close(child)
    output = b""
    try:
        os.write(parent, b"echo kind=$CLOUDTIK_NODE_KIND tty=$(tty | cut -c1-8); exit 7\n")

        def read_some() -> bool:
            nonlocal output
            ready, _, _ = select.select([parent], [], [], 0.05)
            if ready:
                try:
                    output += os.read(parent, 4096)
                except OSError:  # the pty closed: attach ended
                    return True
            return proc.poll() is not None

        wait_for_sync(read_some, timeout=60, what="the attached shell to exit")
        assert proc.wait(timeout=30) == 7
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(parent)
    text = output.decode(errors="replace")
    assert "kind=head" in text and "tty=/dev/pts" in text, text
    Cluster("shell").down()
