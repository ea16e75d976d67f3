"""The real `cloudtik` CLI as a separate process, as a user runs it (tests that go through the terminal)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`cloudtik ARGS` with CLOUDTIK_HOME=`home`, this interpreter's scripts first on PATH; output captured."""
    env = {
        **os.environ,
        "CLOUDTIK_HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    return subprocess.run(
        [sys.executable, "-m", "cloudtik_jupyter.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )
