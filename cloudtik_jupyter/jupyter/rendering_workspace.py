"""How a workspace's status looks in a notebook (HTML and plain text); values escaped here."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from .rendering import CELL_STYLE, STATUS_COLORS, TABLE_STYLE

if TYPE_CHECKING:
    from ..api.workspace import WorkspaceStatus


def _caption(status: WorkspaceStatus) -> str:
    state = "ready" if status.ready else f"missing: {', '.join(status.missing)}"
    return f"workspace {status.name} ({status.provider}): {state}"


def workspace_status_text(status: WorkspaceStatus) -> str:
    lines = [_caption(status)]
    lines += [
        f"  {r.name:<24} {r.kind:<16} {'present' if r.present else 'missing':<8} {r.detail}"
        for r in status.resources
    ]
    return "\n".join(lines)


def workspace_status_html(status: WorkspaceStatus) -> str:
    def cell(text: str, color: str | None = None) -> str:
        style = f"{CELL_STYLE};color:{color}" if color else CELL_STYLE
        return f'<td style="{style}">{escape(text)}</td>'

    rows = "".join(
        "<tr>"
        + cell(r.name)
        + cell(r.kind)
        + cell(
            *(("present", STATUS_COLORS["up-to-date"]) if r.present else ("missing", STATUS_COLORS["failed"]))
        )
        + cell(r.detail)
        + "</tr>"
        for r in status.resources
    )
    return f'<div><b>{escape(_caption(status))}</b><table style="{TABLE_STYLE}">{rows}</table></div>'
