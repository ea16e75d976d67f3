"""How API results look in a notebook: small pure functions from records to HTML and to plain text.

Every value that reaches HTML is escaped here; widgets and formatters only place the strings.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from .links import link_hrefs

if TYPE_CHECKING:
    from ..records.cluster import ClusterInfo, ClusterStatus, ClusterSummary, NodeRow, ServiceLink

GIB = 1024**3
STATUS_COLORS = {"up-to-date": "#1a7f37", "failed": "#cf222e", "lost": "#cf222e"}
PENDING_COLOR = "#9a6700"
TABLE_STYLE = "border-collapse:collapse;font-family:var(--jp-code-font-family,monospace);font-size:12px"
CELL_STYLE = "padding:2px 10px;text-align:left;border-bottom:1px solid #d0d7de"


@dataclass(frozen=True)
class RowCells:
    """One node as the table shows it (display strings)."""

    seq: int
    node_id: str
    kind: str
    node_type: str
    address: str
    status: str
    heartbeat: str
    cpu: str
    cpu_trend: str  # a sparkline of the last samples
    memory: str
    memory_trend: str


COLUMNS: tuple[tuple[str, str], ...] = (
    ("seq", "#"),
    ("node_id", "node"),
    ("kind", "kind"),
    ("node_type", "type"),
    ("address", "address"),
    ("status", "status"),
    ("heartbeat", "heartbeat"),
    ("cpu", "cpu"),
    ("cpu_trend", "cpu, last min"),
    ("memory", "memory"),
    ("memory_trend", "memory, last min"),
)
SPARK_LEVELS = "▁▂▃▄▅▆▇█"
SPARK_POINTS = 20


def fmt_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f} s ago"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    return f"{seconds / 60:.0f} min ago"


def fmt_cpu(percent: float | None) -> str:
    return "-" if percent is None else f"{percent:.0f}%"


def fmt_memory(used: int | None, total: int | None) -> str:
    if used is None or total is None:
        return "-"
    return f"{used / GIB:.1f} / {total / GIB:.1f} GiB"


def sparkline(values: Sequence[float], top: float) -> str:
    """The last `SPARK_POINTS` values as block characters, 0..`top` (works in HTML and in plain text)."""
    if not values or top <= 0:
        return ""
    last = len(SPARK_LEVELS) - 1
    return "".join(SPARK_LEVELS[min(last, max(0, round(v / top * last)))] for v in values[-SPARK_POINTS:])


def fmt_clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))


def row_cells(row: NodeRow) -> RowCells:
    public = f" (public {row.external_ip})" if row.external_ip and row.external_ip != row.internal_ip else ""
    return RowCells(
        seq=row.seq,
        node_id=row.node_id,
        kind=row.kind,
        node_type=row.node_type,
        address=row.internal_ip + public,
        status=row.status or "unknown",
        heartbeat=fmt_age(row.heartbeat_age),
        cpu=fmt_cpu(row.cpu_percent),
        cpu_trend=sparkline(row.cpu_history, 100.0),
        memory=fmt_memory(row.memory_used, row.memory_total),
        memory_trend=sparkline(row.memory_history, float(row.memory_total or 0)),
    )


def status_span(status: str) -> str:
    color = STATUS_COLORS.get(status, PENDING_COLOR)
    return f'<span style="color:{color};font-weight:600">{escape(status)}</span>'


def nodes_table_html(rows: Sequence[RowCells]) -> str:
    if not rows:
        return "<i>no nodes</i>"
    head = "".join(f'<th style="{CELL_STYLE}">{escape(title)}</th>' for _, title in COLUMNS)
    body = []
    for row in rows:
        cells = []
        for key, _ in COLUMNS:
            value = str(getattr(row, key))
            cells.append(status_span(value) if key == "status" else escape(value))
        body.append("<tr>" + "".join(f'<td style="{CELL_STYLE}">{c}</td>' for c in cells) + "</tr>")
    return f'<table style="{TABLE_STYLE}"><tr>{head}</tr>{"".join(body)}</table>'


def nodes_table_text(rows: Sequence[RowCells]) -> str:
    if not rows:
        return "no nodes"
    grid = [[title for _, title in COLUMNS]] + [[str(getattr(r, key)) for key, _ in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in grid
    )


def workers_line(status: ClusterStatus) -> str:
    return (
        f"workers: {status.workers_ready} ready of {len(status.workers)} "
        f"(min {status.workers_min}, max {status.workers_max})"
    )


def links_html(links: Sequence[ServiceLink], hrefs: Mapping[str, str] | None = None) -> str:
    """Web links open `hrefs[url]` when given (the proxy of this notebook's Jupyter server)."""
    items = []
    for link in links:
        href = (hrefs or {}).get(link.url)
        if href is not None:
            target = (
                f'<a href="{escape(href)}" target="_blank" rel="noopener" title="{escape(link.url)} '
                f'through this Jupyter server">{escape(link.url)}</a>'
            )
        elif link.kind == "web":
            target = f'<a href="{escape(link.url)}" target="_blank" rel="noopener">{escape(link.url)}</a>'
        else:
            target = f"<code>{escape(link.url)}</code>"
        items.append(f"<li>{escape(link.name)}: {target}</li>")
    return f"<ul style='margin:2px 0'>{''.join(items)}</ul>" if items else ""


def links_text(links: Sequence[ServiceLink]) -> str:
    return "\n".join(f"{link.name}: {link.url}" for link in links)


def events_html(lines: Sequence[str]) -> str:
    if not lines:
        return ""
    items = "".join(f"<div>{escape(line)}</div>" for line in lines)
    return f'<div style="font-size:12px;color:#57606a">{items}</div>'


def status_text(status: ClusterStatus) -> str:
    rows = [row_cells(n) for n in status.nodes]
    parts = [f"cluster {status.name} ({status.provider}); {workers_line(status)}", nodes_table_text(rows)]
    if status.links:
        parts.append(links_text(status.links))
    if status.error:
        parts.append(f"Error: {status.error}")
    return "\n".join(parts)


def status_html(status: ClusterStatus) -> str:
    rows = [row_cells(n) for n in status.nodes]
    header = (
        f"<b>{escape(status.name)}</b> ({escape(status.provider)}) &middot; {escape(workers_line(status))}"
    )
    hrefs = link_hrefs(status.name, status.links)
    error = error_html(status.error) if status.error else ""
    return f"<div>{header}{nodes_table_html(rows)}{links_html(status.links, hrefs)}{error}</div>"


def info_text(info: ClusterInfo) -> str:
    lines = [f"cluster {info.name} ({info.provider})", f"head: {info.head_ip or 'not running'}"]
    lines.append(f"workers: {', '.join(info.worker_ips) or 'none'}")
    if info.links:
        lines.append(links_text(info.links))
    return "\n".join(lines)


def info_html(info: ClusterInfo) -> str:
    workers = escape(", ".join(info.worker_ips) or "none")
    return (
        f"<div><b>{escape(info.name)}</b> ({escape(info.provider)})<br>"
        f"head: <code>{escape(info.head_ip or 'not running')}</code><br>workers: <code>{workers}</code>"
        f"{links_html(info.links, link_hrefs(info.name, info.links))}</div>"
    )


def summaries_text(summaries: Sequence[ClusterSummary]) -> str:
    if not summaries:
        return "no clusters"
    return "\n".join(f"{s.name}\t{s.provider}\t{s.workspace}" for s in summaries)


def summaries_html(summaries: Sequence[ClusterSummary]) -> str:
    if not summaries:
        return "<i>no clusters</i>"
    rows = "".join(
        "<tr>"
        + "".join(f'<td style="{CELL_STYLE}">{escape(v)}</td>' for v in (s.name, s.provider, s.workspace))
        + "</tr>"
        for s in summaries
    )
    head = "".join(f'<th style="{CELL_STYLE}">{t}</th>' for t in ("cluster", "provider", "workspace"))
    return f'<table style="{TABLE_STYLE}"><tr>{head}</tr>{rows}</table>'


def error_html(message: str) -> str:
    return f'<span style="color:#cf222e">{escape(message)}</span>' if message else ""
