"""The live view in a real kernel (ipykernel over ZMQ, read as a frontend reads it) keeps updating while a
10 s cell runs: a scale request made elsewhere shows in the view's model, and so does the new worker."""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from cloudtik_jupyter.api import Cluster

pytestmark = pytest.mark.integration

BUSY_SECONDS = 10
UP = """%%cloudtik up --quiet
cluster_name: busy
from: virtual-small
available_node_types: {worker: {min_workers: 1, max_workers: 2}}
"""


@pytest.fixture
def kernel(cloudtik_home: Path) -> Iterator[BlockingKernelClient]:
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env={**os.environ, "CLOUDTIK_HOME": str(cloudtik_home)})
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def run(kc: BlockingKernelClient, code: str, timeout: float = 120) -> str:
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))

    reply = kc.execute_interactive(code, timeout=timeout, output_hook=hook)
    assert reply["content"]["status"] == "ok", "".join(out)
    return "".join(out)


def updates_until_idle(
    kc: BlockingKernelClient, msg_id: str, model_id: str, on_busy: Callable[[], None], timeout: float
) -> tuple[list[tuple[float, dict[str, Any]]], float, float]:
    """Read IOPub until cell `msg_id` is idle: the view's state updates with their arrival times, and when
    the cell started and ended. `on_busy` runs once the cell is running."""
    updates: list[tuple[float, dict[str, Any]]] = []
    started = ended = 0.0
    deadline = time.monotonic() + timeout
    while not ended:
        try:
            msg = kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"cell {msg_id} still running after {timeout:g}s") from None
        now = time.monotonic()
        content = msg["content"]
        mine = msg["parent_header"].get("msg_id") == msg_id
        if msg["msg_type"] == "execute_input" and mine:
            started = now
            on_busy()
        elif msg["msg_type"] == "status" and mine and content["execution_state"] == "idle":
            ended = now
        elif (
            msg["msg_type"] == "comm_msg"
            and content.get("comm_id") == model_id
            and content["data"].get("method") == "update"
        ):
            updates.append((now, content["data"]["state"]))
    return updates, started, ended


def test_the_view_advances_while_a_ten_second_cell_runs(
    kernel: BlockingKernelClient, cloudtik_home: Path
) -> None:
    run(kernel, "%load_ext cloudtik_jupyter")
    run(kernel, UP)
    model_id = run(kernel, "view = %cloudtik status busy\nprint(view.model_id)").strip()
    asked: list[float] = []

    def scale_from_elsewhere() -> None:  # e.g. the panel or a terminal, while the notebook is busy
        cluster = Cluster("busy")
        try:
            cluster.scale(2, wait=False)
            asked.append(time.monotonic())
        finally:
            cluster.close()

    cell = kernel.execute(f"import time\ntime.sleep({BUSY_SECONDS})")
    updates, started, ended = updates_until_idle(
        kernel, cell, model_id, scale_from_elsewhere, timeout=BUSY_SECONDS + 60
    )
    assert ended - started > BUSY_SECONDS - 0.5  # (arrival times: the kernel's clock is not ours)
    during = [(at, state) for at, state in updates if started < at < ended]
    desired = [at for at, state in during if state.get("workers_desired") == 2]
    assert desired, f"the scale request never reached the frontend during the cell: {updates}"
    assert desired[0] - asked[0] < BUSY_SECONDS / 2  # seen soon, not at the end of the cell
    grown = [at for at, state in during if len(state.get("rows", [])) == 3]
    assert grown, "the new worker's row never reached the frontend during the cell"
    run(kernel, "view.close()\n%cloudtik down busy --quiet")
