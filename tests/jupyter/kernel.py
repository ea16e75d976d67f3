"""A real IPython kernel (ipykernel over ZMQ, as a notebook frontend drives it) for journey tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from cloudtik_jupyter.waiting import wait_for_sync


@dataclass
class Cell:
    """What one execution sent back."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    status: str = ""

    @property
    def error(self) -> dict[str, Any] | None:
        return next((m["content"] for m in self.messages if m["msg_type"] == "error"), None)

    @property
    def error_text(self) -> str:
        error = self.error
        return "\n".join(error["traceback"]) if error else ""

    @property
    def stderr(self) -> str:
        return "".join(
            m["content"]["text"]
            for m in self.messages
            if m["msg_type"] == "stream" and m["content"]["name"] == "stderr"
        )

    @property
    def stdout(self) -> str:
        return "".join(
            m["content"]["text"]
            for m in self.messages
            if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
        )

    def texts(self, mime: str = "text/plain") -> list[str]:
        """Every display / result / progress update of `mime`, in order."""
        kinds = ("execute_result", "display_data", "update_display_data")
        return [
            m["content"]["data"][mime]
            for m in self.messages
            if m["msg_type"] in kinds and mime in m["content"]["data"]
        ]

    @property
    def result(self) -> str:
        """The cell's value as text/plain ('' when it has none)."""
        return next(
            (m["content"]["data"]["text/plain"] for m in self.messages if m["msg_type"] == "execute_result"),
            "",
        )


class Kernel:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env, cwd=str(cwd))
        self.client: BlockingKernelClient = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(
        self, code: str, timeout: float = 180, on_message: Callable[[dict[str, Any]], None] | None = None
    ) -> Cell:
        cell = Cell()

        def hook(msg: dict[str, Any]) -> None:
            cell.messages.append(msg)
            if on_message is not None:
                on_message(msg)

        reply = self.client.execute_interactive(code, timeout=timeout, output_hook=hook, allow_stdin=False)
        cell.status = reply["content"]["status"]
        return cell

    def ok(self, code: str, timeout: float = 180) -> Cell:
        cell = self.run(code, timeout)
        assert cell.status == "ok", f"{code!r} failed:\n{cell.error_text}"
        return cell

    def interrupted(self, code: str, when: Callable[[Cell], bool], timeout: float = 120) -> Cell:
        """Run `code` and press the stop button once `when(cell so far)` holds."""
        partial = Cell()
        error: list[BaseException] = []

        def press() -> None:
            try:
                wait_for_sync(lambda: when(partial), timeout=timeout, what="the moment to interrupt")
                self.manager.interrupt_kernel()
            except BaseException as exc:  # reported below
                error.append(exc)

        presser = threading.Thread(target=press, daemon=True)
        presser.start()
        cell = self.run(code, timeout, on_message=partial.messages.append)
        presser.join(timeout=30)
        if error:
            raise error[0]
        return cell

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)
