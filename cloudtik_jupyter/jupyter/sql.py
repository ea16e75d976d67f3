"""`%%cloudtik sql`: one long-lived SparkSession per kernel, and how a result looks in the cell."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from .rendering import CELL_STYLE, TABLE_STYLE

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from ..api.cluster import Cluster
    from ..runtimes.spark.sql import SqlResult


@dataclass
class SqlSession:
    """The kernel's SparkSession on `cluster`; `owned` when the magic started it (then it also stops it)."""

    cluster: str
    session: SparkSession
    owned: bool

    @property
    def alive(self) -> bool:
        return getattr(self.session.sparkContext, "_jsc", None) is not None

    def stop(self) -> None:
        if not self.owned or not self.alive:
            return
        from ..runtimes.spark.session import stop_spark

        with contextlib.suppress(Exception):  # a JVM already gone has nothing left to stop
            stop_spark(self.session)


def session_for(current: SqlSession | None, cluster: Cluster) -> SqlSession:
    """The kernel's session on `cluster`: the current one if it still runs there, else a new one (a
    session the user made with `cluster.spark_session()` is found and shared, not replaced)."""
    if current is not None and current.cluster == cluster.name and current.alive:
        return current
    if current is not None:
        current.stop()
    from pyspark.sql import SparkSession

    before = SparkSession.getActiveSession()
    session = cluster.spark_session()
    return SqlSession(cluster.name, session, owned=session is not before)


def _cell(value: Any) -> str:
    return f'<td style="{CELL_STYLE}">{escape(str(value))}</td>'


@dataclass(frozen=True)
class SqlView:
    """A result as the cell shows it: the first `limit` rows, how many there are, how long it took."""

    result: SqlResult
    limit: int

    @property
    def caption(self) -> str:
        r = self.result
        took = f"{r.seconds:.2f} s"
        if r.frame is None:
            return f"OK ({r.statements} statement(s)) in {took}"
        count = f"{r.rows:,} rows" if r.complete else f"more than {r.rows:,} rows (fetched {r.rows:,})"
        shown = f", first {self.limit} shown" if r.rows > self.limit else ""
        return f"{count}{shown} in {took}"

    def _repr_html_(self) -> str:
        frame = self.result.frame
        if frame is None:
            return f"<div>{escape(self.caption)}</div>"
        head = "".join(f'<th style="{CELL_STYLE}">{escape(str(c))}</th>' for c in frame.columns)
        body = "".join(
            "<tr>" + "".join(_cell(v) for v in row) + "</tr>"
            for row in frame.head(self.limit).itertuples(index=False)
        )
        return (
            f'<div><table style="{TABLE_STYLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
            f"<div><i>{escape(self.caption)}</i></div></div>"
        )

    def __repr__(self) -> str:
        frame = self.result.frame
        if frame is None:
            return self.caption
        return f"{frame.head(self.limit).to_string(index=False)}\n{self.caption}"
