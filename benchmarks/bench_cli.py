"""How fast the `cloudtik` command answers (issue 15: status <= 0.15 s, `exec true` on the head <= 0.15 s,
on a worker <= 0.2 s, with the CLI session warm).

1. What the entry point imports: `cloudtik_jupyter.session.entry` (and the session client) must pull in
   nothing heavy; the in-process CLI (`cloudtik_jupyter.cli`) for comparison.
2. On a virtual cluster (head + 1 worker), whole `cloudtik` processes, interleaved round by round with
   `python -c pass` so machine load hits all alike: warm session, cold (the first call starts the session),
   and in-process (`CLOUDTIK_NO_SESSION=1`). Medians, the ratio to `python -c pass`, and the time above it.
3. Commands without a cluster: --help, a usage error, list, status of an unknown name.

`--rounds N` (default 15). Runs in a private CLOUDTIK_HOME; stops its session (by PID) and its nodes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import repo  # noqa: F401 -- the repository root on sys.path, for tests' helpers
import yaml

CLOUDTIK = str(Path(sys.executable).parent / "cloudtik")
HEAVY = ("click", "cloudtik_jupyter.api", "asyncssh", "rich", "yaml", "pydantic", "redis", "IPython")
TARGETS = {"status": 0.15, "exec true (head)": 0.15, "exec true (worker)": 0.2}


def seconds(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, timeout=120)
    took = time.perf_counter() - started
    if done.returncode not in (0, 2):
        raise RuntimeError(f"{argv}: exit {done.returncode}: {done.stderr.decode()[-500:]}")
    return took


def imports(module: str, env: dict[str, str], runs: int) -> tuple[float, set[str]]:
    probe = (
        f"import sys, time; t = time.perf_counter(); import {module}; took = time.perf_counter() - t; "
        f"print(took, *[m for m in {HEAVY!r} if m in sys.modules])"
    )
    times, heavy = [], set()
    for _ in range(runs):
        took, *mods = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        times.append(float(took))
        heavy.update(mods)
    return statistics.median(times), heavy


def report(label: str, values: list[float], floor: float) -> None:
    med = statistics.median(values)
    target = None if " [" in label else TARGETS.get(label)  # targets are for the warm session only
    verdict = f"  target {target:g} s: {'ok' if med <= target else 'MISSED'}" if target else ""
    print(
        f"  {label:<34} median {med * 1000:7.1f} ms  min {min(values) * 1000:7.1f} ms  "
        f"{med / floor:5.2f}x python  +{(med - floor) * 1000:6.1f} ms  (n={len(values)}){verdict}"
    )


def stop_sessions(home: str) -> None:
    from cloudtik_jupyter.session.admin import stop_all

    stop_all(home)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    home = tempfile.mkdtemp(prefix="ctj-bench-cli-")
    env = {k: v for k, v in os.environ.items() if k != "CLOUDTIK_NO_SESSION"}
    env["CLOUDTIK_HOME"] = home
    in_process = {**env, "CLOUDTIK_NO_SESSION": "1"}
    print(f"cloudtik_jupyter bench_cli on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"  load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")

    print("imports (fresh interpreter):")
    for module in (
        "cloudtik_jupyter.session.entry",
        "cloudtik_jupyter.session.client",
        "cloudtik_jupyter.cli",
    ):
        took, heavy = imports(module, env, 7)
        print(f"  {module:<34} median {took * 1000:7.1f} ms  heavy: {', '.join(sorted(heavy)) or 'none'}")

    from tests.virtual_nodes import teardown_virtual

    config = Path(home) / "bench.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "from": "virtual-small",
                "cluster_name": "bench",
                "available_node_types": {"worker": {"min_workers": 1, "max_workers": 1}},
            }
        )
    )
    try:
        subprocess.run([CLOUDTIK, "up", str(config), "--yes", "-q"], env=env, check=True, timeout=600)
        commands = {
            "status": [CLOUDTIK, "status", "bench"],
            "exec true (head)": [CLOUDTIK, "exec", "bench", "true"],
            "exec true (worker)": [CLOUDTIK, "exec", "bench", "--node", "2", "true"],
        }
        floor: list[float] = []
        warm: dict[str, list[float]] = {k: [] for k in commands}
        local: dict[str, list[float]] = {k: [] for k in commands}
        cold: list[float] = []
        for argv in commands.values():  # the session starts, connections open
            seconds(argv, env)
        for i in range(rounds):
            floor.append(seconds([sys.executable, "-c", "pass"], env))
            for label, argv in commands.items():
                warm[label].append(seconds(argv, env))
            if i % 3 == 0:
                for label, argv in commands.items():
                    local[label].append(seconds(argv, in_process))
                stop_sessions(home)
                cold.append(seconds(commands["status"], env))
        base = statistics.median(floor)
        print(f"virtual cluster, head + 1 worker; python -c pass: median {base * 1000:.1f} ms")
        print(" warm session:")
        for label, values in warm.items():
            report(label, values, base)
        print(" cold (the first call starts the session):")
        report("status [cold]", cold, base)
        print(" in-process (CLOUDTIK_NO_SESSION=1):")
        for label, values in local.items():
            report(f"{label} [in-process]", values, base)
        print("without a cluster (warm session):")
        for label, args in (
            ("cloudtik --help", ["--help"]),
            ("cloudtik scale c (usage error)", ["scale", "c"]),
            ("cloudtik list", ["list"]),
            ("cloudtik status ghost (unknown)", ["status", "ghost"]),
        ):
            report(label, [seconds([CLOUDTIK, *args], env) for _ in range(max(rounds // 2, 3))], base)
        subprocess.run([CLOUDTIK, "down", "bench", "--yes", "-q"], env=env, check=True, timeout=600)
    finally:
        try:
            teardown_virtual(Path(home))  # the session (by PID), nodes, hypervisor
        finally:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
