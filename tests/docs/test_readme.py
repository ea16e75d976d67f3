"""The README works as written for a newcomer: its `bash` blocks, in order, in a fresh clone of this repository
with a fresh HOME and a PATH without our virtualenv (blocks marked `readme-test: skip` are not run).

Creating a virtualenv per run would take minutes, so `CLOUDTIK_VENV` points `scripts/bootstrap.sh` at the one
running these tests (documented in the README's Development section); everything else is what a newcomer
gets. Every node it starts is stopped at the end, even on failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.docs.readme import README, bash_blocks
from tests.virtual_nodes import teardown_virtual

ROOT = README.parent


def test_the_readme_marks_what_it_does_not_run() -> None:
    blocks = bash_blocks(README.read_text())
    skipped = [b for b in blocks if b.skip]
    assert [b.code.split()[1] for b in skipped if b.code.startswith("bash ")] == ["scripts/test.sh"]
    run = [b for b in blocks if not b.skip]
    assert "bash scripts/demo.sh" in run[0].code and "source .venv/bin/activate" in run[0].code
    assert any("cloudtik up" in b.code for b in run)


@pytest.mark.integration
def test_readme_shell_blocks_run_in_order_on_a_fresh_clone() -> None:
    base = Path(tempfile.mkdtemp(prefix="ctj-readme-"))  # short: node sockets live under HOME
    clone, home = base / "repo", base / "home"
    home.mkdir()
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    blocks = [b for b in bash_blocks((clone / "README.md").read_text()) if not b.skip]
    script = "set -euo pipefail\n" + "\n".join(f"# README line {b.line}\n{b.code}" for b in blocks)
    env = {
        "HOME": str(home),
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",  # no virtualenv on it, as for a newcomer
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "CLOUDTIK_VENV": sys.prefix,
    }
    try:
        done = subprocess.run(
            ["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=600
        )
        out = done.stdout + done.stderr
        assert done.returncode == 0, f"a README block failed (exit {done.returncode}):\n{out[-4000:]}"
        assert out.count("hello from") == 3  # demo.sh: exec on the head and both workers
        assert "source .venv/bin/activate" in out  # demo.sh says how to get `cloudtik` on PATH
        assert "workers ready 3 / desired 3" in out  # the quick start's scale, then status
        assert "command not found" not in out
        assert not list((home / ".cloudtik" / "clusters").glob("*/cluster.yaml")), "the blocks take it down"
    finally:
        teardown_virtual(home / ".cloudtik")
        shutil.rmtree(base, ignore_errors=True)
