"""What every detached process of ours does first (the hypervisor, virtual nodes, node agents)."""

from __future__ import annotations

import os
from pathlib import Path


def redirect_stdio(log_path: Path) -> None:
    """stdin from /dev/null, stdout and stderr appended to `log_path` (0600): a detached process must not
    hold the terminal or an SSH session's pipes open."""
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.close(null_fd)
