"""The analytics notebooks run end to end in a real kernel: each launches its own virtual Spark cluster,
runs its job on the workers, shows a table and a plot, and tears the cluster down."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from cloudtik_jupyter.api import Cluster

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("spark_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_analytics_notebook_runs(path: Path, cloudtik_home: Path, tmp_path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env={**os.environ, "CLOUDTIK_HOME": str(cloudtik_home)}, cwd=str(tmp_path))
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook shows a plot"
    assert any("text/html" in o.get("data", {}) for o in outputs), "the notebook shows a result table"
    assert Cluster.list() == [], "the notebook tears its cluster down"


def test_saved_notebooks_are_clean() -> None:
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not [o for o in cell.get("outputs", []) if o.get("output_type") == "error"], path.name
