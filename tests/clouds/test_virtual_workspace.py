"""The virtual workspace: an address block, a state dir and keys under the state dir; no processes."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest

from cloudtik_jupyter import paths
from cloudtik_jupyter.api.workspace import Workspace
from cloudtik_jupyter.config.schema import VirtualProviderConfig
from cloudtik_jupyter.errors import CloudtikError, ConfigError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLOUDTIK_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_status_delete(home: Path) -> None:
    ws = Workspace({"workspace_name": "lab"})
    assert not any(r.present for r in ws.status().resources)

    ws.create()

    status = ws.status()
    assert status.ready and {r.name for r in status.resources} == {"state-dir", "address-block", "ssh-key"}
    root = paths.workspaces_dir() / "lab"
    assert root.is_relative_to(home) and _mode(root) == 0o700
    assert _mode(root / "id_ed25519") == 0o600
    assert (root / "id_ed25519.pub").read_text().startswith("ssh-ed25519 ")
    info = ws.info()
    block = ipaddress.IPv4Network(info["address_block"])
    assert block.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")) and block.prefixlen == 16
    assert not block.overlaps(ipaddress.ip_network("127.0.0.0/16"))  # 127.0.0.1 stays the host's
    assert [w.name for w in Workspace.list()] == ["lab"]
    assert Workspace("lab").config == ws.config  # known by name from now on

    key = (root / "id_ed25519").read_bytes()
    ws.create()  # converges: same block, same key
    assert ws.info()["address_block"] == info["address_block"] and (root / "id_ed25519").read_bytes() == key

    Workspace("lab").delete()

    assert not root.exists()
    assert Workspace.list() == []
    with pytest.raises(ConfigError, match="no workspace named 'lab'"):
        Workspace("lab")


def test_workspaces_get_distinct_blocks_or_the_configured_one(home: Path) -> None:
    blocks = set()
    for name in ("a", "b", "c"):
        blocks.add(Workspace({"workspace_name": name}).create().info()["address_block"])
    assert len(blocks) == 3
    chosen = Workspace(
        {"workspace_name": "d", "provider": {"type": "virtual", "address_block": "127.77.0.0/16"}}
    )
    assert chosen.create().info()["address_block"] == "127.77.0.0/16"
    with pytest.raises(ConfigError) as err:
        Workspace(
            {"workspace_name": "e", "provider": {"type": "virtual", "address_block": "10.0.0.0/16"}}
        ).create()
    assert err.value.path == "provider.address_block"
    assert not (paths.workspaces_dir() / "e").exists()  # bad input leaves nothing, not even a record


def test_default_workspace_needs_no_config(home: Path) -> None:
    from cloudtik_jupyter.providers.virtual.addresses import default_address_block
    from cloudtik_jupyter.providers.virtual.workspace import workspace_address_block

    ws = Workspace("default").create()
    assert ws.status().ready and ws.config.provider.type == "virtual"
    # The same block clusters use when they name none.
    assert (
        workspace_address_block("default") == str(default_address_block(home)) == ws.info()["address_block"]
    )
    ws.delete()


def test_delete_refuses_while_a_cluster_on_this_machine_uses_it(home: Path) -> None:
    Workspace({"workspace_name": "lab"}).create()
    record = paths.cluster_dir("etl") / "cluster.yaml"
    paths.write_private(record, "cluster_name: etl\nworkspace_name: lab\nhead_node_type: h\n")
    with pytest.raises(CloudtikError, match="still has clusters: etl"):
        Workspace("lab").delete()
    assert Workspace("lab").status().ready


async def test_async_twins(home: Path) -> None:
    ws = Workspace({"workspace_name": "lab"})
    await ws.create_async()
    assert (await ws.status_async()).ready
    assert (await ws.info_async())["provider"] == "virtual"
    await ws.delete_async()
    assert not (await ws.status_async()).ready


def test_clusters_of_a_workspace_take_its_address_block(home: Path) -> None:
    from cloudtik_jupyter.providers.virtual.addresses import default_address_block
    from cloudtik_jupyter.providers.virtual.node_provider import VirtualNodeProvider

    block = Workspace({"workspace_name": "lab"}).create().info()["address_block"]
    joined = VirtualNodeProvider(None, "etl", workspace_name="lab", home=home)
    assert str(joined.address_block) == block != str(default_address_block(home))
    own = VirtualNodeProvider(
        VirtualProviderConfig(address_block="127.99.0.0/16"), "etl", workspace_name="lab", home=home
    )
    assert str(own.address_block) == "127.99.0.0/16"  # a cluster's own block wins
    elsewhere = VirtualNodeProvider(None, "etl", workspace_name="never-created", home=home)
    assert elsewhere.address_block == default_address_block(home)
