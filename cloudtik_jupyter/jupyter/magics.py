"""`%cloudtik` / `%%cloudtik`: every command of the grammar from a notebook cell, through the API.

Long commands run on the package's private loop while this (the kernel's) thread renders their progress
and output into the cell; errors a user can act on show as one red message, tracebacks only with --debug.
The commands themselves are in magic_<section>.py (see dispatch.py).
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, Union

from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, line_cell_magic, magics_class

from ..errors import CloudtikError
from . import dispatch, formatters
from .cell_errors import CellError
from .commands import HelpShown, build_parser, parse_line
from .foreground import Foreground

if TYPE_CHECKING:
    from ..api.cluster import Cluster
    from ..cluster.progress import ProgressEvent
    from .progress import CellProgress
    from .sql import SqlSession

T = TypeVar("T")


@dataclass(frozen=True)
class OutputLine:
    node_id: str
    stream: str  # "stdout" | "stderr"
    text: str


Report = Union["ProgressEvent", OutputLine]
Post = Callable[[Report], None]  # thread-safe: hands a report to the cell's thread


def describe_error(exc: CloudtikError) -> str:
    """One short message; every problem of a config, each on its own line."""
    issues = getattr(exc, "issues", ())
    if len(issues) > 1:
        return f"config has {len(issues)} problems:\n" + "\n".join(f"  {issue}" for issue in issues)
    return str(exc)


@magics_class
class CloudtikMagics(Magics):
    def __init__(self, shell: InteractiveShell) -> None:
        super().__init__(shell)
        self._parser: argparse.ArgumentParser | None = None  # built on first use: %load_ext stays light
        self._clusters: dict[str, Cluster] = {}  # by name: reuse SSH connections between cells
        self._background: set[Future[Any]] = set()
        self.spark: SqlSession | None = None  # `%%cloudtik sql`: one session per kernel

    @line_cell_magic
    def cloudtik(self, line: str, cell: str | None = None) -> object:
        try:
            if self._parser is None:
                self._parser = build_parser()
            parsed = parse_line(self._parser, line)
        except HelpShown:
            return None
        try:
            return dispatch.run(self, parsed.command, parsed.values, cell)
        except HelpShown:
            return None
        except CloudtikError as exc:
            if parsed.debug:
                raise
            raise CellError(describe_error(exc)) from None

    cloudtik.__doc__ = """Clusters and workspaces from a notebook: every `cloudtik` command, with the same arguments
        (`%cloudtik --help` lists them; `%cloudtik COMMAND?` describes one)."""

    def close(self) -> None:
        """Close the SSH connections of the clusters used here and the SQL session (clusters keep running)."""
        if self.spark is not None:
            self.spark.stop()
            self.spark = None
        for cluster in self._clusters.values():
            with contextlib.suppress(CloudtikError):  # a node already gone has nothing left to close
                cluster.close()
        self._clusters.clear()

    # -- what handlers share --------------------------------------------------------------------

    @property
    def live(self) -> bool:
        """A notebook (a kernel with a frontend) rather than a terminal IPython."""
        return getattr(self.shell, "kernel", None) is not None

    def cluster(self, token: str) -> Cluster:
        """A Cluster variable in the user's namespace, a cluster already used here, a name or a file."""
        from ..api.cluster import Cluster

        value = self.shell.user_ns.get(token) if (self.shell and token.isidentifier()) else None
        if isinstance(value, Cluster):
            return value
        from ..cluster.context import record_exists

        if token in self._clusters and record_exists(token):  # not taken down since (CLI, a view)
            return self._clusters[token]
        cluster = Cluster(token)
        self.remember(cluster)
        return cluster

    def remember(self, cluster: Cluster) -> None:
        """Use `cluster` for its name from now on; the one it replaces lets go of its connections (it
        reopens them if still used)."""
        old = self._clusters.get(cluster.name)
        self._clusters[cluster.name] = cluster
        if old is not None and old is not cluster:
            with contextlib.suppress(CloudtikError):
                old.close()

    def forget(self, name: str) -> None:
        """Cluster `name` is gone: drop its connections and its SQL session."""
        self._clusters.pop(name, None)
        if self.spark is not None and self.spark.cluster == name:
            self.spark.stop()
            self.spark = None

    def variable(self, token: str | None) -> Any:
        """The user's variable `token` (None when there is none)."""
        if not token or not self.shell or not token.isidentifier():
            return None
        return self.shell.user_ns.get(token)

    def run(
        self,
        make: Callable[[Post], Coroutine[Any, Any, T]],
        *,
        what: str,
        progress: CellProgress | None = None,
        output: Callable[[OutputLine], None] | None = None,
    ) -> T:
        """Run the API coroutine `make(post)`, rendering here what it posts (progress, output)."""

        def handle(report: Report) -> None:
            if isinstance(report, OutputLine):
                if output is not None:
                    output(report)
            elif progress is not None:
                progress.add(report)

        foreground: Foreground[Report] = Foreground(handle, idle=progress.refresh if progress else None)
        try:
            result = foreground.run(make(foreground.post), what=what)
        except CellError:
            if progress:
                progress.finish("interrupted")
            raise
        except BaseException:
            if progress:
                progress.finish("failed")
            raise
        if progress:
            progress.finish("done")
        return result

    def in_background(self, future: Future[Any]) -> None:
        """Keep `future` (work a view follows) until it is done."""
        self._background.add(future)
        future.add_done_callback(self._background.discard)


# `%cloudtik up?` would otherwise become IPython's `pinfo up` (help on a variable named `up`).
_HELP_LINE = re.compile(r"^(?P<indent>\s*)%cloudtik(?P<rest>(\s.*)?\?{1,2})\s*$")


def help_transformer(lines: list[str]) -> list[str]:
    """Route `%cloudtik COMMAND?` to the magic itself, which prints that command's help."""
    out = []
    for line in lines:
        match = _HELP_LINE.match(line.rstrip("\n"))
        if match and not line.lstrip().startswith("%%"):
            call = f"get_ipython().run_line_magic('cloudtik', {match['rest'].strip()!r})"
            line = f"{match['indent']}{call}\n" if line.endswith("\n") else f"{match['indent']}{call}"
        out.append(line)
    return out


def register(shell: InteractiveShell) -> None:
    shell.register_magics(CloudtikMagics)
    formatters.register(shell)
    if help_transformer not in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.append(help_transformer)


def unregister(shell: InteractiveShell) -> None:
    magics = shell.magics_manager.registry.pop(CloudtikMagics.__name__, None)
    if isinstance(magics, CloudtikMagics):
        magics.close()
    for kind in ("line", "cell"):
        shell.magics_manager.magics[kind].pop("cloudtik", None)
    formatters.unregister(shell)
    if help_transformer in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.remove(help_transformer)
