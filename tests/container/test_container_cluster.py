"""Virtual clusters in container mode, on a private Docker daemon: every node's commands, agent and
services run in its own container; a killed container is recovered; `down` leaves the daemon clean."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from cloudtik_jupyter.api import Cluster
from cloudtik_jupyter.container.spec import LABEL_CLUSTER, container_name
from cloudtik_jupyter.errors import CloudtikError
from cloudtik_jupyter.waiting import wait_for_sync
from tests.container.dockerd import PrivateDockerd

FAST = {"controller_interval": 0.5, "heartbeat_interval": 0.5, "heartbeat_timeout": 3.0}
PORT = 18765
# A test service: serves ~/data on the node's own address (host networking keeps it).
SERVE = (
    f'nohup python3 -m http.server --bind "$CLOUDTIK_NODE_IP" {PORT} --directory ~/data'
    " < /dev/null > ~/http.log 2>&1 &"
)
AGENT_PID = "cat ~/.cloudtik/node/agent/agent.pid"
IN_CONTAINER = "grep -q :/docker/ /proc/self/cgroup"
OUTSIDE_HOME = "/srv/cloudtik-container-test"  # a file mount outside the home: copied into the container


def config(name: str, image: str, *, workers: int = 2, docker: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "cluster_name": name,
        "provider": {"type": "virtual"},
        "head_node_type": "head",
        "available_node_types": {
            "head": {},
            "worker": {
                "min_workers": workers,
                "max_workers": 4,
                "resources": {"CPU": 1, "memory": 512 * 2**20},
            },
        },
        "head": FAST,
        "idle_timeout_minutes": 0,
        "docker": {"enabled": docker, "image": image, "pull_before_run": False, "host_environment": True},
        **extra,
    }


def container_id(dockerd: PrivateDockerd, cluster: str, node_id: str) -> str:
    return dockerd.docker(
        "container", "inspect", "-f", "{{.Id}}", container_name(cluster, node_id)
    ).stdout.strip()


def cgroup_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cgroup").read_text()


def listener_pid(ip: str, port: int) -> int | None:
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr == (ip, port) and conn.pid:
            return int(conn.pid)
    return None


def fetch(ip: str, path: str) -> bytes | None:
    try:
        with urllib.request.urlopen(f"http://{ip}:{PORT}/{path}", timeout=5) as response:
            return bytes(response.read())
    except OSError:
        return None


def down_and_check_clean(cluster: Cluster, dockerd: PrivateDockerd, nodes: int) -> None:
    name = cluster.name
    assert cluster.down() == nodes
    # Each container goes with its node (its keeper dies with the node's process tree).
    wait_for_sync(
        lambda: not dockerd.containers(f"label={LABEL_CLUSTER}={name}"),
        timeout=15,
        what=f"every container of {name} to be removed",
    )
    assert dockerd.containers() == []
    assert dockerd.docker("volume", "ls", "-q").stdout.split() == []


def test_nodes_run_in_their_containers(
    docker_home: Path,
    dockerd: PrivateDockerd,
    skeleton_image: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "input.txt").write_text("42\n")
    cluster = Cluster(
        config(
            "boxed",
            skeleton_image,
            file_mounts={"~/data": str(data), OUTSIDE_HOME: str(data)},
            # On the node itself, then in the container.
            initialization_commands=[
                f'! {IN_CONTAINER} && echo "$CLOUDTIK_NODE_ID" >> ~/initialized-on-host'
            ],
            setup_commands=[IN_CONTAINER],
            start_commands=[SERVE],
        )
    ).up()
    status = cluster.status()
    assert [n.kind for n in status.nodes] == ["head", "worker", "worker"]
    assert all(n.status == "up-to-date" for n in status.nodes)
    ids = {n.node_id: container_id(dockerd, "boxed", n.node_id) for n in status.nodes}
    assert len(set(ids.values())) == 3

    # `exec` runs in the node's own container: its cgroup is that container's.
    results = cluster.exec(
        f"cat /proc/self/cgroup; {IN_CONTAINER}; cat {OUTSIDE_HOME}/input.txt; cat ~/initialized-on-host",
        all_nodes=True,
        check=True,
    )
    for node, result in zip(status.nodes, results, strict=True):
        assert f"/docker/{ids[node.node_id]}" in result.stdout, result.stdout
        assert result.stdout.splitlines()[-2:] == ["42", node.node_id]
    assert not Path(OUTSIDE_HOME).exists()  # copied into the containers, not onto the machine

    # The test service and the node agent run in the container, the service on the node's address.
    for node in status.nodes:
        wait_for_sync(
            lambda n=node: fetch(n.internal_ip, "input.txt"),
            timeout=20,
            what=f"the service on {node.internal_ip}",
        )
        assert fetch(node.internal_ip, "input.txt") == b"42\n"
        pid = listener_pid(node.internal_ip, PORT)
        assert pid is not None and f"/docker/{ids[node.node_id]}" in cgroup_of(pid)
        (agent,) = cluster.exec(AGENT_PID, node=node.node_id, check=True)
        assert f"/docker/{ids[node.node_id]}" in cgroup_of(int(agent.stdout))
    wait_for_sync(
        lambda: all(n.heartbeat_age is not None and n.heartbeat_age < 3 for n in cluster.status().nodes),
        timeout=20,
        what="a fresh heartbeat from every node's agent",
    )

    # Limits from the node type's resources; the head's type has none.
    head, *workers = status.nodes
    limits = (
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.Init}} {{.HostConfig.NetworkMode}}"
    )
    for worker in workers:
        name = container_name("boxed", worker.node_id)
        assert dockerd.docker("inspect", "-f", limits, name).stdout.split() == [
            "536870912",
            "1000000000",
            "true",
            "host",
        ]
        (seen,) = cluster.exec(
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
            node=worker.node_id,
            check=True,
        )
        assert seen.stdout.strip() == str(512 * 2**20)
    assert dockerd.docker("inspect", "-f", limits, container_name("boxed", head.node_id)).stdout.split()[
        :2
    ] == ["0", "0"]

    # attach (no terminal here, so no pty), and copies outside the home, reach the container too.
    assert cluster.attach(node=workers[0].node_id, command=f"{IN_CONTAINER} && echo attached-inside") == 0
    assert "attached-inside" in capfd.readouterr().out
    cluster.upload(data / "input.txt", "/srv/uploaded/input.txt", all_nodes=True)
    cluster.download("/srv/uploaded/input.txt", tmp_path / "back.txt", node=workers[1].node_id)
    assert (tmp_path / "back.txt").read_text() == "42\n" and not Path("/srv/uploaded").exists()

    down_and_check_clean(cluster, dockerd, 3)


def test_killed_container_is_recovered(
    docker_home: Path, dockerd: PrivateDockerd, skeleton_image: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "ok").write_text("ok\n")
    cluster = Cluster(
        config(
            "phoenix", skeleton_image, workers=1, file_mounts={"~/data": str(data)}, start_commands=[SERVE]
        )
    ).up()
    (worker,) = cluster.status().workers
    before = container_id(dockerd, "phoenix", worker.node_id)
    dockerd.docker("kill", container_name("phoenix", worker.node_id))  # everything in it dies at once

    def recovered() -> str | None:
        now = dockerd.docker(
            "container", "inspect", "-f", "{{.Id}}", container_name("phoenix", worker.node_id), check=False
        )
        if now.returncode != 0 or now.stdout.strip() == before:
            return None
        (w,) = cluster.status().workers
        fresh = w.status == "up-to-date" and w.heartbeat_age is not None and w.heartbeat_age < 2
        return now.stdout.strip() if fresh and fetch(w.internal_ip, "ok") == b"ok\n" else None

    after = wait_for_sync(
        recovered, timeout=60, what="the killed container to be replaced and its node to recover"
    )
    (w,) = cluster.status().workers
    assert w.node_id == worker.node_id  # the node was recovered, not replaced
    assert dockerd.containers(f"id={before}") == []  # the dead container was removed
    events = [(e.kind, e.message) for e in cluster.status().events]
    assert any(kind == "node-recovering" and worker.node_id in message for kind, message in events), events
    pid = listener_pid(w.internal_ip, PORT)
    assert pid is not None and f"/docker/{after}" in cgroup_of(pid)
    down_and_check_clean(cluster, dockerd, 2)


def agents_of(node_id: str) -> list[psutil.Process]:
    """The node's agents (not their keepers: the parent each agent is forked from, same command line)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "environ", "ppid"]):
        env = proc.info["environ"] or {}
        if env.get("CLOUDTIK_NODE_ID") == node_id and "cloudtik_jupyter.node." in " ".join(
            proc.info["cmdline"] or ()
        ):
            found.append(proc)
    keepers = {p.info["ppid"] for p in found}
    return [p for p in found if p.pid not in keepers]


def test_switching_modes_is_one_key(docker_home: Path, dockerd: PrivateDockerd, skeleton_image: str) -> None:
    host = config("switch", skeleton_image, workers=0, docker=False)
    boxed = config("switch", skeleton_image, workers=0)
    cluster = Cluster(host).up()
    (head,) = cluster.status().nodes
    in_container = IN_CONTAINER
    assert cluster.exec(in_container)[0].exit_status == 1
    (agent,) = agents_of(head.node_id)
    assert "/docker/" not in cgroup_of(agent.pid)

    cluster = Cluster(boxed).up()  # the host's agent hands over to one started in the container
    assert cluster.exec(in_container)[0].exit_status == 0
    (agent,) = wait_for_sync(lambda: agents_of(head.node_id), timeout=10, what="the node agent")
    assert f"/docker/{container_id(dockerd, 'switch', head.node_id)}" in cgroup_of(agent.pid)
    assert cluster.status().nodes[0].node_id == head.node_id

    cluster = Cluster(host).up()  # and back: the container goes, the agent runs on the node again
    assert cluster.exec(in_container)[0].exit_status == 1
    assert dockerd.containers(f"label={LABEL_CLUSTER}=switch") == []
    (agent,) = agents_of(head.node_id)
    assert "/docker/" not in cgroup_of(agent.pid)
    (services,) = cluster.exec(
        "python3 -m cloudtik_jupyter.node.agent ctl ~/.cloudtik/node/agent status", check=True
    )
    assert {s[0]: s[2] for s in json.loads(services.stdout)["services"]}["controller"] == "running"
    down_and_check_clean(cluster, dockerd, 1)


def test_missing_local_image_is_a_clear_error(docker_home: Path, dockerd: PrivateDockerd) -> None:
    cluster = Cluster(config("noimage", "cloudtik-absent:nothing", workers=0))
    with pytest.raises(CloudtikError, match="image cloudtik-absent:nothing is not on this node"):
        cluster.up()
    (head,) = cluster.status().nodes
    assert head.status == "update-failed"
    down_and_check_clean(cluster, dockerd, 1)
