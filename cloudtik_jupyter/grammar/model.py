"""The shape of a command: positional arguments, options, and what a `%%cloudtik` cell body stands for.

Plain frozen dataclasses and the standard library only: the click CLI, the `%cloudtik` magic and a future
thin client (one that talks to a session daemon) all read the same specs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Front = Literal["cli", "magic"]
BOTH: frozenset[Front] = frozenset(("cli", "magic"))
MAGIC_ONLY: frozenset[Front] = frozenset(("magic",))
Scalar = type[str] | type[int] | type[float]
Body = Literal["yaml", "script", "sql"]


@dataclass(frozen=True)
class Arg:
    """A positional argument."""

    dest: str
    metavar: str
    help: str
    type: Scalar = str
    optional: bool = False  # may be left out (the handler decides what that means)
    many: bool = False  # zero or more words (a job's own arguments)
    rest: bool = False  # the words left after the options: a shell command, a job's arguments
    local_file: Literal["file", "path"] | None = None  # a path on this machine that must exist
    from_body: bool = False  # `%%cloudtik` takes it from the cell body instead
    option: tuple[str, ...] = ()  # also accepted as this option (an older spelling), e.g. --workers


@dataclass(frozen=True)
class Opt:
    """An option; a flag when `type` is None."""

    dest: str
    flags: tuple[str, ...]
    help: str
    type: Scalar | None = None
    default: object = None
    metavar: str | None = None
    aliases: tuple[str, ...] = ()  # hidden older spellings of the same option
    fronts: frozenset[Front] = BOTH

    @property
    def is_flag(self) -> bool:
        return self.type is None

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.flags, *self.aliases)


@dataclass(frozen=True)
class Command:
    """One command, e.g. ``up`` or ``workspace create``."""

    name: str
    section: str  # cluster | nodes | workspace | runtime: how help groups commands and fronts find handlers
    help: str  # one line
    description: str = ""  # more, for `COMMAND --help`
    args: tuple[Arg, ...] = ()
    opts: tuple[Opt, ...] = ()
    body: Body | None = None  # what a %%cloudtik cell body is
    fronts: frozenset[Front] = BOTH
    notebook: str = ""  # how the magic differs, when it does

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(self.name.split())

    @property
    def group(self) -> str | None:
        return self.words[0] if len(self.words) > 1 else None

    @property
    def leaf(self) -> str:
        return self.words[-1]

    def options(self, front: Front) -> tuple[Opt, ...]:
        return tuple(o for o in self.opts if front in o.fronts)

    @property
    def rest_arg(self) -> Arg | None:
        return next((a for a in self.args if a.rest), None)

    def dests(self, front: Front) -> set[str]:
        """The names a handler on `front` receives."""
        return {a.dest for a in self.args} | {o.dest for o in self.options(front)}
