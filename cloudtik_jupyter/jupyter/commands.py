"""The `%cloudtik` command line: subcommands, their help, and parsing that never exits the kernel."""

from __future__ import annotations

import argparse
import io
import shlex
from dataclasses import dataclass
from typing import NoReturn

from IPython.core.error import UsageError

OVERVIEW = """\
%cloudtik COMMAND ...       clusters from the notebook (same API as the `cloudtik` CLI)

  %cloudtik up CONFIG [--no-wait]      create or update a cluster; returns the Cluster
  %%cloudtik up                        ... from the YAML config in the cell body (`from:` templates work)
  %cloudtik status CLUSTER [--once]    live view of the cluster (--once: a snapshot)
  %cloudtik info CLUSTER               addresses and service links
  %cloudtik exec CLUSTER [--all-nodes | --node N] COMMAND...
  %%cloudtik exec CLUSTER [...]        ... runs the cell body as a shell script
  %cloudtik scale CLUSTER WORKERS [--node-type TYPE]
  %cloudtik upload CLUSTER LOCAL REMOTE [--all-nodes | --node N]
  %cloudtik download CLUSTER REMOTE LOCAL [--node N]
  %cloudtik down CLUSTER               terminate every node
  %cloudtik list                       clusters known on this machine

CLUSTER is a cluster name, a config file, or a Python variable holding a Cluster.
$var and {expression} expand as in any IPython line magic ($$ for a literal $).
`%cloudtik COMMAND --help` or `%cloudtik COMMAND?` describes one command; --debug shows tracebacks.
"""


class HelpShown(Exception):
    """Help was printed; the magic returns nothing."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad line as a UsageError (one red line) instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            raise UsageError(message.strip())
        raise HelpShown()


def _cluster_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", metavar="CLUSTER", help="cluster name, config file or Cluster variable")


def _node_args(p: argparse.ArgumentParser, all_nodes: bool = True) -> None:
    p.add_argument("--node", help="node id, seq id, address or name (default: the head)")
    if all_nodes:
        p.add_argument("--all-nodes", action="store_true", help="every node, in parallel")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    common.add_argument("--quiet", "-q", action="store_true", help="no progress or output in the cell")

    parser = _Parser(prog="%cloudtik", description=OVERVIEW, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help_: str, description: str = "") -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_,
            description=description or help_,
            parents=[common],
            formatter_class=argparse.RawTextHelpFormatter,
        )

    up = command(
        "up",
        "create or update a cluster (re-running converges)",
        "Create or update a cluster and return it: `cluster = %cloudtik up small.yaml`.\n"
        "With %%cloudtik up the cell body is the YAML config (omit CONFIG); `from: virtual-small`\n"
        "starts from a shipped template. Progress shows in the cell; the stop button stops cleanly.",
    )
    up.add_argument(
        "config", metavar="CONFIG", nargs="?", help="YAML file, known cluster name, or dict/config variable"
    )
    up.add_argument(
        "--no-wait",
        action="store_true",
        help="return once the head is ready; workers come up in the background (shown live)",
    )

    down = command("down", "terminate every node of a cluster")
    _cluster_arg(down)

    status = command(
        "status", "live view of a cluster", "Live view of a cluster (a widget); --once returns a snapshot."
    )
    _cluster_arg(status)
    status.add_argument("--once", action="store_true", help="a ClusterStatus snapshot instead of the view")
    status.add_argument("--view", action="store_true", help="the live view even outside a notebook")

    info = command("info", "addresses and runtime service links of a cluster")
    _cluster_arg(info)

    exec_ = command(
        "exec",
        "run a shell command on cluster nodes",
        "Run COMMAND on the head (default), one node, or all nodes; output streams into the cell.\n"
        "With %%cloudtik exec CLUSTER the cell body is the script. Returns the results.",
    )
    _cluster_arg(exec_)
    _node_args(exec_)
    exec_.add_argument("--check", action="store_true", help="fail the cell if any node exits non-zero")
    # Filled by `parse_line`: everything after the first word that is not an option or CLUSTER.
    exec_.add_argument("words", metavar="COMMAND", nargs="*", help="the shell command (after the options)")

    scale = command(
        "scale", "set the number of workers", "Set the number of workers, within min/max of the node type."
    )
    _cluster_arg(scale)
    scale.add_argument("workers", metavar="WORKERS", type=int)
    scale.add_argument("--node-type", help="worker node type (default: the only one)")

    upload = command("upload", "copy a local file or directory to nodes")
    _cluster_arg(upload)
    upload.add_argument("local", metavar="LOCAL")
    upload.add_argument("remote", metavar="REMOTE")
    _node_args(upload)

    download = command("download", "copy a file or directory from a node")
    _cluster_arg(download)
    download.add_argument("remote", metavar="REMOTE")
    download.add_argument("local", metavar="LOCAL")
    _node_args(download, all_nodes=False)

    command("list", "clusters known on this machine")
    return parser


@dataclass(frozen=True)
class ParsedLine:
    args: argparse.Namespace
    command_text: str  # exec: the command exactly as typed after the options


def _raw_tail(line: str, skip: int) -> str:
    """`line` after its first `skip` shell words, as typed (quotes and pipes intact)."""
    stream = io.StringIO(line)
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    for _ in range(skip):
        lexer.get_token()
    return line[stream.tell() :].strip()


def _split_exec(words: list[str]) -> int:
    """Index in `words` (starting at "exec") where the shell command begins: options and CLUSTER come
    first, as with ssh, so `%cloudtik exec c ls --all` passes --all to ls."""
    i, seen_cluster = 1, False
    while i < len(words):
        word = words[i]
        if word == "--":
            return i + 1
        if word.startswith("-"):
            i += 2 if word in _EXEC_VALUE_OPTIONS else 1
        elif not seen_cluster:
            seen_cluster, i = True, i + 1
        else:
            break
    return i


_EXEC_VALUE_OPTIONS = ("--node",)


def parse_line(parser: argparse.ArgumentParser, line: str) -> ParsedLine:
    """Parse a magic's line; `COMMAND?` / `COMMAND??` print that command's help."""
    stripped = line.strip()
    if stripped.endswith("?"):
        words = shlex.split(stripped.rstrip("?"))
        parser.parse_args([*words[:1], "--help"] if words else ["--help"])
    try:
        words = shlex.split(line)
    except ValueError as exc:  # e.g. an unclosed quote
        raise UsageError(f"%cloudtik: {exc}") from None
    if not words:
        raise UsageError("%cloudtik: missing COMMAND (try %cloudtik --help)")
    if words[0] != "exec":
        return ParsedLine(parser.parse_args(words), "")
    start = _split_exec(words)
    args = parser.parse_args(words[:start])
    tail = words[start:]
    command_text = tail[0] if len(tail) == 1 else _raw_tail(line, start) if tail else ""
    return ParsedLine(args, command_text)
