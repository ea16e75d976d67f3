"""`%cloudtik` / `%%cloudtik` through a real IPython InteractiveShell, against real virtual clusters."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from cloudtik_jupyter.api import Cluster
from cloudtik_jupyter.errors import ConfigError
from cloudtik_jupyter.jupyter.cell_errors import CellError
from cloudtik_jupyter.jupyter.results import ClusterList, ExecResults
from cloudtik_jupyter.jupyter.view import ClusterView
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.records.cluster import ClusterInfo, ClusterStatus
from cloudtik_jupyter.waiting import wait_for_sync
from tests.jupyter.helpers import Interrupter, head_status, node_records

pytestmark = pytest.mark.integration


def run(shell: InteractiveShell, cell: str) -> object:
    """Run a cell as a user would; raise what the cell raised."""
    result = shell.run_cell(textwrap.dedent(cell))
    result.raise_error()
    return result.result


def cell_error(shell: InteractiveShell, cell: str) -> BaseException:
    result = shell.run_cell(textwrap.dedent(cell))
    assert result.error_in_exec is not None, f"expected {cell!r} to fail"
    return result.error_in_exec


def test_load_ext_imports_no_cloud_sdk() -> None:
    code = textwrap.dedent(
        """
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "cloudtik_jupyter")
        sdks = ("boto3", "botocore", "google", "azure", "asyncssh", "ipywidgets")
        heavy = [m for m in sdks if m in sys.modules]
        print(",".join(heavy) or "-", "cloudtik" in shell.magics_manager.magics["cell"])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    # How fast it is is measured in benchmarks/bench_jupyter.py; here only what it must not pull in.
    heavy, has_cell_magic = out
    assert heavy == "-", f"%load_ext imported {heavy}"
    assert has_cell_magic == "True"


def test_help_usage_errors_and_short_messages(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(shell, "%cloudtik --help") is None
    overview = capsys.readouterr().out
    for command in ("up", "down", "status", "info", "exec", "scale", "upload", "download", "list"):
        assert f"\n  %cloudtik {command} " in overview

    run(shell, "%cloudtik up?")  # IPython alone would look for a variable named `up`
    assert "--no-wait" in capsys.readouterr().out
    run(shell, "%cloudtik exec --help")
    assert "--all-nodes" in capsys.readouterr().out
    assert isinstance(cell_error(shell, "%cloudtik bogus"), UsageError)
    assert isinstance(cell_error(shell, "%cloudtik scale c three"), UsageError)
    assert isinstance(cell_error(shell, "%%cloudtik status c\nbody"), UsageError)

    missing = cell_error(shell, "%cloudtik status nosuch")
    assert isinstance(missing, CellError)
    rendered = missing._render_traceback_()
    assert len(rendered) == 1 and "no cluster named 'nosuch'" in rendered[0]
    capsys.readouterr()
    shell.run_cell("%cloudtik status nosuch")
    shown = capsys.readouterr().out
    assert "no cluster named" in shown and "Traceback" not in shown
    assert run(shell, "%cloudtik list") == []


def test_bad_config_is_one_short_message_and_creates_nothing(
    shell: InteractiveShell, cloudtik_home: Path
) -> None:
    error = cell_error(
        shell,
        """\
        %%cloudtik up
        cluster_name: Bad_Name
        from: virtual-small
        available_node_types:
          worker: {min_workers: 3, max_workers: 1}
        """,
    )
    assert isinstance(error, CellError)
    message = str(error)
    assert "2 problems" in message
    assert "cluster_name:" in message and "available_node_types.worker.max_workers:" in message
    assert node_records(cloudtik_home, "bad-name") == [] and not (cloudtik_home / "virtual").exists()

    typo = cell_error(shell, "%%cloudtik up\ncluster_name: t\nfrom: virtual-smal\n")
    assert "did you mean 'virtual-small'" in str(typo)
    with pytest.raises(ConfigError, match="unknown template"):  # --debug: the real exception
        run(shell, "%%cloudtik up --debug\ncluster_name: t\nfrom: virtual-smal\n")


def test_a_cluster_lifetime_from_magics(
    shell: InteractiveShell, cloudtik_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = run(
        shell,
        """\
        %%cloudtik up
        cluster_name: magic
        from: virtual-small
        """,
    )
    assert isinstance(cluster, Cluster) and cluster.name == "magic"
    progress = capsys.readouterr().out
    heads = [r for r in node_records(cloudtik_home, "magic") if r.tags[T.NODE_KIND] == T.KIND_HEAD]
    assert f"[head {heads[0].node_id}] up-to-date" in progress  # per-node progress
    assert "up magic: done in" in progress

    # `cluster = %cloudtik up CONFIG` re-run converges and returns the cluster; $var / {expr} expand.
    config = tmp_path / "magic.yaml"
    config.write_text("cluster_name: magic\nfrom: virtual-small\n")
    shell.user_ns["config_path"] = str(config)
    again = run(shell, "again = %cloudtik up $config_path --quiet\nagain")
    assert isinstance(again, Cluster) and len(node_records(cloudtik_home, "magic")) == 3

    status = run(shell, "name = 'magic'\n%cloudtik status {name} --once")
    assert isinstance(status, ClusterStatus)
    assert [n.kind for n in status.nodes] == ["head", "worker", "worker"]
    assert status.workers_ready == 2 and (status.workers_min, status.workers_max) == (2, 4)

    capsys.readouterr()
    results = run(shell, "%cloudtik exec $name --all-nodes echo ip=$$CLOUDTIK_NODE_IP")
    assert isinstance(results, ExecResults) and results.ok and len(results) == 3
    lines = capsys.readouterr().out.splitlines()
    for node in status.nodes:
        assert f"[{node.node_id}] ip={node.internal_ip}" in lines
    piped = run(shell, "%cloudtik exec magic --quiet 'echo a b | tr a-z A-Z'")
    assert isinstance(piped, ExecResults) and piped[0].stdout == "A B\n"
    script = run(shell, "%%cloudtik exec again --node 2\necho one\necho two >&2\n")  # a Cluster variable
    assert isinstance(script, ExecResults) and script[0].node_id == status.nodes[1].node_id
    assert script[0].stdout == "one\n" and script[0].stderr == "two\n"
    failing = run(shell, "%cloudtik exec magic --quiet exit 3")
    assert isinstance(failing, ExecResults) and not failing.ok and failing[0].exit_status == 3
    assert "exited 3" in str(cell_error(shell, "%cloudtik exec magic --check --quiet exit 3"))

    info = run(shell, "%cloudtik info magic")
    assert isinstance(info, ClusterInfo) and info.head_ip == status.nodes[0].external_ip
    html = shell.display_formatter.format(info)[0]["text/html"]
    assert info.worker_ips[0] in html

    local = tmp_path / "data.txt"
    local.write_text("payload\n")
    run(shell, f"%cloudtik upload magic {local} data.txt --all-nodes --quiet")
    run(shell, f"%cloudtik download magic data.txt {tmp_path / 'back.txt'} --node 3 --quiet")
    assert (tmp_path / "back.txt").read_text() == "payload\n"

    scaled = run(shell, "%cloudtik scale magic 3")
    assert isinstance(scaled, ClusterStatus) and len(scaled.workers) == 3 and scaled.workers_ready == 3
    too_many = cell_error(shell, "%cloudtik scale magic 9")
    assert isinstance(too_many, CellError) and "allowed 2..4" in str(too_many)
    assert len(node_records(cloudtik_home, "magic")) == 4  # nothing changed

    view = run(shell, "%cloudtik status magic --view")
    assert isinstance(view, ClusterView)
    try:
        assert len(view.rows) == 4 and view.workers_total == 3
        assert "127." in repr(view)  # a terminal shows the table as text
    finally:
        view.close()

    listed = run(shell, "%cloudtik list")
    assert isinstance(listed, ClusterList) and listed.names == ["magic"]
    assert run(shell, "%cloudtik down magic") == 4
    assert node_records(cloudtik_home, "magic") == []
    assert run(shell, "%cloudtik list") == []
    assert "no cluster named 'magic'" in str(cell_error(shell, "%cloudtik status magic"))


def test_interrupt_stops_up_cleanly_and_a_no_wait_rerun_converges(
    shell: InteractiveShell, cloudtik_home: Path, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    body = f"""\
        %%cloudtik up --quiet
        cluster_name: halt
        from: virtual-small
        head_setup_commands: ["[ -e {release} ] || sleep 300"]
        """
    interrupter = Interrupter(lambda: head_status(cloudtik_home, "halt") == "setting-up")
    error = cell_error(shell, body)
    interrupter.join()
    assert isinstance(error, CellError) and str(error).startswith("interrupted: up halt stopped")
    nodes = node_records(cloudtik_home, "halt")
    # Stopped while the head was set up: the workers launched beside it were never set up.
    kinds = {r.tags[T.NODE_KIND]: r.tags[T.NODE_STATUS] for r in nodes}
    assert sorted(r.tags[T.NODE_KIND] for r in nodes) == ["head", "worker", "worker"]
    assert kinds == {T.KIND_HEAD: "setting-up", T.KIND_WORKER: "pending"}, kinds

    release.touch()
    cluster = run(shell, body.replace("--quiet", "--quiet --no-wait"))  # back once the head is ready
    assert isinstance(cluster, Cluster)
    assert head_status(cloudtik_home, "halt") == "up-to-date"
    magics = shell.magics_manager.registry["CloudtikMagics"]
    wait_for_sync(lambda: not magics._background, timeout=60, what="the workers to come up behind the view")
    nodes = node_records(cloudtik_home, "halt")
    assert sorted(r.tags[T.NODE_KIND] for r in nodes) == ["head", "worker", "worker"]  # one head, not two
    assert {r.tags[T.NODE_STATUS] for r in nodes} == {"up-to-date"}
    run(shell, "%cloudtik down halt --quiet")
