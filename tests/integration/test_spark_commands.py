"""Spark through the commands: `cloudtik submit` in a real process, and `%%cloudtik sql` / `%cloudtik submit`
in a real kernel (one long-lived session, -o, re-run, a bad query, the stop button), on one virtual Spark
cluster shared by the module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudtik_jupyter import paths
from tests.jupyter.kernel import Kernel
from tests.virtual_nodes import teardown_virtual

# Spark on a loaded 2-core machine: a JVM start alone can take tens of seconds.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CLOUDTIK = str(Path(sys.executable).parent / "cloudtik")
JOB = """\
import sys
if "--fail" in sys.argv:
    sys.exit("bad input: " + " ".join(sys.argv[1:]))
from pyspark.sql import SparkSession
rows = int(sys.argv[sys.argv.index("--rows") + 1])
spark = SparkSession.builder.appName("rows").getOrCreate()
print("SUM", spark.range(rows).selectExpr("sum(id)").first()[0])
spark.stop()
"""


@pytest.fixture(scope="module")
def spark_home() -> Iterator[Path]:
    """A state dir with one Spark cluster, `sparkcmd` (head + 2 workers), for the whole module."""
    home = Path(tempfile.mkdtemp(prefix="ctj-sql-"))  # short: node sockets live under it
    paths.ensure_private_dir(home)
    env = {**os.environ, "CLOUDTIK_HOME": str(home), "CLOUDTIK_VIRTUAL_IDLE_EXIT": "600"}
    config = home / "sparkcmd.yaml"
    config.write_text(
        "from: virtual-spark\ncluster_name: sparkcmd\n"
        "available_node_types: {worker: {min_workers: 2, max_workers: 2}}\n"
    )
    try:
        up = subprocess.run(
            [CLOUDTIK, "up", str(config), "--yes", "-q"], env=env, capture_output=True, text=True, timeout=300
        )
        assert up.returncode == 0, up.stderr
        yield home
    finally:
        teardown_virtual(home)


def running_jobs(ui: str) -> int:
    """Jobs the kernel's driver is running (its REST API, on the driver's own 127.x address); 0 while the
    UI does not answer (a busy machine)."""
    try:
        with urllib.request.urlopen(f"{ui}/api/v1/applications", timeout=15) as response:
            app = json.load(response)[0]["id"]
        with urllib.request.urlopen(
            f"{ui}/api/v1/applications/{app}/jobs?status=running", timeout=15
        ) as response:
            return len(json.load(response))
    except OSError:
        return 0


def env_of(home: Path) -> dict[str, str]:
    return {**os.environ, "CLOUDTIK_HOME": str(home)}


def test_cloudtik_submit_runs_a_job_with_its_own_arguments(spark_home: Path, tmp_path: Path) -> None:
    job = tmp_path / "rows.py"
    job.write_text(JOB)
    ran = subprocess.run(
        [CLOUDTIK, "submit", "sparkcmd", str(job), "--rows", "1000"],
        env=env_of(spark_home),
        capture_output=True,
        text=True,
        timeout=SLOW,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "SUM 499500" in ran.stdout


@pytest.fixture
def kernel(spark_home: Path, tmp_path: Path) -> Iterator[Kernel]:
    started = Kernel(env_of(spark_home), tmp_path)
    try:
        started.ok("%load_ext cloudtik_jupyter")
        yield started
    finally:
        started.close()  # its driver JVM goes with it


SLOW = 600  # seconds a Spark cell may take on a loaded machine


def test_sql_in_a_cell(kernel: Kernel, tmp_path: Path) -> None:
    # %cloudtik submit streams the job's output into the cell; a failing job fails the cell. (First: once
    # this kernel's SQL session holds the workers' cores, a submitted job would wait for them.)
    job = tmp_path / "rows.py"
    job.write_text(JOB)
    assert "SUM 4950" in kernel.ok(f"%cloudtik submit sparkcmd {job} --rows 100", SLOW).stdout
    failed = kernel.run(f"%cloudtik submit sparkcmd {job} --rows 1 --fail", SLOW)
    assert failed.status == "error" and failed.error is not None
    assert "rows.py on sparkcmd exited " in failed.error["traceback"][0]
    assert "bad input: --rows 1 --fail" in failed.stdout + failed.stderr  # the job's own words

    first = kernel.ok(
        "%%cloudtik sql sparkcmd -o counts\n"
        "SELECT id % 3 AS k, count(*) AS n FROM range(1000) GROUP BY 1 ORDER BY 1",
        SLOW,
    )
    html = first.texts("text/html")[-1]
    assert "<th" in html and ">k</th>" in html and ">334</td>" in html
    assert "3 rows in" in first.result
    frame = kernel.ok("print(type(counts).__name__, counts['n'].tolist())")
    assert frame.stdout.split(maxsplit=1) == ["DataFrame", "[334, 333, 333]\n"]
    session = kernel.ok(
        "m = get_ipython().magics_manager.registry['CloudtikMagics']\nprint(id(m.spark.session))"
    )

    # Statements run in order in the same long-lived session; a view made here is there next time.
    kernel.ok(
        "%%cloudtik sql sparkcmd -q\n"
        "CREATE OR REPLACE TEMP VIEW sales AS SELECT id, id % 7 AS shop FROM range(70000); -- a comment; with ;\n"
        "SELECT 'a;b' AS text"
    )
    again = kernel.ok("%cloudtik sql sparkcmd --limit 3 SELECT shop, count(*) AS n FROM sales GROUP BY shop")
    assert "7 rows, first 3 shown in" in again.result
    capped = kernel.ok("%cloudtik sql sparkcmd --max-rows 5 SELECT * FROM sales")
    assert "more than 5 rows" in capped.result
    assert kernel.ok("print(id(m.spark.session))").stdout == session.stdout

    # A bad query is one red line; the session survives it.
    bad = kernel.run("%cloudtik sql sparkcmd SELECT * FROM nosuch_table")
    assert bad.status == "error" and bad.error is not None
    assert len(bad.error["traceback"]) == 1 and "TABLE_OR_VIEW_NOT_FOUND" in bad.error["traceback"][0]
    bad_name = kernel.run("%cloudtik sql sparkcmd -o 1x SELECT 1")
    assert bad_name.status == "error" and "not a Python variable name" in bad_name.stderr

    # The stop button cancels a long query (pressed once Spark runs it); the next runs in the same session.
    ui = kernel.ok("print(m.spark.session.sparkContext.uiWebUrl)").stdout.strip()
    stopped = kernel.interrupted(
        "%cloudtik sql sparkcmd SELECT count(*) FROM range(200000000000) a",
        when=lambda _cell: running_jobs(ui) > 0,
        timeout=SLOW,
    )
    assert stopped.status == "error" and stopped.error is not None
    assert "interrupted: the query on sparkcmd was cancelled" in stopped.error["traceback"][0]
    assert running_jobs(ui) == 0
    assert "1 rows in" in kernel.ok("%cloudtik sql sparkcmd SELECT count(*) AS c FROM sales").result
    assert kernel.ok("print(id(m.spark.session))").stdout == session.stdout
