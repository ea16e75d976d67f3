"""The SSH channel: commands, file sync, port forwards and interactive sessions on cluster nodes.

Connections are opened once per node and reused (exec on a cached connection costs one channel, a few
ms); a worker is reached through its head (`SshTarget.jump`), exactly as on a cloud with private workers.
A runner belongs to one event loop: its cached connections live there.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import asyncssh

from ..concurrency import gather_bounded
from ..errors import CloudtikError, CommandFailed, NodeUnreachable, Timeout
from ..waiting import wait_for
from . import transfer
from .attach import attach_process
from .connect import describe, open_connection
from .exec import OutputCallback, run_command
from .host_keys import HostKeyStore
from .keys import load_private_key
from .target import CommandResult, SshTarget

__all__ = ["CommandResult", "OutputCallback", "SshRunner", "SshTarget"]

T = TypeVar("T")

# OpenSSH's sshd allows 10 sessions per connection (MaxSessions); more concurrent ones are refused.
MAX_SESSIONS_PER_NODE = 10
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Opening a channel on a cached connection that died unnoticed: reconnect once and retry. Raised before
# anything ran on the node, so retrying cannot run a command twice.
_STALE = (asyncssh.ChannelOpenError, asyncssh.DisconnectError)


def _route(target: SshTarget) -> tuple[object, ...]:
    """What makes a cached connection reusable for `target` (a newly vouched host key does not)."""
    return (target.host, target.port, target.user, _route(target.jump) if target.jump else None)


def with_env(command: str, env: Mapping[str, str]) -> str:
    """Export `env` in the command itself: sshd's AcceptEnv drops most variables sent as SSH env requests.

    The values are visible in the node's process list: pass secrets as `input` or in an uploaded 0600 file.
    """
    for name in env:
        if not _ENV_NAME.match(name):
            raise ValueError(f"invalid environment variable name {name!r}")
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
    return f"export {exports}; {command}" if exports else command


class SshRunner:
    def __init__(
        self,
        private_key: Path,
        host_keys: HostKeyStore,
        *,
        local_addr: str | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self.private_key = private_key
        self.host_keys = host_keys
        self.local_addr = local_addr  # source address of direct connections (a node connecting as itself)
        self.connect_timeout = connect_timeout
        self._client_key: asyncssh.SSHKey | None = None
        self._conns: dict[str, tuple[SshTarget, asyncssh.SSHClientConnection]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}

    async def __aenter__(self) -> SshRunner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- connections ----------------------------------------------------------------------------

    async def connection(self, target: SshTarget) -> asyncssh.SSHClientConnection:
        """The node's connection: cached and reused, reopened when closed; workers through their jump."""
        return await self._connection(target, self.connect_timeout)

    async def _connection(self, target: SshTarget, connect_timeout: float) -> asyncssh.SSHClientConnection:
        conn = self._cached(target)
        if conn is not None:
            return conn
        async with self._locks.setdefault(target.node_id, asyncio.Lock()):
            conn = self._cached(target)  # another task may have connected while we waited
            if conn is not None:
                return conn
            stale = self._conns.pop(target.node_id, None)
            if stale is not None:
                stale[1].close()
            tunnel = await self._connection(target.jump, connect_timeout) if target.jump else None
            if self._client_key is None:
                self._client_key = load_private_key(self.private_key)
            conn = await open_connection(
                target,
                client_key=self._client_key,
                host_keys=self.host_keys,
                tunnel=tunnel,
                local_addr=self.local_addr,
                connect_timeout=connect_timeout,
            )
            self._conns[target.node_id] = (target, conn)
            return conn

    def _cached(self, target: SshTarget) -> asyncssh.SSHClientConnection | None:
        entry = self._conns.get(target.node_id)
        if entry is None or entry[1].is_closed() or _route(entry[0]) != _route(target):
            return None
        return entry[1]

    async def wait_for_ssh(
        self,
        target: SshTarget,
        timeout: float,
        *,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Retry connecting until it works or `timeout` passes (NodeUnreachable with the last error).

        A changed host key is raised at once, never retried. `on_retry(error)` follows each failed try.
        """
        start = time.monotonic()
        deadline = start + timeout
        last: list[BaseException] = []

        async def attempt() -> bool:
            remaining = max(deadline - time.monotonic(), 0.05)
            try:
                await asyncio.wait_for(
                    self._connection(target, min(self.connect_timeout, remaining)), remaining
                )
                return True
            except (NodeUnreachable, asyncio.TimeoutError) as exc:
                last.append(exc.__cause__ or exc)
                del last[:-1]
                if on_retry is not None:
                    on_retry(exc)
                return False

        try:
            what = f"SSH on {target.node_id}"
            _: bool = await wait_for(attempt, timeout=timeout, what=what, max_interval=0.25)
        except Timeout:
            why = describe(last[-1]) if last else "no attempt finished"
            raise NodeUnreachable(
                f"node {target.node_id} at {target.address} not reachable over SSH after "
                f"{time.monotonic() - start:.1f}s; last error: {why}"
            ) from None

    def _slot(self, node_id: str) -> asyncio.Semaphore:
        return self._slots.setdefault(node_id, asyncio.Semaphore(MAX_SESSIONS_PER_NODE))

    async def _on_node(
        self, target: SshTarget, action: Callable[[asyncssh.SSHClientConnection], Awaitable[T]]
    ) -> T:
        """Run `action` in one of the node's session slots; reconnect once if the cached connection died."""
        async with self._slot(target.node_id):
            for attempt in (1, 2):
                conn = await self.connection(target)
                try:
                    return await action(conn)
                except _STALE as exc:
                    self._evict(target.node_id, conn)
                    if attempt == 2:
                        where = f"node {target.node_id} at {target.address}"
                        raise NodeUnreachable(f"{where}: {describe(exc)}") from exc
        raise AssertionError("unreachable")

    def drop(self, node_id: str) -> None:
        """Close the node's cached connection: the next use connects afresh (within `connect_timeout`),
        instead of waiting for keepalives to notice a node that stopped answering."""
        entry = self._conns.pop(node_id, None)
        if entry is not None:
            entry[1].close()

    def _evict(self, node_id: str, conn: asyncssh.SSHClientConnection) -> None:
        entry = self._conns.get(node_id)
        if entry is not None and entry[1] is conn:
            del self._conns[node_id]
        conn.close()

    # -- commands -------------------------------------------------------------------------------

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
        """Run `command` through the login shell. `on_output(node_id, stream, line)` sees lines as they come;
        `check` raises CommandFailed with the output's tail; `timeout` raises Timeout (channel closed)."""
        full = with_env(command, env) if env else command
        stdin = input.encode() if isinstance(input, str) else (input or b"")
        raw = await self._on_node(
            target,
            lambda conn: run_command(
                conn,
                target.node_id,
                full,
                stdin=stdin,
                timeout=timeout,
                on_output=on_output,
                shown_command=command,
            ),
        )
        if check and raw.exit_status != 0:
            raise CommandFailed(target.node_id, command, raw.exit_status, raw.tail)
        return CommandResult(target.node_id, command, raw.exit_status, raw.stdout, raw.stderr)

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
        """`run` on every target, at most `concurrency` at a time; results in target order.

        Every run finishes before the first error (in target order) is raised.
        """
        return await gather_bounded(
            lambda t: self.run(t, command, env=env, check=check, on_output=on_output), targets, concurrency
        )

    # -- files and ports ------------------------------------------------------------------------

    async def upload(self, target: SshTarget, local: Path, remote: str) -> None:
        """Copy a file or directory tree to `remote` (``~/x`` is under the login dir), parents created."""
        if not local.exists() and not local.is_symlink():
            raise CloudtikError(f"upload to {target.node_id}: local path not found: {local}")

        async def copy(conn: asyncssh.SSHClientConnection) -> None:
            try:
                async with conn.start_sftp_client() as sftp:
                    await transfer.upload(sftp, local, remote)
            except (asyncssh.SFTPError, OSError) as exc:
                raise CloudtikError(
                    f"{target.node_id}: upload {local} -> {remote} failed: {describe(exc)}"
                ) from exc

        await self._on_node(target, copy)

    async def download(self, target: SshTarget, remote: str, local: Path) -> None:
        """Copy a remote file or directory tree to `local`, parents created."""

        async def copy(conn: asyncssh.SSHClientConnection) -> None:
            try:
                async with conn.start_sftp_client() as sftp:
                    await transfer.download(sftp, remote, local)
            except (asyncssh.SFTPError, OSError) as exc:
                raise CloudtikError(
                    f"{target.node_id}: download {remote} -> {local} failed: {describe(exc)}"
                ) from exc

        await self._on_node(target, copy)

    async def forward_local_port(
        self, target: SshTarget, remote_host: str, remote_port: int, local_port: int = 0
    ) -> asyncssh.SSHListener:
        """Listen on 127.0.0.1:`local_port` (0: any free port, see ``get_port()``) and forward each
        connection to `remote_host`:`remote_port` as seen from the node. Close the listener to stop."""
        conn = await self.connection(target)
        try:
            return await conn.forward_local_port("127.0.0.1", local_port, remote_host, remote_port)
        except OSError as exc:
            raise CloudtikError(f"cannot listen on 127.0.0.1:{local_port}: {describe(exc)}") from exc

    async def forward_local_path(
        self, target: SshTarget, remote_host: str, remote_port: int, path: Path
    ) -> asyncssh.SSHListener:
        """Listen on the Unix socket `path` (0600; keep it in a 0700 directory) and forward each connection
        to `remote_host`:`remote_port` as seen from the node: unlike a 127.0.0.1 port, only this user can
        connect. Close the listener to stop (the socket file is removed)."""
        conn = await self.connection(target)
        try:
            listener = await conn.forward_local_path_to_port(str(path), remote_host, remote_port)
        except OSError as exc:
            raise CloudtikError(f"cannot listen on {path}: {describe(exc)}") from exc
        path.chmod(0o600)
        return listener

    async def attach(
        self,
        target: SshTarget,
        command: str | None = None,
        *,
        tty_in: int = 0,
        tty_out: int = 1,
        tty_err: int = 2,
    ) -> int:
        """Interactive session on the node (a login shell when `command` is None); returns its exit status."""
        async with self._slot(target.node_id):  # not retried: the user may already have typed into it
            conn = await self.connection(target)
            return await attach_process(conn, command, tty_in=tty_in, tty_out=tty_out, tty_err=tty_err)

    async def close(self) -> None:
        """Close every connection (workers before the heads they tunnel through)."""
        conns = [conn for _, conn in reversed(list(self._conns.values()))]
        self._conns.clear()
        for conn in conns:
            conn.close()
        for conn in conns:
            await conn.wait_closed()
