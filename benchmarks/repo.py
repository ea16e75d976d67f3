"""Benchmarks share the tests' helpers (tests/virtual_nodes.py, tests/container/dockerd.py): importing this
puts the repository's root on sys.path (a benchmark runs as `python benchmarks/NAME.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
