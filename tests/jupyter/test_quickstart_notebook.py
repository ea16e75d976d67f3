"""notebooks/quickstart.ipynb runs end to end in a real kernel (nbclient + ipykernel), and is saved clean."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from tests.jupyter.helpers import node_records

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"
# Outputs must not carry a machine's paths or a traceback into the repository.
UNCLEAN = re.compile(r"Traceback|Error|/tmp/|/home/|/root/|/Users/")


def outputs_text(cell: Any) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts += [str(v) for k, v in out.get("data", {}).items() if k.startswith("text/")]
        parts += out.get("traceback", [])
    return "\n".join(parts)


def test_saved_notebook_outputs_are_clean() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert all(out.output_type != "error" for out in cell.outputs), cell.source
        assert not UNCLEAN.search(outputs_text(cell)), f"unclean output in: {cell.source}"


@pytest.mark.integration
def test_quickstart_runs_in_a_real_kernel(cloudtik_home: Path, tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = {**os.environ, "CLOUDTIK_HOME": str(cloudtik_home)}  # the kernel's state dir: this test's
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=env, cwd=str(tmp_path))  # raises CellExecutionError on the first failing cell

    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    for cell in code:
        assert cell.execution_count is not None
        assert all(out.output_type != "error" for out in cell.outputs), outputs_text(cell)
        assert not any(out.get("name") == "stderr" for out in cell.outputs), outputs_text(cell)
    by_source = {cell.source.splitlines()[0]: cell for cell in code}
    up = outputs_text(by_source["%%cloudtik up"])
    assert "up quickstart: done in" in up
    hello = outputs_text(
        by_source['%cloudtik exec quickstart --all-nodes echo "hello from $$CLOUDTIK_NODE_IP"']
    )
    assert len(re.findall(r"\[vn-[0-9a-f]+\] hello from 127\.", hello)) == 3
    view = by_source["%cloudtik status quickstart"].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in view
    assert "workers: 3 ready of 3" in outputs_text(by_source["%cloudtik scale quickstart 3"])
    assert outputs_text(by_source["%cloudtik down quickstart"]).strip().endswith("4")
    assert node_records(cloudtik_home, "quickstart") == []
