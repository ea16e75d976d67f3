"""The Dask example notebook runs end to end in a real kernel: its own virtual Dask cluster, a dataframe
ETL on the workers, a table and a plot, and the cluster torn down."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from cloudtik_jupyter.api import Cluster

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "dask_etl_trips.ipynb"


def test_dask_notebook_runs(cloudtik_home: Path, tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env={**os.environ, "CLOUDTIK_HOME": str(cloudtik_home)}, cwd=str(tmp_path))
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook shows a plot"
    assert any("text/html" in o.get("data", {}) for o in outputs), "the notebook shows a result table"
    text = "".join(o.get("text", "") for o in outputs)
    assert "2,000,000 trips generated" in text
    assert Cluster.list() == [], "the notebook tears its cluster down"
