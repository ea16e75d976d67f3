"""`cloudtik workspace create/status/info/delete` and `cloudtik up/down` on the Azure fake, end to end up
to the SSH step; and no cloud SDK is imported by the package or the CLI's startup."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fakes import azure_types as AT
from fakes.azure import EXPECTED_AZURE, counts, leaks
from fakes.endtoend import assert_launched, cli, cluster_config, launch_cluster, write_yaml
from fakes.envs import AzureEnv, azure_fixture  # noqa: F401

IMAGE = {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}}


def test_workspace_commands(azure: AzureEnv, tmp_path: Path) -> None:
    before = azure.fake.inventory()
    config = write_yaml(tmp_path / "analytics.yaml", azure.config_dict("analytics"))

    created = cli("workspace", "create", config, "--yes")
    assert created.returncode == 0, created.stderr
    assert "is ready" in created.stdout and "missing" not in created.stdout
    assert counts(azure.fake.inventory()) == EXPECTED_AZURE

    status = cli("workspace", "status", "analytics")  # by name: the record from `create`
    assert status.returncode == 0, status.stderr
    assert status.stdout.count("present") == 12 and "missing" not in status.stdout
    info = cli("workspace", "info", "analytics")
    assert info.returncode == 0 and "storage_account:" in info.stdout

    # A cluster's head publishes its services in the workspace's storage; `info` lists them; `down`
    # withdraws them, and the workspace then deletes without --force (the registry is not data).
    from cloudtik_jupyter.discovery import ClusterServices, DiscoveryScope, PublishedService, registry_for

    registry = registry_for(DiscoveryScope("analytics", azure.provider_config()))
    tracking = PublishedService(name="mlflow-tracking", kind="mlflow-tracking", address="10.0.1.5", port=5000, protocol="http")
    registry.put(ClusterServices(workspace="analytics", cluster="lab", published_at=1.0, services=[tracking]))
    listed = cli("workspace", "info", "analytics")
    assert listed.returncode == 0, listed.stderr
    assert "lab           mlflow-tracking   mlflow-tracking   http://10.0.1.5:5000" in listed.stdout
    registry.delete("lab")

    deleted = cli("workspace", "delete", "analytics", "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert leaks(before, azure.fake.inventory()) == {}
    assert cli("workspace", "status", "analytics").returncode == 2  # forgotten


async def test_up_and_down_up_to_the_ssh_step(azure: AzureEnv, tmp_path: Path) -> None:
    config_file = write_yaml(tmp_path / "ws.yaml", azure.config_dict("analytics"))
    assert cli("workspace", "create", config_file, "--yes").returncode == 0
    with_workspace = azure.fake.inventory()
    config = cluster_config(azure.provider_dict(), IMAGE, {**IMAGE, "vmSize": "Standard_E16s_v5"})

    nodes, key = await launch_cluster(config)

    assert_launched(nodes, key)
    (head,) = [r for r in azure.fake.of_type(AT.VM) if r.name == nodes[0].node_id]
    keys = head.props["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"]
    assert keys == [{"path": "/home/spark/.ssh/authorized_keys", "keyData": key}]
    assert counts(azure.fake.inventory())["virtual_machines"] == 3

    refused = cli("workspace", "delete", "analytics", "--yes")
    assert refused.returncode == 1 and "clusters: etl" in refused.stderr

    down = cli("down", "etl", "--yes")
    assert down.returncode == 0, down.stderr
    assert azure.fake.inventory() == with_workspace  # VMs, NICs, disks and the head's IP: gone
    assert cli("workspace", "delete", "analytics", "--yes").returncode == 0
    assert counts(azure.fake.inventory()) == {}


def test_importing_the_package_and_the_cli_imports_no_cloud_sdk() -> None:
    code = (
        "import sys, cloudtik_jupyter, cloudtik_jupyter.api.workspace, cloudtik_jupyter.cli, "
        "cloudtik_jupyter.providers, cloudtik_jupyter.config.workspace\n"
        "from cloudtik_jupyter.providers import provider_types\n"
        "assert {'gcp', 'azure'} <= set(provider_types())\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('google', 'googleapiclient', 'azure', 'boto3')]\n"
        "assert not loaded, loaded"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
