"""The `cloudtik` command as a user runs it, in real processes: up without waiting, wait, change the config and
up again, scale and scale again (old spelling too), kill a node and watch it come back, follow events and
stop, interrupt a wait; bad arguments are one line, exit 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from tests.jupyter.helpers import node_records

CLOUDTIK = str(Path(sys.executable).parent / "cloudtik")  # the installed entry point
FAST_HEAD = {"controller_interval": 0.5, "heartbeat_interval": 0.5, "heartbeat_timeout": 5.0}


def env(home: Path) -> dict[str, str]:
    return {**os.environ, "CLOUDTIK_HOME": str(home)}


def cloudtik(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLOUDTIK, *args], capture_output=True, text=True, env=env(home), timeout=timeout)


def workers(home: Path, name: str) -> list[str]:
    return sorted(r.tags["cloudtik-node-status"] for r in node_records(home, name) if r.kind == "worker")


def write(path: Path, min_workers: int) -> Path:
    config = {
        "from": "virtual-small",
        "cluster_name": "journey",
        "head": FAST_HEAD,
        "available_node_types": {"worker": {"min_workers": min_workers, "max_workers": 4}},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_cluster_lifetime_in_the_terminal(cloudtik_home: Path, tmp_path: Path) -> None:
    config = write(tmp_path / "journey.yaml", 1)
    up = cloudtik(cloudtik_home, "up", str(config), "--yes", "--no-wait")
    assert up.returncode == 0, up.stderr
    assert "launching 1 worker(s) beside the head" in up.stdout  # a new cluster: not after the head
    ready = cloudtik(cloudtik_home, "wait-for-ready", "journey", "--timeout", "60", "--quiet")
    assert ready.returncode == 0 and "workers ready 1 / desired 1" in ready.stdout, ready.stderr
    assert workers(cloudtik_home, "journey") == ["up-to-date"]

    # A changed config (counts only) and `up` again: the head's controller gets it, a worker is added.
    write(config, 2)
    again = cloudtik(cloudtik_home, "up", str(config), "--yes", "--quiet")
    assert again.returncode == 0, again.stderr
    assert workers(cloudtik_home, "journey") == ["up-to-date"] * 2

    # Scale, and scale again with the older spelling.
    assert cloudtik(cloudtik_home, "scale", "journey", "4", "-q").returncode == 0
    assert workers(cloudtik_home, "journey") == ["up-to-date"] * 4
    assert cloudtik(cloudtik_home, "scale", "journey", "--workers", "3", "-q").returncode == 0
    assert workers(cloudtik_home, "journey") == ["up-to-date"] * 3

    # One command, two spellings: options after a quoted command, or a command of several words.
    quoted = cloudtik(cloudtik_home, "exec", "journey", "echo $CLOUDTIK_NODE_KIND", "--all-nodes")
    assert sorted(quoted.stdout.split()[1::2]) == ["head", "worker", "worker", "worker"]
    words = cloudtik(cloudtik_home, "exec", "journey", "--node", "1", "echo", "one", "two")
    assert words.returncode == 0 and words.stdout == "one two\n"

    # A node dies; the controller replaces it; the events tell the story.
    killed = cloudtik(cloudtik_home, "kill-node", "journey", "--yes")
    assert killed.returncode == 0 and killed.stdout.startswith("terminated vn-")
    victim = killed.stdout.split()[1]
    back = cloudtik(cloudtik_home, "wait-for-ready", "journey", "--timeout", "60", "-q")
    assert back.returncode == 0 and victim not in back.stdout and "ready 3 / desired 3" in back.stdout
    events = cloudtik(cloudtik_home, "monitor", "journey", "--history", "100", "--timeout", "1")
    assert events.returncode == 0 and victim in events.stdout, events.stdout

    # Ctrl-C ends `monitor` (that is how one stops following) and interrupts a long `exec`.
    follower = subprocess.Popen(
        [CLOUDTIK, "monitor", "journey"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(cloudtik_home),
    )
    assert follower.stdout is not None
    assert follower.stdout.readline()  # following: the history is out
    follower.send_signal(signal.SIGINT)
    assert follower.wait(timeout=30) == 0, follower.stderr.read() if follower.stderr else ""
    runner = subprocess.Popen(
        [CLOUDTIK, "exec", "journey", "echo started; sleep 120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(cloudtik_home),
    )
    assert runner.stdout is not None and runner.stdout.readline() == "started\n"
    runner.send_signal(signal.SIGINT)
    _, err = runner.communicate(timeout=30)
    assert runner.returncode == 130 and "Interrupted; re-run the same command" in err

    # Bad arguments in a real process: one line on stderr, exit 2, nothing changed.
    for args, code, says in (
        (("scale", "journey", "many"), 2, "'many' is not a valid integer"),
        (("scale", "journey", "9"), 2, "allowed 2..4"),
        (("exec", "journey"), 2, "Missing argument 'COMMAND'"),
        (("kill-node", "journey", "--node", "nosuch", "--yes"), 1, "no node 'nosuch'"),
    ):
        bad = cloudtik(cloudtik_home, *args)
        assert bad.returncode == code, (args, bad.stderr)
        assert bad.stdout == "" and bad.stderr.count("\n") == 1 and says in bad.stderr, (args, bad.stderr)
    assert len(workers(cloudtik_home, "journey")) == 3

    down = cloudtik(cloudtik_home, "down", "journey", "--yes", "-q")
    assert down.returncode == 0 and node_records(cloudtik_home, "journey") == []


def test_up_into_a_pipe_that_closes_exits_and_the_rerun_converges(cloudtik_home: Path, tmp_path: Path) -> None:
    """`cloudtik up c.yaml | head -2`: the reader goes away after two lines; `up` exits (it hung for good:
    rich's exit on the broken pipe ended the loop thread every call shares) and `up` again finishes."""
    config = write(tmp_path / "journey.yaml", 1)
    up = subprocess.Popen(
        [CLOUDTIK, "up", str(config), "--yes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(cloudtik_home),
    )
    try:
        assert up.stdout is not None
        assert up.stdout.readline().startswith("Bringing up cluster journey")
        up.stdout.readline()
        up.stdout.close()  # `head -2` exits
        code = up.wait(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(timeout=10)
    assert code != 0
    again = cloudtik(cloudtik_home, "up", str(config), "--yes", "--quiet")
    assert again.returncode == 0, again.stderr
    assert workers(cloudtik_home, "journey") == ["up-to-date"]
    assert cloudtik(cloudtik_home, "down", "journey", "--yes", "--quiet").returncode == 0
