"""Terminal rendering of progress and status (rich is imported only by commands that draw)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..cluster.progress import ProgressEvent

if TYPE_CHECKING:
    from rich.console import Console

    from ..records.cluster import ClusterInfo, ClusterStatus

_STYLE = {"up-to-date": "green", "failed": "red", "terminate": "yellow"}


class ProgressPrinter:
    """One line per event, prefixed with elapsed time and node."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()

    def __call__(self, event: ProgressEvent) -> None:
        who = f"{event.node_kind or ''} {event.node_id}".strip() if event.node_id else "cluster"
        style = _STYLE.get(event.phase, "cyan")
        elapsed = event.at - self.started
        self.console.print(
            f"[dim]{elapsed:6.2f}s[/] [{style}]{event.phase:>14}[/] [bold]{who}[/]: {event.message}"
        )


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"


def _memory(used: int | None, total: int | None) -> str:
    if not used or not total:
        return "-"
    return f"{used / 2**30:.1f}/{total / 2**30:.1f} GiB"


def status_table(status: ClusterStatus) -> object:
    from rich.table import Table

    table = Table(title=f"{status.name} ({status.provider})", title_justify="left")
    for column in ("seq", "node", "kind", "type", "address", "status", "heartbeat", "cpu", "memory"):
        table.add_column(column)
    for n in status.nodes:
        style = "green" if n.status == "up-to-date" else "red" if n.status == "update-failed" else "yellow"
        address = n.internal_ip
        if n.external_ip and n.external_ip != n.internal_ip:
            address = f"{n.external_ip} / {n.internal_ip}"
        cpu = "-" if n.cpu_percent is None else f"{n.cpu_percent:.0f}%"
        table.add_row(
            str(n.seq),
            n.node_id,
            n.kind,
            n.node_type,
            address,
            f"[{style}]{n.status}[/]",
            _age(n.heartbeat_age),
            cpu,
            _memory(n.memory_used, n.memory_total),
        )
    table.caption = (
        f"workers ready {status.workers_ready} / desired {status.workers_desired} "
        f"(min {status.workers_min}, max {status.workers_max})"
    )
    return table


def info_lines(info: ClusterInfo) -> list[str]:
    lines = [
        f"cluster:  {info.name} ({info.provider})",
        f"head:     {info.head_ip or '-'}",
        f"workers:  {', '.join(info.worker_ips) or '-'}",
    ]
    for link in info.links:
        lines.append(f"{link.name}: {link.url}")
    lines.append(f"attach:   cloudtik attach {info.name}")
    lines.append(f"stop:     cloudtik down {info.name} --yes")
    return lines
