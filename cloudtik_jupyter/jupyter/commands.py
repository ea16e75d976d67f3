"""The `%cloudtik` command line: the command grammar's parser, help, and parsing that never exits the kernel."""

from __future__ import annotations

import argparse
import functools
import io
import shlex
from dataclasses import dataclass
from typing import Any, NoReturn

from IPython.core.error import UsageError

from ..grammar import SECTIONS, Command, GrammarError, commands, usage
from ..grammar.argv import build_parser as build_grammar_parser
from ..grammar.argv import parse
from ..grammar.table import GROUPS


@functools.cache
def overview() -> str:
    """Every command's usage and help, by section (from the grammar)."""
    import textwrap

    lines = [
        "%cloudtik COMMAND ...  clusters and workspaces from a notebook: the `cloudtik` CLI's commands, with",
        "                       the same arguments, through the same API",
        "",
    ]
    every = [*commands("magic"), *(c for g in GROUPS for c in commands("magic", g))]

    def entry(call: str, text: str) -> None:
        wrapped = textwrap.wrap(text, 100 - 48) or [""]
        if len(call) > 44:
            lines.append(f"  {call}")
            lines.extend(f"{'':<48}{w}" for w in wrapped)
        else:
            lines.append(f"  {call:<44}  {wrapped[0]}")
            lines.extend(f"{'':<48}{w}" for w in wrapped[1:])

    for section, title in SECTIONS.items():
        lines.append(f"{title}:")
        for command in (c for c in every if c.section == section):
            entry(f"%cloudtik {usage(command, 'magic')}", command.help)
            if command.body:
                cell = " ".join(a.metavar for a in command.args if not a.from_body)
                entry(
                    f"%%cloudtik {command.name} {cell}".strip(),
                    f"... the cell body is the {_BODY[command.body]}",
                )
        lines.append("")
    lines += [
        "CLUSTER is a cluster name, a config file, or a Python variable holding a Cluster.",
        "$var and {expression} expand as in any IPython line magic ($$ for a literal $).",
        "`%cloudtik COMMAND --help` or `%cloudtik COMMAND?` describes one command; --debug shows tracebacks;",
        "--quiet (-q) hides progress and output.",
    ]
    return "\n".join(lines) + "\n"


_BODY = {"yaml": "YAML config", "script": "shell script", "sql": "SQL"}


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


def build_parser() -> argparse.ArgumentParser:
    return build_grammar_parser("magic", "%cloudtik", description=overview(), parser_class=_Parser)


@dataclass(frozen=True)
class ParsedLine:
    command: Command
    values: dict[str, Any]  # the command's arguments and options, by name
    rest: str  # exec / sql: the trailing words exactly as typed (quotes and pipes intact)

    @property
    def debug(self) -> bool:
        return bool(self.values.get("debug"))

    @property
    def quiet(self) -> bool:
        return bool(self.values.get("quiet"))


def _raw_tail(line: str, skip: int) -> str:
    """`line` after its first `skip` shell words, as typed."""
    stream = io.StringIO(line)
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    for _ in range(skip):
        lexer.get_token()
    return line[stream.tell() :].strip()


def parse_line(parser: argparse.ArgumentParser, line: str) -> ParsedLine:
    """Parse a magic's line; `COMMAND?` / `COMMAND??` print that command's help."""
    stripped = line.strip()
    if stripped.endswith("?"):
        words = shlex.split(stripped.rstrip("?"))
        name = words[:2] if words[:1] and words[0] in GROUPS else words[:1]
        parser.parse_args([*name, "--help"])
    try:
        words = shlex.split(line)
    except ValueError as exc:  # e.g. an unclosed quote
        raise UsageError(f"%cloudtik: {exc}") from None
    if not words:
        raise UsageError("%cloudtik: missing COMMAND (try %cloudtik --help)")
    if words[0] in ("-h", "--help"):
        print(overview(), end="")
        raise HelpShown()
    try:
        parsed = parse(parser, words, "magic")
    except GrammarError as exc:
        raise UsageError(f"%cloudtik {words[0]}: {exc}") from None
    values = dict(parsed.values)
    rest = ""
    arg = parsed.command.rest_arg
    if arg is not None and not arg.many:
        tail: list[str] = values[arg.dest]
        rest = tail[0] if len(tail) == 1 else _raw_tail(line, parsed.rest_start) if tail else ""
        values[arg.dest] = rest
    return ParsedLine(parsed.command, values, rest)
