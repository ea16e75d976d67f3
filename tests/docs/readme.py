"""The README as the tests read it: its `bash` blocks in order, and the rows of its command tables."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<why>[^)]*)\)\s*-->")
FENCE = re.compile(r"^```(?P<lang>\S*)\n(?P<code>.*?)^```\n", re.M | re.S)
CODE = re.compile(r"`([^`]+)`")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b")


@dataclass(frozen=True)
class Block:
    code: str
    line: int
    skip: str | None  # why the README test does not run it


@dataclass(frozen=True)
class Row:
    front: str  # "cli" | "magic"
    name: str  # grammar name: "up", "workspace create"
    options: frozenset[str]
    text: str  # the README's code span


def bash_blocks(text: str) -> list[Block]:
    blocks = []
    for match in FENCE.finditer(text):
        if match["lang"] != "bash":
            continue
        before = text[: match.start()].rstrip().splitlines()
        skip = SKIP.fullmatch(before[-1].strip()) if before else None
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(match["code"], line, skip["why"] if skip else None))
    return blocks


def _table_rows(text: str, header: str) -> list[str]:
    """First cells of the table whose header row starts with `header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(re.split(r"(?<!\\)\|", line)[1])
    return rows


def _rows(cell: str, front: str, prefix: str, groups: set[str]) -> list[Row]:
    """Commands named in one first cell: "`cloudtik head-ip CLUSTER`", "`%cloudtik a` / `b`",
    "`cloudtik workspace status\\|info WORKSPACE`" (a later span without the prefix continues the first)."""
    out: list[Row] = []
    base: list[str] = []
    for span in CODE.findall(cell):
        words = span.replace("\\|", "|").split()
        if words[0] in (prefix, "%" + prefix):  # %%cloudtik: the same command with a cell body
            words = words[1:]
        elif base:
            words = base + words  # "/ `info`" after "`%cloudtik workspace status ...`"
        names = [words[0]]
        if words[0] in groups and len(words) > 1:
            names = [f"{words[0]} {leaf}" for leaf in words[1].split("|")]
            base = [words[0]]
        options = frozenset(OPTION.findall(span))
        out += [Row(front, name, options, span) for name in names]
    return out


def command_rows(text: str, groups: set[str]) -> list[Row]:
    """Every command the CLI table and the magic table document."""
    rows: list[Row] = []
    for cell in _table_rows(text, "command"):
        rows += _rows(cell, "cli", "cloudtik", groups)
    for cell in _table_rows(text, "magic"):
        rows += _rows(cell, "magic", "%cloudtik", groups)
    return rows
