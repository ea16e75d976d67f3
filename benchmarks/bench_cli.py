"""How fast the `cloudtik` command starts: the entry point imports click and the command grammar only,
and a command's own modules when it runs (issue 15 brings a session daemon for a 0.15 s CLI).

1. `import cloudtik_jupyter.cli` in a fresh interpreter (and which heavy modules it pulled in);
2. whole processes: `cloudtik --help`, a usage error, `cloudtik list` (loads the API), `cloudtik status`
   of an unknown cluster;
3. the grammar alone (what a thin, standard-library client would import).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 7
CLOUDTIK = str(Path(sys.executable).parent / "cloudtik")
HEAVY = ("cloudtik_jupyter.api", "asyncssh", "rich", "yaml", "pydantic", "redis", "IPython")


def seconds(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, timeout=120)
    return time.perf_counter() - started


def row(label: str, values: list[float], target: float | None = None) -> None:
    med = statistics.median(values)
    verdict = f"  (issue 15 target {target:g} s: {'ok' if med <= target else 'not yet'})" if target else ""
    print(
        f"{label:<44} median {med * 1000:7.1f} ms  min {min(values) * 1000:7.1f} ms  (n={len(values)}){verdict}"
    )


def main() -> None:
    home = tempfile.mkdtemp(prefix="ctj-bench-cli-")
    env = {**os.environ, "CLOUDTIK_HOME": home}
    print(f"cloudtik_jupyter bench_cli on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    probe = (
        "import sys, time; t = time.perf_counter(); import cloudtik_jupyter.cli; took = time.perf_counter() - t; "
        f"print(took, *[m for m in {HEAVY!r} if m in sys.modules])"
    )
    imports, heavy = [], set()
    for _ in range(RUNS):
        took, *mods = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        imports.append(float(took))
        heavy.update(mods)
    row("import cloudtik_jupyter.cli", imports)
    print(f"{'  heavy modules it imported':<44} {', '.join(sorted(heavy)) or 'none'}")
    grammar = (
        "import time; t = time.perf_counter(); import cloudtik_jupyter.grammar.argv; "
        "print(time.perf_counter() - t)"
    )
    row(
        "import cloudtik_jupyter.grammar (thin client)",
        [
            float(subprocess.run([sys.executable, "-c", grammar], capture_output=True, text=True).stdout)
            for _ in range(RUNS)
        ],
    )
    for label, args in (
        ("cloudtik --help", ["--help"]),
        ("cloudtik scale c (usage error)", ["scale", "c"]),
        ("cloudtik list (no clusters)", ["list"]),
        ("cloudtik status ghost (unknown name)", ["status", "ghost"]),
    ):
        row(label, [seconds([CLOUDTIK, *args], env) for _ in range(RUNS)], 0.15)


if __name__ == "__main__":
    main()
