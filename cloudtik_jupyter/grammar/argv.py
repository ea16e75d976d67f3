"""An argparse parser for one front, built from the command table (standard library only).

The `%cloudtik` magic parses with it; so can a thin client that hands commands to a session daemon.
"""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .model import Arg, Command, Front, Scalar
from .table import GROUPS, commands, find
from .words import GrammarError, alias_dest, fold, split_rest

SPEC = "_command"  # the parsed namespace names its command here


def _local_path(arg: Arg, scalar: Scalar) -> Callable[[str], Any]:
    def check(value: str) -> Any:
        path = os.path.expanduser(value)
        if arg.local_file == "file" and not os.path.isfile(path):
            raise argparse.ArgumentTypeError(f"{value!r}: no such file")
        if not os.path.exists(path):
            raise argparse.ArgumentTypeError(f"{value!r}: no such file or directory")
        return scalar(value)

    return check


def add_command(parser: argparse.ArgumentParser, command: Command, front: Front) -> None:
    for arg in command.args:
        kind: Callable[[str], Any] = _local_path(arg, arg.type) if arg.local_file else arg.type
        if arg.rest or arg.many:
            nargs: Any = "*"  # filled from the words `split_rest` leaves (see `parse`)
        elif arg.optional or arg.option or (front == "magic" and arg.from_body):
            nargs = "?"
        else:
            nargs = None
        parser.add_argument(arg.dest, metavar=arg.metavar, help=arg.help, type=kind, nargs=nargs)
        if arg.option:
            parser.add_argument(*arg.option, dest=alias_dest(arg.dest), type=kind, help=argparse.SUPPRESS)
    for opt in command.options(front):
        if opt.is_flag:
            parser.add_argument(*opt.flags, dest=opt.dest, action="store_true", help=opt.help)
        else:
            scalar: Callable[[str], Any] = opt.type or str
            parser.add_argument(
                *opt.flags,
                dest=opt.dest,
                type=scalar,
                default=opt.default,
                metavar=opt.metavar,
                help=opt.help,
            )
        if opt.aliases:
            action = "store_true" if opt.is_flag else "store"
            parser.add_argument(
                *opt.aliases, dest=alias_dest(opt.dest), action=action, help=argparse.SUPPRESS
            )
    parser.set_defaults(**{SPEC: command.name})


def build_parser(
    front: Front,
    prog: str,
    *,
    description: str = "",
    parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    kw: dict[str, Any] = {"formatter_class": argparse.RawDescriptionHelpFormatter}
    parser = parser_class(prog=prog, description=description, **kw)
    sub = parser.add_subparsers(dest="_word", metavar="COMMAND", parser_class=parser_class)

    def fill(into: Any, group: str | None) -> None:
        for command in commands(front, group):
            text = command.description or command.help
            if front == "magic" and command.notebook:
                text += f"\n\nIn a notebook: {command.notebook}."
            p = into.add_parser(command.leaf, help=command.help, description=text, **kw)
            add_command(p, command, front)

    fill(sub, None)
    for group, help_ in GROUPS.items():
        g = sub.add_parser(group, help=help_.split(":")[0].lower(), description=help_, **kw)
        fill(g.add_subparsers(dest="_leaf", metavar="COMMAND", parser_class=parser_class), group)
    return parser


@dataclass(frozen=True)
class Parsed:
    command: Command
    values: dict[str, Any]  # the handler's keyword arguments
    rest_start: int  # index in the words of the first trailing word (len(words) when none)


def command_of(words: list[str]) -> tuple[Command | None, int]:
    """The command the words name, and how many words its name takes."""
    if len(words) >= 2 and words[0] in GROUPS:
        return find(f"{words[0]} {words[1]}"), 2
    return (find(words[0]) if words else None), 1


def parse(parser: argparse.ArgumentParser, words: list[str], front: Front) -> Parsed:
    """Parse `words` (no prog); usage errors come from `parser` (its `error`) or as `GrammarError`."""
    command, n = command_of(words)
    if command is None or front not in command.fronts:
        parser.parse_args(words)  # names what is wrong, or prints help
        raise GrammarError(f"no such command: {shlex.join(words)!r}")
    head, rest, start = split_rest(command, words[n:], front)
    namespace = parser.parse_args([*words[:n], *head])
    values = {k: v for k, v in vars(namespace).items() if not k.startswith("_")}
    arg = command.rest_arg
    if arg is not None:
        values[arg.dest] = rest
        if not rest and not (arg.many or arg.optional or (front == "magic" and arg.from_body)):
            raise GrammarError(f"missing {arg.metavar}")
    return Parsed(command, fold(command, values), n + start)
