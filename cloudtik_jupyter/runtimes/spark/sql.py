"""Run Spark SQL text through a SparkSession: statements split on `;`, the last one's rows fetched once.

What `%%cloudtik sql` runs; any front end (or a script) can use it with a session from
`Cluster.spark_session()`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import CloudtikError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

DEFAULT_MAX_ROWS = 10_000


class SqlError(CloudtikError):
    """Spark refused the SQL (syntax, a missing table or column): bad input."""

    exit_code = 2


@dataclass(frozen=True)
class SqlResult:
    statement: str  # the last statement: the one whose rows these are
    frame: pd.DataFrame | None  # None when it returns no rows at all (CREATE, SET, INSERT, ...)
    complete: bool  # False when the result has more rows than were fetched
    seconds: float  # every statement, fetch included
    statements: int = 1

    @property
    def rows(self) -> int:
        return 0 if self.frame is None else len(self.frame)


def split_statements(text: str) -> list[str]:
    """`text` split at each `;` outside quotes and comments; empty statements dropped."""
    out: list[str] = []
    start, i, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"`":
            i += 1
            while i < n and text[i] != ch:
                i += 2 if text[i] == "\\" else 1
        elif text.startswith("--", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            i = text.find("*/", i + 2)
            i = n if i < 0 else i + 1
        elif ch == ";":
            out.append(text[start:i])
            start = i + 1
        i += 1
    out.append(text[start:])
    return [s.strip() for s in out if _has_code(s)]


def _has_code(statement: str) -> bool:
    lines = [line.split("--", 1)[0] for line in statement.splitlines()]
    return bool("".join(lines).replace("/*", "").replace("*/", "").strip())


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_sql(
    session: SparkSession,
    text: str,
    *,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    job_group: str | None = None,
) -> SqlResult:
    """Run every statement of `text`; fetch at most `max_rows` rows of the last (None: all of them).

    With `job_group`, its Spark jobs run in that group (on this thread), so `cancel_sql` can stop them.
    """
    from pyspark.errors import PySparkException

    statements = split_statements(text)
    if not statements:
        raise SqlError("no SQL statement to run")
    started = time.perf_counter()
    frame: Any
    if job_group is not None:
        session.sparkContext.setJobGroup(job_group, "cloudtik sql", interruptOnCancel=True)
    try:
        for statement in statements[:-1]:
            session.sql(statement)  # DDL and commands run at once; a SELECT here would be pointless
        df = session.sql(statements[-1])
        if not df.columns:
            frame, complete = None, True
        elif max_rows is None:
            frame, complete = df.toPandas(), True
        else:
            frame = df.limit(max_rows + 1).toPandas()  # one job: the rows and whether there are more
            complete = len(frame) <= max_rows
            frame = frame.iloc[:max_rows]
    except PySparkException as exc:
        raise SqlError(_first_line(exc)) from None
    return SqlResult(statements[-1], frame, complete, time.perf_counter() - started, len(statements))


def cancel_sql(session: SparkSession, job_group: str) -> None:
    """Cancel the Spark jobs `run_sql(..., job_group=...)` started (from any thread)."""
    session.sparkContext.cancelJobGroup(job_group)
