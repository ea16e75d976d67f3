"""The ground floor (cloudtik_jupyter/records/): records every part shares, importing nothing of the
package; and the names they define are spelled nowhere else."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "cloudtik_jupyter"
FLOOR = PACKAGE / "records"


def test_the_ground_floor_imports_nothing_of_the_package() -> None:
    for path in FLOOR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f"{path.name} imports from above the ground floor: {ast.unparse(node)}"
                assert not (node.module or "").startswith("cloudtik_jupyter"), ast.unparse(node)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("cloudtik_jupyter") for a in node.names), ast.unparse(node)
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, cloudtik_jupyter.records.cluster, cloudtik_jupyter.records.layout, "
            "cloudtik_jupyter.records.node_env; "
            "print(sorted(m for m in sys.modules if m.startswith('cloudtik_jupyter.') and '.records' not in m))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "[]", f"importing the ground floor loads {loaded}"


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_the_on_node_layout_and_node_environment_are_spelled_once() -> None:
    """A file name of the node's state dir or a CLOUDTIK_* variable written out as a literal elsewhere
    would drift from the one definition."""
    from cloudtik_jupyter.records import layout, node_env

    names = {
        v
        for module in (layout, node_env)
        for k, v in vars(module).items()
        if k.isupper() and isinstance(v, str) and (module is node_env or "." in v or v.startswith("~"))
    }
    assert {"cluster.yaml", "endpoints.json", "CLOUDTIK_NODE_ID", "~/.cloudtik/node"} <= names
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(names & _string_constants(path))
        for path in PACKAGE.rglob("*.py")
        if FLOOR not in path.parents
    }
    assert not {p: n for p, n in offenders.items() if n}, offenders
