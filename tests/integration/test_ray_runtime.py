"""Ray through the whole product, on ONE pair of clusters shared by this module (Ray is heavy on 2 cores):
`tracking` (an MLflow server) and `ray-search` (Ray head + 2 workers, MLflow consumed from `tracking`).

The last test executes the Ray example notebook against the same clusters (its `up` finds them up to date)
and the notebook tears both down.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from cloudtik_jupyter import paths
from cloudtik_jupyter.api import Cluster
from cloudtik_jupyter.providers.virtual import state
from cloudtik_jupyter.waiting import wait_for_sync
from tests.cli_process import cli as run_cli
from tests.virtual_nodes import teardown_virtual

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "ray_search_mlflow.ipynb"
# The same configs as the notebook's, so its `up` has nothing to do.
FAST = {"controller_interval": 1.0, "heartbeat_timeout": 10.0}
TRACKING = {
    "from": "virtual-small",
    "cluster_name": "tracking",
    "available_node_types": {"worker": {"min_workers": 0}},
    "runtime": {"types": ["mlflow"]},
    "head": FAST,
}
SEARCH = {
    "from": "virtual-small",
    "cluster_name": "ray-search",
    "available_node_types": {"worker": {"min_workers": 2, "resources": {"CPU": 1}}},
    "runtime": {"types": ["ray", "mlflow"], "mlflow": {"from_cluster": "tracking"}},
    "head": FAST,
}
QUIET = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "RAY_USAGE_STATS_ENABLED": "0"}

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]  # Ray starts slowly on 2 cores


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("ray") / "home"
    paths.ensure_private_dir(home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLOUDTIK_HOME", str(home))
        mp.setenv("CLOUDTIK_VIRTUAL_IDLE_EXIT", "600")
        for key, value in QUIET.items():
            mp.setenv(key, value)
        try:
            yield home
        finally:
            teardown_virtual(home)


@pytest.fixture(scope="module")
def clusters(home: Path) -> Iterator[tuple[Cluster, Cluster]]:
    tracking = Cluster(TRACKING).up()
    search = Cluster(SEARCH)
    try:
        search.up()
        info = search.info()
        # Every node's raylet has registered (on a loaded machine Ray may restart a node once first).
        wait_for_sync(
            lambda: set(alive_ray_nodes(search)) == {info.head_ip, *info.worker_ips},
            timeout=480,  # a raylet that misses Ray's 30 s registration window is restarted by its agent
            what="3 alive Ray nodes",
            interval=0.5,
            max_interval=2.0,
        )
        yield tracking, search
    finally:
        for cluster in (search, tracking):
            if Cluster.list() and cluster.name in {c.name for c in Cluster.list()}:
                cluster.down()


def cli(home: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return run_cli(home, *args, timeout=timeout)  # Ray's first start on a loaded machine is slow


def alive_ray_nodes(search: Cluster) -> dict[str, str]:
    """Address -> Ray node id of the alive Ray nodes, from the dashboard's state API (cheap: no driver)."""
    dashboard = next(link.url for link in search.info().links if link.name == "Ray dashboard")
    try:
        with urllib.request.urlopen(f"{dashboard}/api/v0/nodes", timeout=10) as r:
            nodes = json.load(r)["data"]["result"]["result"]
    except (OSError, ValueError, KeyError):
        return {}
    return {n["node_ip"]: n["node_id"] for n in nodes if n["state"] == "ALIVE"}


def mlflow_runs(uri: str) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(experiments)) if experiments else []


def test_ray_links_and_cli_submit_with_runs_landing_on_the_tracking_cluster(
    clusters: tuple[Cluster, Cluster], home: Path, tmp_path: Path
) -> None:
    tracking, search = clusters
    info = search.info()
    links = {link.name: link.url for link in info.links}
    assert search.ray_address() == links["Ray client"] == f"ray://{info.head_ip}:10001"
    assert links["Ray dashboard"] == f"http://{info.head_ip}:8265"
    assert search.mlflow_tracking_uri() == tracking.mlflow_tracking_uri()

    job = tmp_path / "ray_job.py"
    job.write_text(
        "import os, ray\n"
        "ray.init()  # RAY_ADDRESS, set by cloudtik submit\n"
        "@ray.remote\n"
        "def trial(x):\n"
        "    import mlflow, os\n"
        "    with mlflow.start_run(run_name=f'ray-{x}'):\n"
        "        mlflow.log_param('node', os.environ['CLOUDTIK_NODE_IP'])\n"
        "    return os.environ['CLOUDTIK_NODE_IP']\n"
        "print('RAN ON', sorted(set(ray.get([trial.remote(i) for i in range(4)]))))\n"
        "print('NODES', sum(1 for n in ray.nodes() if n['Alive']))\n"
    )
    result = cli(home, "submit", "--runtime", "ray", "ray-search", str(job))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "NODES 3" in result.stdout
    assert set(alive_ray_nodes(search)) == {info.head_ip, *info.worker_ips}
    runs = [r for r in mlflow_runs(tracking.mlflow_tracking_uri()) if r.info.run_name.startswith("ray-")]
    assert len(runs) == 4 and {r.data.params["node"] for r in runs} <= set(info.worker_ips)


def test_killed_ray_worker_is_restarted_by_the_agent_and_rejoins(
    clusters: tuple[Cluster, Cluster], home: Path
) -> None:
    _, search = clusters
    worker = search.status().workers[0]
    ray_node = alive_ray_nodes(search)[worker.internal_ip]
    (reply,) = search.exec(
        "python3 -m cloudtik_jupyter.node.agent ctl ~/.cloudtik/node/agent status",
        node=worker.node_id,
        check=True,
    )
    pid = next(s[1] for s in json.loads(reply.stdout)["services"] if s[0] == "ray-worker")
    os.kill(pid, signal.SIGKILL)  # `ray start --block` itself: its raylet goes with its process group

    def back() -> bool:
        (r,) = search.exec(
            "python3 -m cloudtik_jupyter.node.agent ctl ~/.cloudtik/node/agent status", node=worker.node_id
        )
        services = {s[0]: s for s in json.loads(r.stdout)["services"]} if r.exit_status == 0 else {}
        row = services.get("ray-worker")
        return bool(row) and row[2] == "running" and row[1] != pid

    wait_for_sync(back, timeout=240, what="the agent to restart the Ray worker")
    # A new Ray node (new id) on the same worker joins the cluster.
    wait_for_sync(
        lambda: alive_ray_nodes(search).get(worker.internal_ip) not in (None, ray_node),
        timeout=240,
        what="the restarted Ray worker to rejoin",
    )


def test_ray_notebook_runs_on_the_shared_clusters(
    clusters: tuple[Cluster, Cluster], home: Path, tmp_path: Path
) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    scratch = [state.scratch_dir(n.node_id) for c in clusters for n in c.status().nodes]
    ray_nodes = [
        state.scratch_dir(n.node_id)
        for c in clusters
        if "ray" in c.config.runtime.types
        for n in c.status().nodes
    ]
    assert ray_nodes and all((d / "ray").is_dir() for d in ray_nodes), (
        "Ray's sessions: in the nodes' scratch dirs"
    )
    try:
        client.execute(env={**os.environ, "CLOUDTIK_HOME": str(home)}, cwd=str(tmp_path))
    except Exception as e:  # Ray's reason for a failed client server lives in its logs on the head
        found = Path(tempfile.gettempdir()).glob(
            "cloudtik-*-vn-*/ray/session_latest/logs/ray_client_server*.err"
        )
        logs = "\n".join(f"{p}:\n{p.read_text()[-3000:]}" for p in found)
        raise AssertionError(f"{str(e)[-3000:]}\n--- Ray client server logs ---\n{logs}") from e
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook shows a plot"
    assert any("text/html" in o.get("data", {}) for o in outputs), "the notebook shows a result table"
    assert Cluster.list() == [], "the notebook tears both clusters down"
    assert not [d for d in scratch if d.exists()], "Ray's sessions went with their nodes"
