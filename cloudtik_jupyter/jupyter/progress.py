"""Progress of long work in the cell: the current phase, and one line per node.

A notebook gets one display updated in place; a terminal IPython gets one printed line per event.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from .rendering import CELL_STYLE, TABLE_STYLE, status_span

if TYPE_CHECKING:
    from IPython.display import DisplayHandle

    from ..cluster.progress import ProgressEvent


@dataclass
class NodeProgress:
    node_id: str
    kind: str
    phase: str
    message: str


class ProgressBoard:
    """What a long operation has done so far (the state behind the cell's progress display)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.started = time.monotonic()
        self.current = "starting"
        self.nodes: dict[str, NodeProgress] = {}
        self.outcome: str | None = None

    def add(self, event: ProgressEvent) -> None:
        if event.node_id is None:
            self.current = event.message
            return
        self.nodes[event.node_id] = NodeProgress(
            event.node_id, event.node_kind or "", event.phase, event.message
        )

    def finish(self, outcome: str) -> None:
        self.outcome = f"{outcome} in {time.monotonic() - self.started:.1f} s"

    @property
    def headline(self) -> str:
        return f"{self.title}: {self.outcome or self.current}"

    def _repr_html_(self) -> str:
        rows = "".join(
            f'<tr><td style="{CELL_STYLE}">{escape(n.kind)}</td><td style="{CELL_STYLE}">{escape(n.node_id)}'
            f'</td><td style="{CELL_STYLE}">{status_span(n.phase)}</td>'
            f'<td style="{CELL_STYLE}">{escape(n.message)}</td></tr>'
            for n in self.nodes.values()
        )
        table = f'<table style="{TABLE_STYLE}">{rows}</table>' if rows else ""
        return f"<div><b>{escape(self.headline)}</b>{table}</div>"

    def __repr__(self) -> str:
        lines = [self.headline]
        lines += [f"  {n.kind:<7} {n.node_id}  {n.phase:<11} {n.message}" for n in self.nodes.values()]
        return "\n".join(lines)


def event_line(event: ProgressEvent) -> str:
    """One event as a terminal line."""
    who = f"[{event.node_kind or 'node'} {event.node_id}] " if event.node_id else ""
    return f"{who}{event.phase}: {event.message}"


class CellProgress:
    """Shows a `ProgressBoard` in the current cell; call only on the kernel's thread."""

    def __init__(self, title: str, *, live: bool, quiet: bool = False) -> None:
        self.board = ProgressBoard(title)
        self._live = live
        self._quiet = quiet
        self._dirty = False
        self._handle: DisplayHandle | None = None
        if live and not quiet:
            from IPython.display import display

            self._handle = display(self.board, display_id=True)

    def add(self, event: ProgressEvent) -> None:
        self.board.add(event)
        if self._quiet:
            return
        if self._live:
            self._dirty = True
        else:
            print(event_line(event), flush=True)

    def refresh(self) -> None:
        """Redraw once for everything added since the last redraw."""
        if self._dirty and self._handle is not None:
            self._handle.update(self.board)
        self._dirty = False

    def finish(self, outcome: str) -> None:
        self.board.finish(outcome)
        self._dirty = True
        self.refresh()
        if not self._live and not self._quiet:
            print(self.board.headline, flush=True)
