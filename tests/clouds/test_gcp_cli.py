"""`cloudtik workspace create/status/info/delete` and `cloudtik up/down` on the GCP fake, end to end up
to the SSH step."""

from __future__ import annotations

import time
from pathlib import Path

from fakes.endtoend import assert_launched, cli, cluster_config, launch_cluster, write_yaml
from fakes.envs import GcpEnv, gcp_fixture  # noqa: F401
from fakes.gcp import EXPECTED_GCP, counts, leaks

IMAGE = {"sourceImage": "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts"}


def test_workspace_commands(gcp: GcpEnv, tmp_path: Path) -> None:
    before = gcp.fake.inventory()
    config = write_yaml(tmp_path / "analytics.yaml", gcp.config_dict("analytics"))

    created = cli("workspace", "create", config, "--yes")
    assert created.returncode == 0, created.stderr
    assert "is ready" in created.stdout and "missing" not in created.stdout
    assert counts(gcp.fake.inventory()) == EXPECTED_GCP

    started = time.monotonic()
    status = cli("workspace", "status", "analytics")  # by name: the record from `create`
    print(f"cli workspace status against the GCP fake: {time.monotonic() - started:.2f}s")
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("present") == 14 and "missing" not in status.stdout
    info = cli("workspace", "info", "analytics")
    assert info.returncode == 0 and "head_service_account:" in info.stdout

    # A cluster's head publishes its services in the workspace's storage; `info` lists them; `down`
    # withdraws them, and the workspace then deletes without --force (the registry is not data).
    from cloudtik_jupyter.discovery import ClusterServices, DiscoveryScope, PublishedService, registry_for

    registry = registry_for(DiscoveryScope("analytics", gcp.provider_config()))
    tracking = PublishedService(name="mlflow-tracking", kind="mlflow-tracking", address="10.0.1.5", port=5000, protocol="http")
    registry.put(ClusterServices(workspace="analytics", cluster="lab", published_at=1.0, services=[tracking]))
    listed = cli("workspace", "info", "analytics")
    assert listed.returncode == 0, listed.stderr
    assert "lab           mlflow-tracking   mlflow-tracking   http://10.0.1.5:5000" in listed.stdout
    registry.delete("lab")

    deleted = cli("workspace", "delete", "analytics", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert leaks(before, gcp.fake.inventory()) == {}
    assert cli("workspace", "status", "analytics").returncode == 2  # forgotten


async def test_up_and_down_up_to_the_ssh_step(gcp: GcpEnv, tmp_path: Path) -> None:
    assert (
        cli(
            "workspace", "create", write_yaml(tmp_path / "ws.yaml", gcp.config_dict("analytics")), "--yes"
        ).returncode
        == 0
    )
    with_workspace = gcp.fake.inventory()
    config = cluster_config(gcp.provider_dict(), IMAGE, {**IMAGE, "machineType": "n2-highmem-8"})

    nodes, key = await launch_cluster(config)

    assert_launched(nodes, key)
    head = gcp.fake.compute.instances[("us-central1-a", nodes[0].node_id)]
    assert f"spark:{key}" in {i["key"]: i["value"] for i in head["metadata"]["items"]}["ssh-keys"]
    assert counts(gcp.fake.inventory())["instances"] == 3

    refused = cli("workspace", "delete", "analytics", "--yes")
    assert refused.returncode == 1 and "clusters: etl" in refused.stderr

    down = cli("down", "etl", "--yes")
    assert down.returncode == 0, down.stderr
    assert gcp.fake.inventory() == with_workspace  # instances and their disks: gone
    assert cli("workspace", "delete", "analytics", "--yes").returncode == 0
    assert counts(gcp.fake.inventory()) == {}
