"""One small exception hierarchy; front ends map it to a one-line message and an exit code."""

from __future__ import annotations


class CloudtikError(Exception):
    """Base of every error a user can act on."""

    exit_code = 1


def _one_line(text: str, limit: int) -> str:
    """Input quoted back to the user stays one short line, whatever the input was."""
    flat = " ".join(text.split("\n"))
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class ConfigError(CloudtikError):
    """Bad input. `path` is the dotted key path (``available_node_types.worker.max_workers``).

    Path and message are kept to one short line: they may quote hostile input."""

    exit_code = 2

    def __init__(self, path: str, message: str) -> None:
        self.path = _one_line(path, 200)
        self.message = _one_line(message, 600)
        super().__init__(f"{self.path}: {self.message}" if self.path else self.message)


class ClusterNotFound(CloudtikError):
    exit_code = 2


class ProviderError(CloudtikError):
    """The Cloud API channel failed (or refused)."""


class NodeUnreachable(CloudtikError):
    """SSH to a node could not be established before the deadline."""


class CannotConnect(NodeUnreachable):
    """No SSH connection could be made at all: nothing ran on the node (safe to retry elsewhere)."""


class HostKeyChanged(CloudtikError):
    """A node presented a host key other than the one pinned for it: never ignored."""


class CommandFailed(CloudtikError):
    """A command on a node exited non-zero."""

    def __init__(self, node: str, command: str, exit_status: int, output_tail: str = "") -> None:
        self.node = node
        self.command = command
        self.exit_status = exit_status
        self.output_tail = output_tail
        tail = f"\n{output_tail.rstrip()}" if output_tail.strip() else ""
        super().__init__(f"{node}: command {command!r} exited with {exit_status}{tail}")


class Cancelled(CloudtikError):
    """The user (Ctrl-C, a stop button, an API cancel) stopped the work; a re-run converges."""

    exit_code = 130


class Busy(CloudtikError):
    """Someone else is changing the same thing right now (a lock is held); nothing was done."""


class Timeout(CloudtikError):
    """A wait ran out of time; the message says what it waited for."""
