"""What the runner connects to and what a command returns (re-exported by ``ssh.runner``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SshTarget:
    """One node's SSH endpoint. A worker behind the head names the head as `jump`.

    `host_key` is the node's OpenSSH public host key when the provider can vouch for it: then it is the only
    key accepted on first contact.
    """

    node_id: str
    host: str
    port: int
    user: str
    jump: SshTarget | None = None
    host_key: str | None = None

    @property
    def address(self) -> str:
        """``host:port`` plus the jump, for messages."""
        via = f" via {self.jump.node_id} ({self.jump.host}:{self.jump.port})" if self.jump else ""
        return f"{self.host}:{self.port}{via}"


@dataclass(frozen=True)
class CommandResult:
    node_id: str
    command: str
    exit_status: int  # 128 + signal number when killed by a signal, 255 when unknown (as ssh(1))
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0
