"""The wheel carries the prebuilt side panel and the server extension's enable file: after `pip install`,
`jupyter labextension list` shows the panel enabled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_installs_an_enabled_labextension_and_server_extension(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("cloudtik_jupyter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = next(n.split("/")[0] for n in names if ".data/" in n)
    assert f"{data}/data/share/jupyter/labextensions/cloudtik-jupyter/package.json" in names
    assert f"{data}/data/etc/jupyter/jupyter_server_config.d/cloudtik_jupyter.json" in names
    # The Hive metastore's launcher is compiled from its source on each head (setup): it must ship.
    assert "cloudtik_jupyter/runtimes/spark/java/MetastoreLauncher.java" in names

    # What `pip install` does with the wheel's data files, without touching this environment (pip's
    # --prefix would uninstall the package under test from it).
    prefix = tmp_path / "prefix"
    with zipfile.ZipFile(wheel) as archive:
        for name in names:
            if name.startswith(f"{data}/data/") and not name.endswith("/"):
                target = prefix / name.removeprefix(f"{data}/data/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
    env = {
        **os.environ,
        "JUPYTER_PATH": str(prefix / "share" / "jupyter"),
        "JUPYTER_CONFIG_PATH": str(prefix / "etc" / "jupyter"),
    }
    bin_dir = Path(sys.executable).parent
    labext = subprocess.run(
        [str(bin_dir / "jupyter"), "labextension", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    listing = labext.stdout + labext.stderr
    line = next(line for line in listing.splitlines() if "cloudtik-jupyter" in line)
    assert "enabled" in line and "OK" in line, listing
    # The enable file the wheel installs turns the server extension on for every server in that prefix.
    enable = json.loads((prefix / "etc/jupyter/jupyter_server_config.d/cloudtik_jupyter.json").read_text())
    assert enable["ServerApp"]["jpserver_extensions"]["cloudtik_jupyter.server"] is True
    # jupyter-server-proxy is used as a library: its own /proxy/PORT/ (any local port, served as Jupyter's
    # origin) is switched off, in a file that sorts after the one that package installs.
    off = "jupyter_server_proxy_off_by_cloudtik.json"
    assert off > "jupyter-server-proxy.json"
    switched = json.loads((prefix / "etc/jupyter/jupyter_server_config.d" / off).read_text())
    assert switched["ServerApp"]["jpserver_extensions"]["jupyter_server_proxy"] is False
