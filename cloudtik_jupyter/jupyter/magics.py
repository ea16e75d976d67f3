"""`%cloudtik` / `%%cloudtik`: every cluster command from a notebook cell, through the `Cluster` API.

Long commands run on the package's private loop while this (the kernel's) thread renders their progress
and output into the cell; errors a user can act on show as one red message, tracebacks only with --debug.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, Union

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, line_cell_magic, magics_class

from ..errors import CloudtikError
from . import formatters, updater
from .cell_errors import CellError
from .commands import OVERVIEW, HelpShown, ParsedLine, build_parser, parse_line
from .foreground import Foreground
from .progress import CellProgress

if TYPE_CHECKING:
    from ..api.cluster import Cluster
    from ..cluster.progress import ProgressEvent
    from ..config.schema import ClusterConfig
    from .results import ClusterList, ExecResults
    from .view import ClusterView

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
        self._parser = build_parser()
        self._clusters: dict[str, Cluster] = {}  # by name: reuse SSH connections between cells
        self._background: set[Future[Any]] = set()

    @line_cell_magic
    def cloudtik(self, line: str, cell: str | None = None) -> object:
        try:
            parsed = parse_line(self._parser, line)
        except HelpShown:
            return None
        try:
            return self._dispatch(parsed, cell)
        except HelpShown:
            return None
        except CloudtikError as exc:
            if parsed.args.debug:
                raise
            raise CellError(describe_error(exc)) from None

    cloudtik.__doc__ = OVERVIEW

    def close(self) -> None:
        """Close the SSH connections of the clusters used here (the clusters keep running)."""
        for cluster in self._clusters.values():
            with contextlib.suppress(CloudtikError):  # a node already gone has nothing left to close
                cluster.close()
        self._clusters.clear()

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def _live(self) -> bool:
        """A notebook (a kernel with a frontend) rather than a terminal IPython."""
        return getattr(self.shell, "kernel", None) is not None

    def _cluster(self, token: str) -> Cluster:
        """A Cluster variable in the user's namespace, a cluster already used here, a name or a file."""
        from ..api.cluster import Cluster

        value = self.shell.user_ns.get(token) if (self.shell and token.isidentifier()) else None
        if isinstance(value, Cluster):
            return value
        from ..cluster.context import record_exists

        if token in self._clusters and record_exists(token):  # not taken down since (CLI, a view)
            return self._clusters[token]
        cluster = Cluster(token)
        self._remember(cluster)
        return cluster

    def _remember(self, cluster: Cluster) -> None:
        """Use `cluster` for its name from now on; the one it replaces lets go of its connections (it
        reopens them if still used)."""
        old = self._clusters.get(cluster.name)
        self._clusters[cluster.name] = cluster
        if old is not None and old is not cluster:
            with contextlib.suppress(CloudtikError):
                old.close()

    def _config_source(self, token: str) -> ClusterConfig | Mapping[str, Any] | str:
        from ..config.schema import ClusterConfig

        value = self.shell.user_ns.get(token) if (self.shell and token.isidentifier()) else None
        if isinstance(value, (ClusterConfig, Mapping)):
            return value
        return token

    def _run(
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

    def _dispatch(self, parsed: ParsedLine, cell: str | None) -> object:
        args = parsed.args
        if cell is not None and args.command not in ("up", "exec"):
            raise UsageError(f"%%cloudtik {args.command} takes no cell body (only up and exec do)")
        handlers: dict[str, Callable[[ParsedLine, str | None], object]] = {
            "up": self._up,
            "down": self._down,
            "status": self._status,
            "info": self._info,
            "exec": self._exec,
            "scale": self._scale,
            "upload": self._upload,
            "download": self._download,
            "list": self._list,
        }
        if args.command is None:
            self._parser.print_help()
            return None
        return handlers[args.command](parsed, cell)

    # -- commands -------------------------------------------------------------------------------

    def _up(self, parsed: ParsedLine, cell: str | None) -> Cluster:
        from ..api.cluster import Cluster

        args = parsed.args
        source: ClusterConfig | Mapping[str, Any] | str
        if cell is not None:
            if args.config:
                raise UsageError("%%cloudtik up reads the config from the cell body: drop CONFIG")
            from ..config import load_config_text

            source = load_config_text(cell)
        elif args.config is None:
            raise UsageError("%cloudtik up: missing CONFIG (a YAML file), or use %%cloudtik up with YAML")
        else:
            source = self._config_source(args.config)
        cluster = Cluster(source)
        self._remember(cluster)
        progress = CellProgress(f"up {cluster.name}", live=self._live, quiet=args.quiet)
        self._run(
            lambda sink: cluster.up_async(progress=sink, with_workers=not args.no_wait),
            what=f"up {cluster.name}",
            progress=progress,
        )
        if args.no_wait:
            self._workers_in_background(cluster)
        return cluster

    def _workers_in_background(self, cluster: Cluster) -> None:
        """`up --no-wait`: the head is ready; bring the workers up behind a live view."""
        from IPython.display import display

        from .. import aio
        from .view import ClusterView

        view = ClusterView(cluster)
        future = aio.submit(cluster.up_async(progress=view.progress_sink()))
        self._background.add(future)
        future.add_done_callback(self._background.discard)
        view.follow(future, "workers")
        display(view)

    def _down(self, parsed: ParsedLine, cell: str | None) -> int:
        cluster = self._cluster(parsed.args.cluster)
        progress = CellProgress(f"down {cluster.name}", live=self._live, quiet=parsed.args.quiet)
        count = self._run(
            lambda sink: cluster.down_async(progress=sink), what=f"down {cluster.name}", progress=progress
        )
        self._clusters.pop(cluster.name, None)
        if "cloudtik_jupyter.jupyter.view" in sys.modules:  # views exist only if that module was imported
            from .view import cluster_gone

            cluster_gone(cluster.name)
            updater.pump()
        return count

    def _status(self, parsed: ParsedLine, cell: str | None) -> ClusterView | object:
        args = parsed.args
        cluster = self._cluster(args.cluster)
        snapshot = self._run(lambda _: cluster.status_async(), what=f"status {cluster.name}")
        if args.once or not (self._live or args.view):
            return snapshot
        from .view import ClusterView

        return ClusterView(cluster, status=snapshot)

    def _info(self, parsed: ParsedLine, cell: str | None) -> object:
        cluster = self._cluster(parsed.args.cluster)
        return self._run(lambda _: cluster.info_async(), what=f"info {cluster.name}")

    def _exec(self, parsed: ParsedLine, cell: str | None) -> ExecResults:
        from .results import ExecResults

        args = parsed.args
        if cell is not None and parsed.command_text:
            raise UsageError("%%cloudtik exec: give the command on the line or in the cell body, not both")
        command = cell if cell is not None else parsed.command_text
        if not command.strip():
            raise UsageError("%cloudtik exec: missing COMMAND")
        cluster = self._cluster(args.cluster)
        prefix = args.all_nodes

        def show(line: OutputLine) -> None:
            out = sys.stderr if line.stream == "stderr" else sys.stdout
            out.write((f"[{line.node_id}] {line.text}" if prefix else line.text) + "\n")  # lines come bare
            out.flush()

        def make(post: Post) -> Coroutine[Any, Any, list[Any]]:
            def on_output(node_id: str, stream: str, text: str) -> None:
                post(OutputLine(node_id, stream, text))

            return cluster.exec_async(command, node=args.node, all_nodes=args.all_nodes, on_output=on_output)

        output = None if args.quiet else show
        results = ExecResults(self._run(make, what=f"exec on {cluster.name}", output=output))
        if args.check and not results.ok:
            raise CellError(results.summary)
        return results

    def _scale(self, parsed: ParsedLine, cell: str | None) -> object:
        args = parsed.args
        cluster = self._cluster(args.cluster)
        title = f"scale {cluster.name} to {args.workers} worker(s)"
        progress = CellProgress(title, live=self._live, quiet=args.quiet)
        self._run(
            lambda sink: cluster.scale_async(args.workers, node_type=args.node_type, progress=sink),
            what=f"scale {cluster.name}",
            progress=progress,
        )
        return self._run(lambda _: cluster.status_async(), what=f"status {cluster.name}")

    def _upload(self, parsed: ParsedLine, cell: str | None) -> None:
        args = parsed.args
        cluster = self._cluster(args.cluster)
        self._run(
            lambda _: cluster.upload_async(args.local, args.remote, node=args.node, all_nodes=args.all_nodes),
            what=f"upload to {cluster.name}",
        )
        if not args.quiet:
            where = "every node" if args.all_nodes else (args.node or "the head")
            print(f"uploaded {args.local} to {args.remote} on {where} of {cluster.name}")

    def _download(self, parsed: ParsedLine, cell: str | None) -> None:
        args = parsed.args
        cluster = self._cluster(args.cluster)
        self._run(
            lambda _: cluster.download_async(args.remote, args.local, node=args.node),
            what=f"download from {cluster.name}",
        )
        if not args.quiet:
            print(
                f"downloaded {args.remote} from {args.node or 'the head'} of {cluster.name} to {args.local}"
            )

    def _list(self, parsed: ParsedLine, cell: str | None) -> ClusterList:
        from ..api.cluster import Cluster
        from .results import ClusterList

        return ClusterList(Cluster.list())


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
