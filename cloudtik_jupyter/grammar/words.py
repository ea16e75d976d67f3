"""Grammar rules both fronts share: where a command's trailing words begin, older spellings, usage lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .model import Command, Front

HELP_FLAGS = ("-h", "--help")


class GrammarError(Exception):
    """A line the grammar refuses; each front shows it as its own usage error."""


def alias_dest(dest: str) -> str:
    """Where a front puts a value given by an older spelling (`--no-workers`, `--workers N`)."""
    return f"{dest}__alias"


def _option_names(command: Command, front: Front) -> tuple[set[str], set[str]]:
    """(options taking a value, flags) of `command` on `front`."""
    valued: set[str] = set()
    flags: set[str] = set(HELP_FLAGS)
    for opt in command.options(front):
        (flags if opt.is_flag else valued).update(opt.names)
    for arg in command.args:
        valued.update(arg.option)
    return valued, flags


def _only_options(words: Sequence[str], valued: set[str], flags: set[str]) -> bool:
    i = 0
    while i < len(words):
        name = words[i].split("=", 1)[0]
        if name in valued and "=" not in words[i]:
            i += 2
        elif name in valued or name in flags:
            i += 1
        else:
            return False
    return i == len(words)


def split_rest(command: Command, words: Sequence[str], front: Front) -> tuple[list[str], list[str], int]:
    """Split the words after the command's name into (options and fixed arguments, trailing words, index
    of the first trailing word).

    The trailing words (a shell command, a job's arguments) begin at the first word that is neither an
    option of the command nor one of its fixed arguments; `--` begins them explicitly. When they are one
    word (a quoted command), options may follow it: `exec c 'ls -l' --all-nodes`.
    """
    rest = command.rest_arg
    if rest is None:
        return list(words), [], len(words)
    fixed = sum(1 for a in command.args if not a.rest)
    valued, flags = _option_names(command, front)
    i, seen = 0, 0
    while i < len(words):
        word = words[i]
        if word == "--":
            return list(words[:i]), list(words[i + 1 :]), i + 1
        name = word.split("=", 1)[0]
        if word.startswith("-") and word != "-":
            if name in valued and "=" not in word:
                i += 2
                continue
            if name in valued or name in flags:
                i += 1
                continue
            if seen >= fixed:
                break  # an option of the job's own (submit ... --rows 5)
            i += 1  # the front's parser names the unknown option
            continue
        if seen >= fixed:
            break
        seen += 1
        i += 1
    head, tail = list(words[:i]), list(words[i:])
    if not rest.many and len(tail) > 1 and _only_options(tail[1:], valued, flags):
        head, tail = head + tail[1:], tail[:1]
    return head, tail, i


def fold(command: Command, values: Mapping[str, Any]) -> dict[str, Any]:
    """Merge older spellings into their options and check what must be there; the handler's kwargs."""
    out = {k: v for k, v in values.items() if not k.endswith("__alias")}
    for opt in command.opts:
        old = values.get(alias_dest(opt.dest))
        if old not in (None, False) and out.get(opt.dest) in (None, False, opt.default):
            out[opt.dest] = old
    for arg in command.args:
        if not arg.option:
            continue
        old, new = values.get(alias_dest(arg.dest)), out.get(arg.dest)
        if old is not None and new is not None and old != new:
            raise GrammarError(f"{arg.metavar} given twice ({new} and {arg.option[0]} {old})")
        out[arg.dest] = new if new is not None else old
        if out[arg.dest] is None:
            raise GrammarError(f"missing {arg.metavar}")
    return out


def usage(command: Command, front: Front, *, common: bool = False) -> str:
    """`up CONFIG [--no-wait] [--yes]`: arguments, then options (those every command takes only if asked)."""
    from .table import COMMON

    parts = [command.name]
    for arg in command.args:
        if arg.many:
            parts.append(f"[{arg.metavar}]...")
        else:
            parts.append(f"[{arg.metavar}]" if arg.optional else arg.metavar)
    for opt in command.options(front):
        if opt in COMMON and not common:
            continue
        flag = opt.flags[0]
        parts.append(f"[{flag}]" if opt.is_flag else f"[{flag} {opt.metavar or opt.dest.upper()}]")
    return " ".join(parts)
