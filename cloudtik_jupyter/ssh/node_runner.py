"""The command channel's contract: what the updater, the API and the controller use to run commands,
move files and forward ports on a node, whatever runs them (the node itself over SSH, or its container:
container/runner.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import asyncssh

from .exec import OutputCallback
from .host_keys import HostKeyStore
from .target import CommandResult, SshTarget


class NodeRunner(Protocol):
    """The node's command channel, as the updater and the API use it."""

    @property
    def host_keys(self) -> HostKeyStore: ...

    async def prepare(
        self, target: SshTarget, env: Mapping[str, str], *, kind: str, node_type: str
    ) -> str | None: ...  # ready the node for its commands; says what it did, if anything

    async def wait_for_ssh(self, target: SshTarget, timeout: float) -> None: ...

    async def run(
        self,
        target: SshTarget,
        command: str,
        *,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
        input: str | bytes | None = None,
    ) -> CommandResult: ...

    async def run_many(
        self,
        targets: Sequence[SshTarget],
        command: str,
        *,
        concurrency: int = 16,
        env: Mapping[str, str] | None = None,
        check: bool = False,
        on_output: OutputCallback | None = None,
    ) -> list[CommandResult]: ...

    async def upload(self, target: SshTarget, local: Path, remote: str) -> None: ...

    async def download(self, target: SshTarget, remote: str, local: Path) -> None: ...

    async def forward_local_port(
        self, target: SshTarget, remote_host: str, remote_port: int, local_port: int = 0
    ) -> asyncssh.SSHListener: ...

    async def forward_local_path(
        self, target: SshTarget, remote_host: str, remote_port: int, path: Path
    ) -> asyncssh.SSHListener: ...  # a 0600 Unix socket instead of a 127.0.0.1 port

    async def attach(
        self,
        target: SshTarget,
        command: str | None = None,
        *,
        tty_in: int = 0,
        tty_out: int = 1,
        tty_err: int = 2,
    ) -> int: ...

    async def close(self) -> None: ...
