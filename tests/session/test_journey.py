"""A user's terminal session with the CLI session on, in real `cloudtik` processes: up, status twice
(one warm session answers), exec on the head and a worker, scale, two commands at once, Ctrl-C a long
exec (and a client killed outright) and see the command stop on the node, a confirmation prompt on a
terminal, bad input, the session killed under a running command, a half-dead head (reported as the
in-process CLI reports it, repaired by `up`, then served warm again), down."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

import psutil
import yaml

from cloudtik_jupyter.providers.virtual import state
from cloudtik_jupyter.waiting import wait_for_sync
from tests.session.helpers import CLOUDTIK, FAST_HEAD, cloudtik, env, ping, place_of, sessions, the_session
from tests.virtual_nodes import processes_using_home


def _running_on(home: Path, node: str, marker: str) -> bool:
    """Whether `sleep MARKER` runs on `node` (asked through the CLI itself)."""
    pattern = marker.replace(".", "[.]")  # never matches the pgrep's own command line
    probe = cloudtik(
        home, "exec", "sess", "--node", node, f"pgrep -f 'sleep {pattern}' >/dev/null && echo yes || echo no"
    )
    assert probe.returncode == 0, probe.stderr
    return probe.stdout.strip() == "yes"


def _long_exec(home: Path, node: str, marker: str) -> subprocess.Popen[str]:
    client = subprocess.Popen(
        [CLOUDTIK, "exec", "sess", "--node", node, f"echo started; sleep {marker}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(home),
    )
    assert client.stdout is not None and client.stdout.readline() == "started\n"
    assert _running_on(home, node, marker)
    return client


def _kill_head_services(home: Path) -> None:
    """The head's node keeps running (its SSH server) but its keeper, agent, Redis and controller die."""
    (head,) = [r for r in state.live_records(home) if r.cluster == "sess" and r.kind == "head"]
    on_head = psutil.Process(head.pid).children(recursive=True)
    keeper = [p for p in on_head if "cloudtik_jupyter.node.start" in " ".join(p.cmdline())]
    assert keeper, "no keeper on the head"
    for proc in keeper + on_head:  # the keeper first, so nothing comes back on its own
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(on_head, timeout=10)


def _answer_prompt(home: Path, args: list[str], answer: bytes) -> tuple[bytes, int]:
    """Run `cloudtik ARGS` on a terminal, answer its prompt; (everything it printed, exit status)."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child execs at once
        os.execve(CLOUDTIK, [CLOUDTIK, *args], env(home))
    seen = b""
    deadline = time.monotonic() + 60
    while b"[y/N]" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], deadline - time.monotonic())
        if ready:
            seen += os.read(fd, 4096)
    os.write(fd, answer)
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the terminal's other side is gone
            break
        if not chunk:
            break
        seen += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return seen, os.waitstatus_to_exitcode(status)


def test_a_terminal_journey_through_the_session(cloudtik_home: Path, tmp_path: Path) -> None:
    home = cloudtik_home
    config = tmp_path / "sess.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "from": "virtual-small",
                "cluster_name": "sess",
                "head": FAST_HEAD,
                "available_node_types": {"worker": {"min_workers": 1, "max_workers": 3}},
            }
        )
    )
    up = cloudtik(home, "up", str(config), "--yes", "-q")
    assert up.returncode == 0, up.stderr

    # Status twice: one session answers both, with connections it keeps.
    first = cloudtik(home, "status", "sess")
    assert first.returncode == 0 and "workers ready 1 / desired 1" in first.stdout, first.stderr
    session = the_session(home)
    place = place_of(home)
    served = ping(place)["served"]
    second = cloudtik(home, "status", str(config))
    assert second.returncode == 0 and "workers ready 1 / desired 1" in second.stdout
    assert ping(place) | {"served": 0} == {"op": "pong", "pid": session.pid, "served": 0, "running": 0}
    assert ping(place)["served"] == served + 1

    # Exec on the head and on a worker (through the head).
    head = cloudtik(home, "exec", "sess", "echo $CLOUDTIK_NODE_KIND")
    worker = cloudtik(home, "exec", "sess", "--node", "2", "echo $CLOUDTIK_NODE_KIND >&2; exit 3")
    assert (head.returncode, head.stdout) == (0, "head\n")
    assert (worker.returncode, worker.stdout, worker.stderr) == (3, "", "worker\n")

    # Scale, then look: two workers.
    assert cloudtik(home, "scale", "sess", "2", "-q").returncode == 0
    ips = cloudtik(home, "worker-ips", "sess")
    assert ips.returncode == 0 and len(ips.stdout.split()) == 2

    # Two commands at once: the first ends only once the second has run.
    flag = tmp_path / "flag"
    waiting = subprocess.Popen(
        [CLOUDTIK, "exec", "sess", f"echo waiting; while [ ! -e {flag} ]; do sleep 0.05; done; echo done"],
        stdout=subprocess.PIPE,
        text=True,
        env=env(home),
    )
    assert waiting.stdout is not None and waiting.stdout.readline() == "waiting\n"
    assert cloudtik(home, "exec", "sess", "--node", "2", f"touch {flag}").returncode == 0
    assert waiting.communicate(timeout=60)[0] == "done\n" and waiting.returncode == 0

    # Ctrl-C a long exec: the client says so, exits 130, and the command stops on the node.
    interrupted = _long_exec(home, "1", "1234.5")
    interrupted.send_signal(signal.SIGINT)
    _, err = interrupted.communicate(timeout=60)
    assert interrupted.returncode == 130 and err == "Interrupted; re-run the same command to converge.\n"
    wait_for_sync(lambda: not _running_on(home, "1", "1234.5"), timeout=30, what="the command to stop")

    # A client killed outright (its terminal closed): the session stops its command on the worker.
    vanished = _long_exec(home, "2", "1234.6")
    vanished.kill()
    vanished.communicate(timeout=60)
    wait_for_sync(lambda: not _running_on(home, "2", "1234.6"), timeout=30, what="the command to stop")
    assert ping(place)["running"] == 0

    # A prompt on a terminal, answered through the session: no, so nothing happens.
    seen, status = _answer_prompt(home, ["kill-node", "sess"], b"n\n")
    assert b"Terminate a random worker of 'sess'? [y/N]" in seen and b"Aborted." in seen and status == 1
    assert len(cloudtik(home, "worker-ips", "sess").stdout.split()) == 2

    # Bad input: one line, exit 2 (bad input) or 1 (runtime failure); nothing changed.
    for args, code, says in (
        (("scale", "sess", "many"), 2, "'many' is not a valid integer"),
        (("scale", "sess", "9"), 2, "allowed"),
        (("exec", "sess"), 2, "Missing argument 'COMMAND'"),
        (("exec", "sess", "--node", "nosuch", "true"), 1, "no node 'nosuch'"),
    ):
        bad = cloudtik(home, *args)
        assert bad.returncode == code, (args, bad.stderr)
        assert bad.stdout == "" and bad.stderr.count("\n") == 1 and says in bad.stderr, (args, bad.stderr)

    assert the_session(home).pid == session.pid  # one session served the whole journey so far

    # The session dies under a running command: the client says so in one line (exit 1), the command
    # stops on the node (its connection is gone), and the next command gets a new session.
    orphaned = _long_exec(home, "1", "1234.7")
    os.kill(session.pid, signal.SIGKILL)
    _, err = orphaned.communicate(timeout=60)
    assert orphaned.returncode == 1 and err.count("\n") == 1, err
    assert err.startswith("Error: the CLI session ended while running the command"), err
    wait_for_sync(lambda: not _running_on(home, "1", "1234.7"), timeout=30, what="the command to stop")
    replacement = the_session(home)
    assert replacement.pid != session.pid

    # A half-dead head: the session's warm store forwards lead nowhere; it says what the in-process CLI
    # says (exit 1, one line naming the repair). `up` repairs it; the session serves the repaired cluster.
    assert cloudtik(home, "status", "sess").returncode == 0  # the session holds the store's forwards
    _kill_head_services(home)
    served = cloudtik(home, "status", "sess")
    local = cloudtik(home, "status", "sess", extra={"CLOUDTIK_NO_SESSION": "1"})
    assert served.returncode == 1 and served.stderr.count("\n") == 1, served.stderr
    assert "run `cloudtik up` to repair it" in served.stderr, served.stderr
    assert (served.returncode, served.stdout, served.stderr) == (local.returncode, local.stdout, local.stderr)
    repaired = cloudtik(home, "up", "sess", "--yes", "-q")
    assert repaired.returncode == 0, repaired.stderr
    healthy = cloudtik(home, "status", "sess")
    assert healthy.returncode == 0 and "workers ready 2 / desired 2" in healthy.stdout, healthy.stderr
    assert cloudtik(home, "exec", "sess", "--node", "2", "true").returncode == 0
    assert the_session(home).pid == replacement.pid  # no new session: the repaired cluster, served warm

    down = cloudtik(home, "down", "sess", "--yes", "-q")
    assert down.returncode == 0, down.stderr
    assert sessions(home) == [], "the session goes with the last cluster's down"
    assert [p.pid for p in processes_using_home(home)] == [], (
        "so does the virtual hypervisor: nothing is left"
    )
    gone = cloudtik(home, "status", "sess")
    assert gone.returncode == 2 and "no cluster named 'sess'" in gone.stderr
