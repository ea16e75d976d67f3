"""A consumer's node works its runtime services out again as the services it consumes move."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cloudtik_jupyter.config import load_config
from cloudtik_jupyter.discovery.registry import publish, withdraw
from cloudtik_jupyter.errors import CloudtikError
from cloudtik_jupyter.node.config import AgentConfig, RuntimeNode
from cloudtik_jupyter.node.rediscover import changed, runtime_specs
from cloudtik_jupyter.node.start import consumes


def config(name: str, mlflow: dict[str, object]) -> dict[str, object]:
    return {
        "from": "virtual-small",
        "cluster_name": name,
        "available_node_types": {"worker": {"min_workers": 1, "resources": {"CPU": 1, "memory": 2**30}}},
        "runtime": {"types": ["dask", "mlflow"], "mlflow": mlflow},
        "head": {"discovery_interval": 0.5},
    }


@pytest.fixture
def worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AgentConfig:
    monkeypatch.setenv("CLOUDTIK_HOME", str(tmp_path / "home"))
    state = tmp_path / "node"
    state.mkdir()
    (state / "cluster.yaml").write_text(yaml.safe_dump(config("trainer", {"from_cluster": "tracking"})))
    node = RuntimeNode(cluster_config=state / "cluster.yaml", head_ip="127.60.0.1", runtime_dir=state / "runtime")
    return AgentConfig(
        node_id="w1", node_type="worker", kind="worker", address="127.60.0.2", run_dir=state / "agent",
        redis_endpoints_file=state / "endpoints.json", runtime_node=node,
    )  # fmt: skip


def uri(specs: list[object]) -> str:
    (dask,) = [s for s in specs if s.name == "dask-worker"]  # type: ignore[attr-defined]
    return str(dask.env["MLFLOW_TRACKING_URI"])  # type: ignore[attr-defined]


def test_a_moved_provider_changes_the_spec_of_the_services_that_carry_its_address(worker: AgentConfig) -> None:
    provider = load_config(config("tracking", {}))
    publish(provider, "127.61.0.1")
    first = runtime_specs(worker)
    assert uri(first) == "http://127.61.0.1:5000"
    running = {s.name: s for s in first}
    assert changed(running, runtime_specs(worker)) == []  # looked up again, nothing moved: nothing restarts

    publish(provider, "127.61.0.9")  # its head was replaced
    moved = changed(running, runtime_specs(worker))
    assert [s.name for s in moved] == ["dask-worker"] and uri(moved) == "http://127.61.0.9:5000"
    assert moved[0].argv == running["dask-worker"].argv  # the same service, only its environment changed

    withdraw(provider)  # down: nothing to follow; the agent keeps its services as they are
    with pytest.raises(CloudtikError, match="cluster 'tracking' publishes no services"):
        runtime_specs(worker)


def test_only_a_consumer_follows_other_clusters() -> None:
    assert consumes(load_config(config("trainer", {"from_cluster": "tracking"})))
    assert not consumes(load_config(config("tracking", {})))
    assert not changed({}, [])


@pytest.mark.parametrize("value", [0, -1, 1e9, "soon", None])
def test_a_bad_discovery_interval_names_its_key(value: object) -> None:
    from cloudtik_jupyter.errors import ConfigError

    bad = {**config("trainer", {"from_cluster": "tracking"}), "head": {"discovery_interval": value}}
    with pytest.raises(ConfigError, match=r"^head\.discovery_interval"):
        load_config(bad)
