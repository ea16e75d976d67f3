"""What `%cloudtik exec` and `%cloudtik list` return: plain lists that display compactly."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import rendering as R

if TYPE_CHECKING:
    from IPython.lib.pretty import PrettyPrinter

    from ..records.cluster import ClusterSummary
    from ..ssh.target import CommandResult


class ExecResults(list["CommandResult"]):
    """One `CommandResult` per node; the output already streamed into the cell, so show only a summary."""

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self)

    @property
    def summary(self) -> str:
        failed = [r for r in self if not r.ok]
        if not failed:
            return f"exec on {len(self)} node(s): all exited 0"
        worst = ", ".join(f"{r.node_id} exited {r.exit_status}" for r in failed)
        return f"exec on {len(self)} node(s): {worst}"

    def _repr_pretty_(self, p: PrettyPrinter, cycle: bool) -> None:
        p.text(self.summary)


class ClusterList(list["ClusterSummary"]):
    """Clusters known on this machine."""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self]

    def _repr_pretty_(self, p: PrettyPrinter, cycle: bool) -> None:
        p.text(R.summaries_text(self))

    def _repr_html_(self) -> str:
        return R.summaries_html(self)
