"""Journeys through the `%cloudtik` commands a notebook user reaches for after `up`, in a real kernel:
addresses, kill a node and wait for its replacement, follow events and stop following, scale and scale
again, attach, workspaces from a cell; bad input is one red line and changes nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.jupyter.helpers import node_records
from tests.jupyter.kernel import Kernel

pytestmark = pytest.mark.integration

FAST_HEAD = "head: {controller_interval: 0.5, heartbeat_interval: 0.5, heartbeat_timeout: 5}"


def one_red_line(kernel: Kernel, code: str, says: str) -> str:
    """The cell fails with one short line: a CellError's red line, or IPython's `UsageError: ...`."""
    cell = kernel.run(code)
    assert cell.status == "error", f"{code!r} should have failed"
    shown = [
        line for line in (cell.error["traceback"] if cell.error else cell.stderr.splitlines()) if line.strip()
    ]
    assert len(shown) == 1 and says in shown[0] and "Traceback" not in shown[0], shown
    return shown[0]


def test_cluster_commands_from_a_notebook(kernel: Kernel, cloudtik_home: Path) -> None:
    kernel.ok(f"%%cloudtik up --quiet\nfrom: virtual-small\ncluster_name: tour\n{FAST_HEAD}\n")
    records = node_records(cloudtik_home, "tour")
    head = next(r for r in records if r.kind == "head")

    assert ast.literal_eval(kernel.ok("%cloudtik head-ip tour").result) == head.ip
    workers = ast.literal_eval(kernel.ok("%cloudtik worker-ips tour").result)
    assert sorted(workers) == sorted(r.ip for r in records if r.kind == "worker")

    # Kill a worker, then wait for the head's controller to replace it.
    victim = ast.literal_eval(kernel.ok("victim = %cloudtik kill-node tour --yes\nvictim").result)
    assert victim in {r.node_id for r in records if r.kind == "worker"}
    ready = kernel.ok(
        "ready = %cloudtik wait-for-ready tour --timeout 90 --quiet\n"
        "print(ready.workers_ready, victim in [n.node_id for n in ready.nodes])"
    )
    assert ready.stdout.split() == ["2", "False"]

    # Follow events for a while (they tell the story of the replacement), then until the stop button.
    followed = kernel.ok("%cloudtik monitor tour --history 50 --timeout 1")
    assert victim in followed.stdout or "launch" in followed.stdout, followed.stdout
    stopped = kernel.interrupted("%cloudtik monitor tour --history 5", when=lambda cell: cell.stdout != "")
    assert stopped.status == "ok" and "stopped following tour's events" in stopped.stdout

    # Scale up, then down again: each waits for the controller and returns the new status.
    up3 = kernel.ok("s = %cloudtik scale tour 3 --quiet\nprint(len(s.workers), s.workers_ready)")
    assert up3.stdout.split() == ["3", "3"]
    down2 = kernel.ok("s = %cloudtik scale tour 2 --quiet\nprint(len(s.workers), s.workers_ready)")
    assert down2.stdout.split() == ["2", "2"]
    assert len(node_records(cloudtik_home, "tour")) == 3

    attach = kernel.ok("%cloudtik attach tour --node 2")
    assert "attach tour --node 2" in attach.stdout and "terminal" in attach.stdout

    # Bad input: one red line, nothing changes.
    one_red_line(kernel, "%cloudtik kill-node tour --node nosuch", "no node 'nosuch'")
    one_red_line(kernel, "%cloudtik scale tour -1", "allowed 2..4")
    one_red_line(kernel, "%cloudtik status ../tour", "neither a config file nor a cluster name")
    one_red_line(kernel, "%cloudtik wait-for-ready tour --timeout soon", "invalid float value: 'soon'")
    one_red_line(kernel, "%cloudtik submit tour /nonexistent.py", "no such file")
    assert len(node_records(cloudtik_home, "tour")) == 3

    assert kernel.ok("%cloudtik down tour --quiet").result == "3"
    assert node_records(cloudtik_home, "tour") == []


def test_workspace_from_a_notebook(kernel: Kernel, cloudtik_home: Path) -> None:
    body = "%%cloudtik workspace create\nworkspace_name: lab\nprovider: {type: virtual}\n"
    created = kernel.ok(body + "\n")
    progress = "\n".join(created.texts())
    assert "create workspace lab on virtual" in progress and "done in" in progress
    assert "done" in progress and "step" in progress  # one row per resource the provider ensured
    assert (cloudtik_home / "workspaces" / "lab").is_dir()
    assert created.result.startswith("workspace lab (virtual): ready")
    again = kernel.ok(body)  # re-running converges
    assert again.result == created.result
    assert "present" in again.texts("text/html")[-1]

    status = kernel.ok("st = %cloudtik workspace status lab\nprint(st.ready, st.name)")
    assert status.stdout.split() == ["True", "lab"]
    info = kernel.ok("%cloudtik workspace info lab")
    assert "address_block" in info.result
    assert "'lab'" in kernel.ok("%cloudtik workspace list").result

    # A cluster in it: delete refuses, --force takes the cluster down too.
    kernel.ok("%%cloudtik up --quiet\nfrom: virtual-small\ncluster_name: inlab\nworkspace_name: lab\n")
    one_red_line(kernel, "%cloudtik workspace delete lab", "still has clusters: inlab")
    assert len(node_records(cloudtik_home, "inlab")) == 3
    kernel.ok("%cloudtik workspace delete lab --force --quiet")
    assert node_records(cloudtik_home, "inlab") == []
    one_red_line(kernel, "%cloudtik workspace status lab", "no workspace named 'lab'")

    # Bad bodies and names create nothing.
    one_red_line(kernel, "%%cloudtik workspace create\nworkspace_name: Bad_Name\n", "workspace_name")
    one_red_line(kernel, "%%cloudtik workspace create\n- a list\n", "YAML mapping")
    one_red_line(kernel, "%%cloudtik workspace create lab.yaml\nworkspace_name: x\n", "drop CONFIG")
    one_red_line(
        kernel, "%cloudtik workspace delete ../../etc --force", "neither a config file nor a workspace"
    )
    assert not any((cloudtik_home / "workspaces").iterdir())


def test_help_lists_every_command(kernel: Kernel) -> None:
    overview = kernel.ok("%cloudtik --help").stdout
    for line in (
        "%cloudtik submit CLUSTER JOB",
        "%%cloudtik sql CLUSTER",
        "%cloudtik workspace create CONFIG",
    ):
        assert line in overview
    assert "--no-wait" in kernel.ok("%cloudtik up?").stdout
    one_red_line(kernel, "%cloudtik up x.yaml --no-workerz", "unrecognized arguments: --no-workerz")
