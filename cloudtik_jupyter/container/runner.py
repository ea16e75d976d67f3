"""Where a node's commands run: on the node itself (host mode) or in its container (``docker.enabled``).

Both runners fulfil the command channel's contract (`ssh.node_runner.NodeRunner`): the SSH runner's
interface plus `prepare`, the step the updater takes after the initialization commands (which always run
on the node itself, through the plain SSH runner).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import asyncssh

from ..concurrency import gather_bounded
from ..config.schema import ClusterConfig
from ..errors import CommandFailed
from ..ssh.exec import OutputCallback
from ..ssh.host_keys import HostKeyStore
from ..ssh.node_runner import NodeRunner
from ..ssh.runner import SshRunner, with_env
from ..ssh.target import CommandResult, SshTarget
from . import scripts
from .lifecycle import ensure_container
from .spec import container_name, container_spec


class HostRunner(SshRunner):
    """Host mode: commands run on the node itself, through SSH."""

    async def prepare(
        self, target: SshTarget, env: Mapping[str, str], *, kind: str, node_type: str
    ) -> str | None:
        # A node set up in container mode before: its container goes, services start on the node again.
        await self.run(target, scripts.leave_container_script(), check=True)
        return None


class ContainerRunner:
    """Container mode: `docker exec` / `docker cp` on the node, through its SSH runner.

    The node's home is the container's home (same path, bind-mounted), so paths under ``~`` (cluster
    state, most uploads) are copied over SFTP directly; others go through ``docker cp``. Host networking
    keeps port forwards as they are.
    """

    def __init__(self, config: ClusterConfig, ssh: SshRunner) -> None:
        self.config = config
        self.ssh = ssh

    @property
    def host_keys(self) -> HostKeyStore:
        return self.ssh.host_keys

    def container(self, target: SshTarget) -> str:
        return container_name(self.config.cluster_name, target.node_id)

    async def prepare(
        self, target: SshTarget, env: Mapping[str, str], *, kind: str, node_type: str
    ) -> str | None:
        spec = container_spec(self.config, target.node_id, kind, node_type, env)
        started = await ensure_container(self.ssh, target, spec, env)
        return started.describe()

    async def wait_for_ssh(self, target: SshTarget, timeout: float) -> None:
        await self.ssh.wait_for_ssh(target, timeout)

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
    ) -> CommandResult:
        # The variables are exported inside the container, not on the node's `docker exec` line.
        inner = with_env(command, env) if env else command
        wrapped = scripts.exec_command(self.container(target), inner)
        try:
            result = await self.ssh.run(
                target, wrapped, check=check, timeout=timeout, on_output=on_output, input=input
            )
        except CommandFailed as exc:
            raise CommandFailed(exc.node, command, exc.exit_status, exc.output_tail) from None
        return CommandResult(result.node_id, command, result.exit_status, result.stdout, result.stderr)

    async def run_many(
        self,
        targets: Sequence[SshTarget],
        command: str,
        *,
        concurrency: int = 16,
        env: Mapping[str, str] | None = None,
        check: bool = False,
        on_output: OutputCallback | None = None,
    ) -> list[CommandResult]:
        return await gather_bounded(
            lambda t: self.run(t, command, env=env, check=check, on_output=on_output), targets, concurrency
        )

    async def upload(self, target: SshTarget, local: Path, remote: str) -> None:
        if scripts.in_home(remote):
            await self.ssh.upload(target, local, remote)
            return
        staged = f"{scripts.STATE_DIR}/upload-{uuid.uuid4().hex}"
        await self.ssh.upload(target, local, staged)
        copy = scripts.copy_in_script(self.container(target), staged, remote, local.is_dir())
        await self.ssh.run(target, copy, check=True)

    async def download(self, target: SshTarget, remote: str, local: Path) -> None:
        if scripts.in_home(remote):
            await self.ssh.download(target, remote, local)
            return
        staged = f"{scripts.STATE_DIR}/download-{uuid.uuid4().hex}"
        await self.ssh.run(
            target, scripts.copy_out_script(self.container(target), remote, staged), check=True
        )
        try:
            await self.ssh.download(target, staged, local)
        finally:
            await self.ssh.run(target, f"rm -rf {scripts.shell_path(staged)}", check=False)

    async def forward_local_port(
        self, target: SshTarget, remote_host: str, remote_port: int, local_port: int = 0
    ) -> asyncssh.SSHListener:
        return await self.ssh.forward_local_port(target, remote_host, remote_port, local_port)

    async def forward_local_path(
        self, target: SshTarget, remote_host: str, remote_port: int, path: Path
    ) -> asyncssh.SSHListener:
        return await self.ssh.forward_local_path(target, remote_host, remote_port, path)

    async def attach(
        self,
        target: SshTarget,
        command: str | None = None,
        *,
        tty_in: int = 0,
        tty_out: int = 1,
        tty_err: int = 2,
    ) -> int:
        inner = command if command is not None else "exec /bin/bash -l"
        wrapped = scripts.exec_command(self.container(target), inner, tty_if_terminal=True)
        return await self.ssh.attach(target, wrapped, tty_in=tty_in, tty_out=tty_out, tty_err=tty_err)

    async def close(self) -> None:
        await self.ssh.close()


def node_runner(config: ClusterConfig, ssh: HostRunner) -> NodeRunner:
    """The runner for the cluster's nodes: `ssh` itself in host mode, its container wrapper otherwise."""
    return ContainerRunner(config, ssh) if config.docker.enabled else ssh
