"""Teach IPython to show API records (status, info, cluster lists) as tables and links, not dataclass reprs.

Registered by type *name*, so loading the extension imports none of the API modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.interactiveshell import InteractiveShell
from IPython.lib.pretty import PrettyPrinter

from . import rendering as R

STATUS_MODULE = "cloudtik_jupyter.records.cluster"  # where ClusterStatus and ClusterInfo are defined
WORKSPACE_MODULE = "cloudtik_jupyter.api.workspace"


def _pretty(render: Callable[[Any], str]) -> Callable[[Any, PrettyPrinter, bool], None]:
    def printer(obj: Any, p: PrettyPrinter, cycle: bool) -> None:
        p.text(render(obj))

    return printer


HTML: dict[str, Callable[[Any], str]] = {
    "ClusterStatus": R.status_html,
    "ClusterInfo": R.info_html,
}
TEXT: dict[str, Callable[[Any], str]] = {
    "ClusterStatus": R.status_text,
    "ClusterInfo": R.info_text,
}


def _formatters(shell: InteractiveShell) -> dict[str, Any]:
    assert shell.display_formatter is not None, "an InteractiveShell always has a display formatter"
    return shell.display_formatter.formatters


def register(shell: InteractiveShell) -> None:
    from .rendering_workspace import workspace_status_html, workspace_status_text

    formatters = _formatters(shell)
    for name, render in HTML.items():
        formatters["text/html"].for_type_by_name(STATUS_MODULE, name, render)
    for name, render in TEXT.items():
        formatters["text/plain"].for_type_by_name(STATUS_MODULE, name, _pretty(render))
    formatters["text/html"].for_type_by_name(WORKSPACE_MODULE, "WorkspaceStatus", workspace_status_html)
    formatters["text/plain"].for_type_by_name(
        WORKSPACE_MODULE, "WorkspaceStatus", _pretty(workspace_status_text)
    )


def unregister(shell: InteractiveShell) -> None:
    formatters = _formatters(shell)
    for mime, table in (("text/html", HTML), ("text/plain", TEXT)):
        for name in table:
            formatters[mime].pop(f"{STATUS_MODULE}.{name}", None)
        formatters[mime].pop(f"{WORKSPACE_MODULE}.WorkspaceStatus", None)
