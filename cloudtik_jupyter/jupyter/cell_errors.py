"""Errors a magic shows as one short red message instead of a traceback.

IPython asks an exception for ``_render_traceback_()`` before formatting a traceback; the cell still
counts as failed, so "Run all" stops at a failed ``%cloudtik up``.
"""

from __future__ import annotations

RED = "\x1b[31m"
RESET = "\x1b[0m"


class CellError(Exception):
    """Shown in the cell as its message, in red, without a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"{RED}{line}{RESET}" for line in str(self).splitlines() or [""]]
