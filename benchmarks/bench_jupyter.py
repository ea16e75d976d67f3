"""Time the Jupyter front end in real kernels (ipykernel, driven over ZMQ as a frontend would).

1. `%load_ext cloudtik_jupyter` in fresh kernels (target < 300 ms), and which heavy modules it pulled in.
2. How long after a change the live view's model update reaches the frontend (target < 1 s):
   a. an event written into the head's state store (a store change, pushed by subscription);
   b. the same while the kernel runs a 10 s cell (the view's relay thread; before it: the whole cell);
   c. a worker's process tree killed (an instance dying; noticed from the provider).
3. `%%cloudtik sql` round trip (cell sent -> reply) vs the same query through `spark_session()` in a cell
   (`spark.sql(q).toPandas()`, first rows shown): ratio, target <= 1.2. `--no-sql` skips it (a Spark cluster).
Runs virtual clusters in a private CLOUDTIK_HOME and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import repo  # noqa: F401 -- the repository root on sys.path, for tests' helpers
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

FRESH_KERNELS = 3
SAMPLES = 8


def start_kernel(env: dict[str, str]) -> tuple[KernelManager, BlockingKernelClient]:
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc


def run(kc: BlockingKernelClient, code: str, timeout: float = 120) -> str:
    """Execute `code`; return its stdout; raise on an error."""
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])
        if msg["msg_type"] == "error":
            raise RuntimeError("\n".join(msg["content"]["traceback"]))

    reply = kc.execute_interactive(code, timeout=timeout, output_hook=hook)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"{code!r} failed: {reply['content']}")
    return "".join(out)


def wait_for_update(kc: BlockingKernelClient, model_id: str, accept: Any, timeout: float = 10.0) -> float:
    """Wall time at which the frontend receives a state update of `model_id` that `accept(state)` likes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        content = msg["content"]
        if msg["msg_type"] == "comm_msg" and content.get("comm_id") == model_id:
            state = content["data"].get("state", {})
            if content["data"].get("method") == "update" and accept(state):
                return time.time()
    raise TimeoutError("the view's model did not reflect the change in time")


def wait_for_busy(kc: BlockingKernelClient, msg_id: str, timeout: float = 30.0) -> None:
    """Until cell `msg_id` has started running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        if msg["msg_type"] == "execute_input" and msg["parent_header"].get("msg_id") == msg_id:
            return
    raise TimeoutError("the cell did not start")


def drain(kc: BlockingKernelClient) -> None:
    while True:
        try:
            kc.get_iopub_msg(timeout=0.05)
        except queue.Empty:
            return


def row(label: str, values: list[float], unit: str, target: float | None = None) -> None:
    med, worst = statistics.median(values), max(values)
    verdict = f"  target < {target:g} {unit}: {'ok' if worst < target else 'MISSED'}" if target else ""
    print(f"{label:<48} median {med:8.3f} {unit}  max {worst:8.3f} {unit}  (n={len(values)}){verdict}")


def bench_load_ext(env: dict[str, str]) -> None:
    times, heavy = [], set()
    probe = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "get_ipython().run_line_magic('load_ext', 'cloudtik_jupyter')\n"
        "took = time.perf_counter() - t\n"
        "print(took, *[m for m in ('boto3', 'botocore', 'google.cloud', 'azure', 'asyncssh', 'ipywidgets')"
        " if m in sys.modules])\n"
    )
    for _ in range(FRESH_KERNELS):
        km, kc = start_kernel(env)
        try:
            took, *mods = run(kc, probe).split()
            times.append(float(took) * 1000)
            heavy.update(mods)
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    row("%load_ext cloudtik_jupyter (fresh kernel)", times, "ms", 300)
    print(f"{'  modules it imported (of boto3/asyncssh/...)':<48} {', '.join(sorted(heavy)) or 'none'}")


async def add_store_event(name: str, message: str) -> float:
    """Write an event into the cluster's head store, as the controller would; returns its time."""
    from cloudtik_jupyter.api import Cluster

    cluster = Cluster(name)
    head = await cluster._ctx.head()
    assert head is not None
    store = await cluster._ctx.store(head)
    try:
        event = await store.add_event("bench", message)
    finally:
        await cluster._ctx.close()
    return event.time


def ready_worker(home: Path) -> Any:
    """A worker record once the cluster has two up-to-date workers (the controller replaced the last one)."""
    from cloudtik_jupyter.providers import tags as T
    from cloudtik_jupyter.providers.virtual import state

    workers = [r for r in state.live_records(home) if r.cluster == "bench" and r.kind == "worker"]
    ready = [w for w in workers if w.tags.get(T.NODE_STATUS) == T.NodeStatus.UP_TO_DATE.value]
    return ready[0] if len(ready) == 2 == len(workers) else None


def bench_view_lag(env: dict[str, str], home: Path) -> None:
    import psutil

    from cloudtik_jupyter.waiting import wait_for_sync

    km, kc = start_kernel(env)
    try:
        run(kc, "%load_ext cloudtik_jupyter")
        run(
            kc,
            "%%cloudtik up --quiet\ncluster_name: bench\nfrom: virtual-small\nhead: {controller_interval: 1}\n",
        )
        model_id = run(kc, "view = %cloudtik status bench\nprint(view.model_id)").strip()
        drain(kc)

        store_lags = []
        for i in range(SAMPLES):
            mark = f"bench mark {i}"
            at = asyncio.run(add_store_event("bench", mark))
            seen = wait_for_update(kc, model_id, lambda s, m=mark: any(m in e for e in s.get("events", [])))
            store_lags.append(seen - at)
        row("store change -> view model at the frontend", store_lags, "s", 1.0)

        # The same while a 10 s cell runs: the kernel's loop is blocked for the whole cell.
        busy_lags = []
        cell = kc.execute("import time\ntime.sleep(10)")
        wait_for_busy(kc, cell)
        started = time.monotonic()
        i = 0
        while time.monotonic() - started < 8.5:  # samples spread over the cell, each < 1 s apart
            mark = f"busy mark {i}"
            at = asyncio.run(add_store_event("bench", mark))
            seen = wait_for_update(kc, model_id, lambda s, m=mark: any(m in e for e in s.get("events", [])))
            busy_lags.append(seen - at)
            i += 1
        kc.get_shell_msg(timeout=30)  # the cell's reply
        row("store change -> frontend, kernel busy (10 s cell)", busy_lags, "s", 1.0)

        kill_lags = []
        for _ in range(3):
            # Wait here, not in the kernel: a cell blocked in Python code holds up every widget update.
            victim = wait_for_sync(lambda: ready_worker(home), timeout=60, what="two up-to-date workers")
            drain(kc)
            killed_at = time.time()
            root = psutil.Process(victim.pid)
            for proc in [root, *root.children(recursive=True)]:
                proc.send_signal(signal.SIGKILL)
            seen = wait_for_update(
                kc,
                model_id,
                lambda s, v=victim.node_id: "rows" in s and all(r["node_id"] != v for r in s["rows"]),
            )
            kill_lags.append(seen - killed_at)
        row("worker killed -> its row gone at the frontend", kill_lags, "s", 1.0)
        run(kc, "view.close()\n%cloudtik down bench --quiet")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


SQL_QUERY = "SELECT id % 10 AS k, count(*) AS n, sum(id) AS s FROM range(2000000) GROUP BY 1 ORDER BY 1"
SQL_SAMPLES = 8


def timed(kc: BlockingKernelClient, code: str) -> float:
    started = time.perf_counter()
    run(kc, code, timeout=600)
    return time.perf_counter() - started


def bench_sql(env: dict[str, str]) -> None:
    from cloudtik_jupyter.api import Cluster

    cluster = Cluster(
        {
            "from": "virtual-spark",
            "cluster_name": "benchsql",
            "available_node_types": {"worker": {"min_workers": 2, "max_workers": 2}},
        }
    ).up()
    km, kc = start_kernel(env)
    try:
        run(kc, "%load_ext cloudtik_jupyter")
        # The direct path's session first: the magic then shares it (one SparkSession per kernel).
        run(kc, "from cloudtik_jupyter.api import Cluster\nspark = Cluster('benchsql').spark_session()", 600)
        magic = f"%%cloudtik sql benchsql\n{SQL_QUERY}"
        direct = f"df = spark.sql({SQL_QUERY!r}).toPandas()\ndf.head(20)"
        for _ in range(2):  # warm: JIT, code generation, executors
            timed(kc, magic)
            timed(kc, direct)
        magic_times, direct_times = [], []
        for _ in range(SQL_SAMPLES):  # interleaved, so load changes hit both alike
            magic_times.append(timed(kc, magic))
            direct_times.append(timed(kc, direct))
        row("%%cloudtik sql round trip", magic_times, "s")
        row("same query via spark_session() in a cell", direct_times, "s")
        ratio = statistics.median(magic_times) / statistics.median(direct_times)
        print(
            f"{'  ratio sql magic / spark_session()':<48} {ratio:8.2f}         target <= 1.2: {'ok' if ratio <= 1.2 else 'MISSED'}"
        )
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        cluster.down()


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="ctj-bench-"))
    os.environ["CLOUDTIK_HOME"] = str(home)
    env = {**os.environ, "CLOUDTIK_HOME": str(home)}
    from tests.virtual_nodes import teardown_virtual

    print(f"cloudtik_jupyter bench_jupyter on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    try:
        bench_load_ext(env)
        bench_view_lag(env, home)
        if "--no-sql" not in sys.argv:
            bench_sql(env)
    finally:
        teardown_virtual(home)


if __name__ == "__main__":
    main()
