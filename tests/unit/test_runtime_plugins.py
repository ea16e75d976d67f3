"""The Dask, MLflow and Ray plugins: what they ask the node agent to run, where it binds, what they link."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudtik_jupyter.config import load_config
from cloudtik_jupyter.records.node import NodeInfo
from cloudtik_jupyter.runtimes import enabled_runtimes, runtime_environment
from cloudtik_jupyter.runtimes.secret import ensure_secret


def cluster(types: list[str], **sections: dict[str, object]) -> object:
    return load_config(
        {
            "from": "virtual-small",
            "cluster_name": "c",
            "available_node_types": {
                "worker": {"min_workers": 2, "resources": {"CPU": 3, "memory": 3 * 2**30}}
            },
            "runtime": {"types": types, **sections},
        }
    )


def node(kind: str, tmp_path: Path, ip: str = "127.60.0.2") -> NodeInfo:
    resources = {"CPU": 3.0, "memory": float(3 * 2**30)} if kind == "worker" else {}
    secret = ensure_secret(tmp_path / "runtime_secret")
    return NodeInfo(
        "c", "n1", kind, kind, ip, "127.60.0.1", tmp_path / "runtime", resources, secret_file=secret
    )


def specs(types: list[str], kind: str, tmp_path: Path, **sections: dict[str, object]) -> dict[str, list[str]]:
    config = cluster(types, **sections)
    info = node(kind, tmp_path, "127.60.0.1" if kind == "head" else "127.60.0.2")
    return {s.name: s.argv for runtime, cfg in enabled_runtimes(config) for s in runtime.services(cfg, info)}  # type: ignore[arg-type]


def test_all_runtimes_combine_with_their_default_ports(tmp_path: Path) -> None:
    head = specs(["spark", "dask", "mlflow", "ray"], "head", tmp_path)
    assert set(head) == {"spark-master", "spark-history", "dask-scheduler", "mlflow-server", "ray-head"}
    worker = specs(["spark", "dask", "mlflow", "ray"], "worker", tmp_path)
    assert set(worker) == {"spark-worker", "dask-worker", "ray-worker"}


def test_daemons_bind_the_node_address_and_take_its_resources(tmp_path: Path) -> None:
    head = specs(["dask", "mlflow", "ray"], "head", tmp_path)
    worker = specs(["dask", "ray"], "worker", tmp_path)
    scheduler = head["dask-scheduler"]
    assert scheduler[scheduler.index("--host") + 1] == "127.60.0.1"
    assert "127.60.0.1:8787" in scheduler
    dask = worker["dask-worker"]
    assert dask[dask.index("--host") + 1] == "127.60.0.2"
    assert "127.60.0.2:0" in dask  # its own http server, off the wildcard
    assert dask[dask.index("--nthreads") + 1] == "3" and dask[dask.index("--memory-limit") + 1] == "3072MiB"
    assert "tcp://127.60.0.1:8786" in dask
    mlflow = head["mlflow-server"]
    assert mlflow[mlflow.index("--host") + 1] == "127.60.0.1"
    assert mlflow[mlflow.index("--backend-store-uri") + 1].startswith("sqlite:///")
    assert mlflow[mlflow.index("--artifacts-destination") + 1] == str(
        tmp_path / "runtime" / "mlflow" / "artifacts"
    )
    ray_head, ray_worker = head["ray-head"], worker["ray-worker"]
    assert ray_head[ray_head.index("--node-ip-address") + 1] == "127.60.0.1"
    assert ray_head[ray_head.index("--dashboard-host") + 1] == "127.60.0.1"
    assert ray_head[ray_head.index("--num-cpus") + 1] == "0" and "--block" in ray_head
    assert ray_worker[ray_worker.index("--address") + 1] == "127.60.0.1:6379"
    assert ray_worker[ray_worker.index("--num-cpus") + 1] == "3"
    assert ray_worker[ray_worker.index("--memory") + 1] == str(3 * 2**30)
    # A raylet's own ports stay random unless configured: Ray binds them on every interface, and nodes of
    # `virtual` share one machine.
    assert "--node-manager-port" not in ray_worker and "--object-manager-port" not in ray_worker


def test_overrides_win_over_node_resources(tmp_path: Path) -> None:
    worker = specs(
        ["dask", "ray"],
        "worker",
        tmp_path,
        dask={"worker_threads": 1, "worker_memory": "512m"},
        ray={"worker_cpus": 2},
    )
    assert worker["dask-worker"][worker["dask-worker"].index("--nthreads") + 1] == "1"
    assert "512MiB" in worker["dask-worker"]
    assert worker["ray-worker"][worker["ray-worker"].index("--num-cpus") + 1] == "2"


def test_every_service_and_job_gets_the_tracking_uri(tmp_path: Path) -> None:
    config = cluster(["dask", "mlflow"])
    env = runtime_environment(config, "127.60.0.1")  # type: ignore[arg-type]
    assert env["MLFLOW_TRACKING_URI"] == "http://127.60.0.1:5000"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_links(tmp_path: Path) -> None:
    config = cluster(["dask", "mlflow", "ray"])
    links = {
        link.name: link
        for runtime, cfg in enabled_runtimes(config)
        for link in runtime.links(cfg, "10.0.0.5")
    }  # type: ignore[arg-type]
    assert links["Dask dashboard"].kind == "web" and links["Dask scheduler"].url == "tcp://10.0.0.5:8786"
    assert links["MLflow UI"].url == "http://10.0.0.5:5000"
    assert links["Ray client"].url == "ray://10.0.0.5:10001" and links["Ray dashboard"].kind == "web"


def test_consumer_runs_no_server_and_its_uri_comes_from_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloudtik_jupyter.errors import CloudtikError

    monkeypatch.setenv("CLOUDTIK_HOME", str(tmp_path))
    config = cluster(["mlflow"], mlflow={"from_cluster": "tracking"})
    assert specs(["mlflow"], "head", tmp_path, mlflow={"from_cluster": "tracking"}) == {}
    with pytest.raises(
        CloudtikError, match=r"runtime\.mlflow\.from_cluster: cluster 'tracking' publishes no services"
    ):
        runtime_environment(config, "127.60.0.1")  # type: ignore[arg-type]
    from cloudtik_jupyter.discovery.registry import publish

    publish(cluster(["mlflow"]).model_copy(update={"cluster_name": "tracking"}), "127.61.0.1")  # type: ignore[attr-defined]
    assert runtime_environment(config, "127.60.0.1")["MLFLOW_TRACKING_URI"] == "http://127.61.0.1:5000"  # type: ignore[arg-type]


def test_the_proxy_may_reach_each_runtimes_web_ui_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloudtik_jupyter.server.links import declared_ports

    ports = declared_ports(cluster(["dask", "mlflow", "ray"]))  # type: ignore[arg-type]
    assert ports.head == {8787, 5000, 8265} and ports.worker == set()
    # A consumer of another cluster's MLflow declares nothing of its own (that UI is the provider's).
    monkeypatch.setenv("CLOUDTIK_HOME", str(tmp_path))
    from cloudtik_jupyter.discovery.registry import publish

    publish(cluster(["mlflow"]).model_copy(update={"cluster_name": "tracking"}), "127.61.0.1")  # type: ignore[attr-defined]
    assert declared_ports(cluster(["mlflow"], mlflow={"from_cluster": "tracking"})).head == set()  # type: ignore[arg-type]


def test_ray_processes_never_restart_grpc_in_a_forked_child(tmp_path: Path) -> None:
    """The head's client server forks one server per Ray Client connection while gRPC runs; with gRPC's
    fork handlers on, that child crashed before exec on a loaded machine and `ray.init("ray://...")` failed."""
    config = cluster(["ray"])
    for kind in ("head", "worker"):
        info = node(kind, tmp_path)
        (service,) = [s for runtime, cfg in enabled_runtimes(config) for s in runtime.services(cfg, info)]  # type: ignore[arg-type]
        assert service.env["GRPC_ENABLE_FORK_SUPPORT"] == "0"
