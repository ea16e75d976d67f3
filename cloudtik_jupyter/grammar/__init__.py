"""The one command grammar: every command of the `cloudtik` CLI and the `%cloudtik` magic, as data.

Standard library only (no click, no IPython), so any front, including a thin client, can read it cheaply.
"""

from .model import BOTH, MAGIC_ONLY, Arg, Command, Front, Opt
from .table import COMMANDS, COMMON, GROUPS, SECTIONS, commands, find
from .words import GrammarError, alias_dest, fold, split_rest, usage

__all__ = [
    "BOTH",
    "COMMANDS",
    "COMMON",
    "GROUPS",
    "MAGIC_ONLY",
    "SECTIONS",
    "Arg",
    "Command",
    "Front",
    "GrammarError",
    "Opt",
    "alias_dest",
    "commands",
    "find",
    "fold",
    "split_rest",
    "usage",
]
