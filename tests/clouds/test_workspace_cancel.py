"""Cancellation is real, and one create or delete runs at a time.

`cloudtik workspace create` (a real process against moto) is interrupted with SIGINT at every step,
while that step's first cloud call is on the wire (the moto gate holds it): the process stops after
that call, makes no other (but releasing its lock), says so and exits 130; a second create meanwhile
is refused, from this machine and from another. The same through the API (`Workspace.cancel()` from
another thread, and cancelling the async twin's task), and a re-run always converges.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_inventory import EXPECTED_PUBLIC, counts, leaks, region_inventory, workspace_inventory
from conftest import MotoAws

from cloudtik_jupyter.api.workspace import Workspace
from cloudtik_jupyter.errors import Busy, Cancelled

# Each step of `create` (public mode) and the first call it makes, in a run that resumes the previous.
CREATE_STEPS = [
    ("VPC", "ec2.CreateVpc"),
    ("internet gateway", "ec2.CreateInternetGateway"),
    ("subnets", "ec2.CreateSubnet"),
    ("public route table", "ec2.CreateRouteTable"),
    ("NAT gateway", "ec2.AllocateAddress"),
    ("private route table", "ec2.CreateRouteTable"),
    ("S3 endpoint", "ec2.CreateVpcEndpoint"),
    ("security group", "ec2.CreateSecurityGroup"),
    ("EC2 Spot service-linked role", "iam.CreateServiceLinkedRole"),
    ("IAM roles and instance profiles", "iam.CreateRole"),
    ("bucket", "s3.PUT"),
]
DELETE_STEPS = [
    ("bucket", "s3.DELETE"),
    ("IAM roles and instance profiles", "iam.RemoveRoleFromInstanceProfile"),
    ("VPC peering", None),  # public mode: nothing to delete, no call
    ("security group", "ec2.DeleteSecurityGroup"),
    ("S3 endpoint", "ec2.DeleteVpcEndpoints"),
    ("private route table", "ec2.DisassociateRouteTable"),
    ("NAT gateway", "ec2.DeleteNatGateway"),
    ("public route table", "ec2.DisassociateRouteTable"),
    ("subnets", "ec2.DeleteSubnet"),
    ("internet gateway", "ec2.DetachInternetGateway"),
    ("VPC", "ec2.DeleteVpc"),
]
SIGINT_DELETE_STEPS = ["bucket", "NAT gateway", "VPC"]  # each CLI run costs seconds: a sample here
RELEASE = {"ec2.DeleteKeyPair"}  # the only call allowed after an interrupted one: the lock's release


class Cli:
    """`cloudtik workspace ...` as a running process whose output lines arrive in a queue."""

    def __init__(self, *args: str, home: Path | None = None) -> None:
        env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
        if home is not None:
            env["CLOUDTIK_HOME"] = str(home)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cloudtik_jupyter.cli", "workspace", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.out: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.append(line)
            self.lines.put(line)

    def wait_line(self, text: str, timeout: float = 180) -> str:
        while True:
            line = self.lines.get(timeout=timeout)
            if text in line:
                return line

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code, "".join(self.out), err


def _run(*args: str, home: Path | None = None) -> tuple[int, str, str]:
    return Cli(*args, home=home).finish()


def _steps(out: str, verb: str) -> list[str]:
    return [line.split(verb, 1)[1].strip() for line in out.splitlines() if f" {verb} " in line]


@pytest.fixture
def config(aws: MotoAws, tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "ws.yaml"
    path.write_text(yaml.safe_dump(aws.config_dict("ws")))
    yield str(path)
    aws.gate.open()


def _interrupt(aws: MotoAws, cli: Cli, call: str) -> tuple[int, str, str, list[str]]:
    """SIGINT while `call` is on the wire; let it finish once the CLI says it is stopping."""
    assert aws.gate.held.wait(180), f"{call} never came"
    sent = len(aws.gate.log)
    cli.proc.send_signal(signal.SIGINT)
    cli.wait_line("stopping after the cloud call in flight")
    aws.gate.open()
    code, out, err = cli.finish()
    return code, out, err, aws.gate.log[sent:]


def test_sigint_at_every_step_stops_within_one_call_and_the_rerun_converges(
    aws: MotoAws, config: str, tmp_path: Path
) -> None:
    c = aws.clients()
    before = region_inventory(c)
    for step, call in CREATE_STEPS:
        aws.gate.arm(call)
        cli = Cli("create", config, "--yes")
        if step == "NAT gateway":  # meanwhile a second create is refused, here and from elsewhere
            aws.gate.held.wait(180)
            code, _, err = _run("create", config, "--yes")
            assert code == 1 and f"a create by process {cli.proc.pid}" in err and "on this machine" in err
            code, _, err = _run("create", config, "--yes", home=tmp_path / "another-machine")
            assert code == 1 and f"a create by process {cli.proc.pid}" in err and "in the cloud" in err
        code, out, err, after = _interrupt(aws, cli, call)
        assert code == 130, err
        assert "Interrupted" in err and "Traceback" not in err
        assert _steps(out, "creating")[-1] == step  # no step began after the interrupt
        assert set(after) <= RELEASE, after  # and no cloud call after the one in flight
    code, out, err = _run("create", config, "--yes")
    assert code == 0, err
    assert counts(workspace_inventory(c, "ws")) == EXPECTED_PUBLIC  # nothing missing, nothing twice

    for step, call in DELETE_STEPS:
        if step not in SIGINT_DELETE_STEPS or call is None:
            continue
        aws.gate.arm(call)
        code, out, err, after = _interrupt(aws, Cli("delete", "ws", "--yes"), call)
        assert code == 130, err
        assert _steps(out, "deleting")[-1] == step
        assert set(after) <= RELEASE, after
    code, out, err = _run("delete", "ws", "--yes")
    assert code == 0, err
    assert leaks(before, region_inventory(c)) == {}


def _in_thread(fn: Any) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def _cancel_while_held(aws: MotoAws, ws: Workspace, action: Any, call: str | None) -> list[str]:
    """Run `action` in a thread, cancel it from here while `call` is on the wire (or, for a step that
    makes no call, as it starts); returns the calls made after that."""
    if call is not None:
        aws.gate.arm(call)
    thread, errors = _in_thread(action)
    if call is not None:
        assert aws.gate.held.wait(180)
    sent = len(aws.gate.log)
    ws.cancel()
    aws.gate.open()
    thread.join(180)
    assert not thread.is_alive()  # the call returned: its worker is done
    assert len(errors) == 1 and isinstance(errors[0], Cancelled), errors
    assert "re-run it to converge" in str(errors[0])
    return aws.gate.log[sent:]


def test_api_cancel_at_every_step_stops_within_one_call(aws: MotoAws) -> None:
    c = aws.clients()
    before = region_inventory(c)
    events: list[str] = []
    ws = Workspace(aws.config_dict("ws"), progress=events.append)
    for step, call in CREATE_STEPS:
        events.clear()
        assert set(_cancel_while_held(aws, ws, ws.create, call)) <= RELEASE
        assert [e for e in events if e.startswith("creating ")][-1] == f"creating {step}"
    ws.create()
    assert counts(workspace_inventory(c, "ws")) == EXPECTED_PUBLIC

    for step, call in DELETE_STEPS:
        events.clear()
        if call is None:  # no call to hold: cancel as the step begins, from the progress sink

            def progress(message: str, step: str = step) -> None:
                events.append(message)
                if message == f"deleting {step}":
                    ws.cancel()

            ws.progress = ws.provider._progress = progress  # type: ignore[attr-defined]
            with pytest.raises(Cancelled):
                ws.delete()
            ws.progress = ws.provider._progress = events.append  # type: ignore[attr-defined]
        else:
            assert set(_cancel_while_held(aws, ws, ws.delete, call)) <= RELEASE
        assert [e for e in events if e.startswith("deleting ")][-1] == f"deleting {step}"
    report = ws.delete()
    assert leaks(before, region_inventory(c)) == {}
    assert report.removed == []  # the VPC's delete was in flight when cancelled: it went through


async def test_cancelling_the_async_task_waits_for_the_worker(aws: MotoAws) -> None:
    """What a notebook's stop button does to an awaited create: the task ends only with its worker."""
    c = aws.clients()
    ws = Workspace(aws.config_dict("ws"))
    aws.gate.arm("ec2.CreateSubnet")
    task = asyncio.create_task(ws.create_async())
    assert await asyncio.to_thread(aws.gate.held.wait, 60)
    sent = len(aws.gate.log)
    task.cancel()
    await asyncio.sleep(0)  # let the task see its cancellation (the worker is still held)
    assert not task.done()  # it waits for the worker...
    aws.gate.open()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert set(aws.gate.log[sent:]) <= RELEASE  # ...which stopped after the call in flight
    ws.create()
    assert counts(workspace_inventory(c, "ws")) == EXPECTED_PUBLIC
    ws.delete()


def test_a_second_create_in_the_same_process_is_refused(aws: MotoAws) -> None:
    ws = Workspace(aws.config_dict("ws"))
    aws.gate.arm("ec2.CreateVpc")
    thread, errors = _in_thread(ws.create)
    assert aws.gate.held.wait(180)
    other = aws.config_dict("ws", allowed_ssh_cidrs=["198.51.100.0/24"])
    with pytest.raises(Busy, match="is being changed by a create by process"):
        Workspace(other).create()  # a notebook's re-run (edited) while the first still runs
    assert Workspace("ws").config == ws.config  # the refused one did not overwrite the record
    aws.gate.open()
    thread.join(180)
    assert errors == []
    Workspace("ws").delete()


def test_virtual_cancel_at_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDTIK_HOME", str(tmp_path / "home"))
    for verb, steps in (("creating", ["address block", "SSH key pair"]), ("deleting", ["SSH key pair"])):
        for step in steps:
            ws = Workspace({"workspace_name": "lab"})
            done: list[str] = []

            def progress(
                message: str, at: str = f"{verb} {step}", ws: Workspace = ws, done: list[str] = done
            ) -> None:
                done.append(message)
                if message == at:
                    ws.cancel()

            ws.progress = progress
            with pytest.raises(Cancelled):
                ws.create() if verb == "creating" else ws.delete()
            assert [m for m in done if m.startswith(verb)][-1] == f"{verb} {step}"
        Workspace({"workspace_name": "lab"}).create()  # converges
    assert Workspace("lab").status().ready
    Workspace("lab").delete()
    assert not (tmp_path / "home" / "workspaces" / "lab").exists()


def test_a_notebooks_stop_button_stops_the_create_and_the_rerun_converges(aws: MotoAws) -> None:
    """In a real kernel: the stop button (an interrupt) while a create's call is on the wire ends the
    cell with KeyboardInterrupt once that call returned, and nothing runs after; running the cell again
    converges."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        cell = (
            "from cloudtik_jupyter.api.workspace import Workspace\n"
            f"ws = Workspace({aws.config_dict('ws')!r}, progress=print)\n"
            "ws.create()"
        )
        aws.gate.arm("ec2.CreateRouteTable")
        msg_id = kc.execute(cell)
        assert aws.gate.held.wait(120)
        sent = len(aws.gate.log)
        km.interrupt_kernel()  # what the stop button does
        while not any("stopping after the cloud call in flight" in line for line in _stream(kc, msg_id)):
            pass
        aws.gate.open()
        reply = kc.get_shell_msg(timeout=120)
        while reply["parent_header"].get("msg_id") != msg_id:  # the kernel_info of the start
            reply = kc.get_shell_msg(timeout=120)
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        assert set(aws.gate.log[sent:]) <= RELEASE  # the worker stopped after the call in flight

        again = kc.execute_interactive("ws.create()", timeout=180)  # the same cell, run again
        assert again["content"]["status"] == "ok"
        assert counts(workspace_inventory(aws.clients(), "ws")) == EXPECTED_PUBLIC
        assert kc.execute_interactive("ws.delete()", timeout=180)["content"]["status"] == "ok"
    finally:
        aws.gate.open()
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _stream(kc: Any, msg_id: str) -> list[str]:
    """The stream output of `msg_id` that arrives next (one message)."""
    msg = kc.get_iopub_msg(timeout=60)
    if msg["parent_header"].get("msg_id") != msg_id or msg["msg_type"] != "stream":
        return []
    return str(msg["content"]["text"]).splitlines()
