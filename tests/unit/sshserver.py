"""A minimal real SSH server for tests: runs commands as real processes, serves SFTP from a home dir,
forwards TCP (optionally from its own address, as a node would), and hands out ptys.

`allow_from` makes it accept only connections whose peer ip is that address ("private worker behind the
head"). Every process it starts is killed by process group on `close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import termios
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import asyncssh


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class _HomeSftp(asyncssh.SFTPServer):
    """Relative paths resolve against the server's home, like a login dir (absolute ones are left alone)."""

    home: bytes = b"."

    def map_path(self, path: bytes) -> bytes:
        return path if path.startswith(b"/") else os.path.join(self.home, path)


async def _forward_from(local_ip: str, host: str, port: int) -> asyncssh.SSHForwarder:
    """Like asyncssh's own forwarding, but the outgoing connection is made from `local_ip`."""
    loop = asyncio.get_running_loop()
    try:
        _, peer = await loop.create_connection(asyncssh.SSHForwarder, host, port, local_addr=(local_ip, 0))
    except OSError as exc:
        raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, str(exc)) from None
    return asyncssh.SSHForwarder(peer)


@dataclass
class SshTestServer:
    host: str
    home: Path
    authorized_key: str
    host_key: asyncssh.SSHKey = field(default_factory=lambda: asyncssh.generate_private_key("ssh-ed25519"))
    allow_from: str | None = None  # only this peer ip may connect
    forward_from: str | None = None  # source ip of forwarded (jump) connections
    sftp_base: type[asyncssh.SFTPServer] | None = None  # a subclass of _HomeSftp (e.g. a hostile one)
    port: int = 0
    peers: list[str] = field(default_factory=list)  # peer ip of every accepted connection
    term_sizes: list[tuple[int, int]] = field(default_factory=list)  # (cols, rows) requested, in order
    running: int = 0
    max_running: int = 0
    _acceptor: asyncssh.SSHAcceptor | None = None
    _conns: list[asyncssh.SSHServerConnection] = field(default_factory=list)
    _procs: list[asyncio.subprocess.Process] = field(default_factory=list)

    @property
    def host_key_line(self) -> str:
        return self.host_key.export_public_key("openssh").decode().strip()

    async def start(self, port: int = 0) -> SshTestServer:
        owner = self

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                peer = conn.get_extra_info("peername")[0]
                if owner.allow_from is not None and peer != owner.allow_from:
                    conn.close()  # a private node: only the head may connect
                    return
                owner.peers.append(peer)
                owner._conns.append(conn)

            def connection_requested(
                self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
            ) -> bool | Awaitable[asyncssh.SSHTCPSession[bytes]]:
                if owner.forward_from is None:
                    return True
                # asyncssh accepts its own forwarder here (as it does internally for `True`).
                forwarding = _forward_from(owner.forward_from, dest_host, dest_port)
                return cast("Awaitable[asyncssh.SSHTCPSession[bytes]]", forwarding)

        class Sftp(self.sftp_base or _HomeSftp):  # type: ignore[misc]
            home = str(self.home).encode()

        self._acceptor = await asyncssh.listen(
            self.host,
            port,
            server_factory=Server,
            server_host_keys=[self.host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(self.authorized_key + "\n"),
            process_factory=self._handle,
            sftp_factory=Sftp,
            allow_scp=False,
            line_editor=False,
            encoding=None,
            reuse_address=True,
        )
        self.port = self._acceptor.get_port()
        return self

    async def drop_connections(self) -> None:
        """Close every client connection from the server side (a node rebooting its SSH server)."""
        conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        for conn in conns:
            await conn.wait_closed()

    async def close(self) -> None:
        for proc in self._procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # its own session: the group is exactly its tree
            await proc.wait()
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
        await self.drop_connections()

    # -- sessions -------------------------------------------------------------------------------

    async def _handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        conn = process.channel.get_connection()
        env = {
            **os.environ,
            **{str(k): str(v) for k, v in process.env.items()},
            "HOME": str(self.home),
            "USER": str(process.get_extra_info("username")),
            "SSH_PEER": str(conn.get_extra_info("peername")[0]),
        }
        command = process.command or "exec /bin/sh -i"
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            term = process.get_terminal_type()
            if term:
                env["TERM"] = term
                status = await self._run_pty(process, command, env)
            else:
                status = await self._run_pipes(process, command, env)
            process.exit(status if status >= 0 else 128 - status)
        except (OSError, asyncssh.Error):
            process.close()  # the client went away
        finally:
            self.running -= 1

    async def _spawn(
        self, command: str, env: dict[str, str], stdin: int, stdout: int, stderr: int
    ) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_shell(
            command, stdin=stdin, stdout=stdout, stderr=stderr, cwd=self.home, env=env, start_new_session=True
        )
        self._procs.append(proc)
        return proc

    async def _run_pipes(
        self, process: asyncssh.SSHServerProcess[bytes], command: str, env: dict[str, str]
    ) -> int:
        pipe = asyncio.subprocess.PIPE
        proc = await self._spawn(command, env, stdin=pipe, stdout=pipe, stderr=pipe)
        assert proc.stdin and proc.stdout and proc.stderr

        async def feed(proc_stdin: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncssh.Error):
                while data := await process.stdin.read(65536):
                    proc_stdin.write(data)
                    await proc_stdin.drain()
                proc_stdin.close()

        async def drain(reader: asyncio.StreamReader, writer: asyncssh.SSHWriter[bytes]) -> None:
            while data := await reader.read(65536):
                writer.write(data)

        feeding = asyncio.create_task(feed(proc.stdin))
        try:
            await asyncio.gather(drain(proc.stdout, process.stdout), drain(proc.stderr, process.stderr))
            return await proc.wait()
        finally:
            feeding.cancel()

    async def _run_pty(
        self, process: asyncssh.SSHServerProcess[bytes], command: str, env: dict[str, str]
    ) -> int:
        loop = asyncio.get_running_loop()
        cols, rows = process.get_terminal_size()[:2]
        self.term_sizes.append((cols, rows))
        master, slave = os.openpty()
        set_winsize(slave, rows, cols)
        try:
            proc = await self._spawn(command, env, stdin=slave, stdout=slave, stderr=slave)
        finally:
            os.close(slave)
        output_done = asyncio.Event()

        def on_output() -> None:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""  # EIO: every slave fd is closed, the command and its children exited
            if data:
                process.stdout.write(data)
            else:
                loop.remove_reader(master)
                output_done.set()

        async def feed() -> None:
            while True:
                try:
                    data = await process.stdin.read(65536)
                except asyncssh.TerminalSizeChanged as change:
                    self.term_sizes.append((change.width, change.height))
                    set_winsize(master, change.height, change.width)
                    continue
                if not data:
                    return
                os.write(master, data)

        loop.add_reader(master, on_output)
        feeding = asyncio.create_task(feed())
        try:
            await output_done.wait()
            return await proc.wait()
        finally:
            feeding.cancel()
            loop.remove_reader(master)
            os.close(master)
