"""`%cloudtik` runtime commands: submit, and `%%cloudtik sql` (arguments and help: the grammar)."""

from __future__ import annotations

import contextlib
import keyword
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from .cell_errors import CellError
from .dispatch import handles
from .foreground import CANCEL_GRACE
from .magic_nodes import print_output
from .magics import OutputLine, Post

if TYPE_CHECKING:
    from ..runtimes.spark.sql import SqlResult
    from .magics import CloudtikMagics
    from .sql import SqlView


@handles("submit")
def submit(
    m: CloudtikMagics,
    body: str | None,
    *,
    cluster: str,
    job: str,
    job_args: list[str],
    runtime: str | None,
    quiet: bool,
) -> None:
    """The job's output streams into the cell; a failed job fails the cell (as the CLI's exit status)."""
    c = m.cluster(cluster)

    def make(post: Post) -> Coroutine[Any, Any, int]:
        def on_output(node_id: str, stream: str, text: str) -> None:
            post(OutputLine(node_id, stream, text))

        return c.submit_async(job, job_args, runtime=runtime, on_output=on_output)

    status = m.run(make, what=f"submit to {c.name}", output=None if quiet else print_output(False))
    if status != 0:
        raise CellError(f"{job} on {c.name} exited {status}")


@handles("sql")
def sql(
    m: CloudtikMagics,
    body: str | None,
    *,
    cluster: str,
    query: str,
    output: str | None,
    limit: int,
    max_rows: int | None,
    quiet: bool,
) -> SqlView | None:
    """Run the SQL through the kernel's long-lived session; `-o NAME` keeps the rows as a DataFrame."""
    from ..runtimes.spark.sql import DEFAULT_MAX_ROWS
    from .sql import SqlView, session_for

    if output is not None and (not output.isidentifier() or keyword.iskeyword(output)):
        raise UsageError(f"%cloudtik sql: -o {output!r} is not a Python variable name")
    if limit < 0 or (max_rows is not None and max_rows < 0):
        raise UsageError("%cloudtik sql: --limit and --max-rows take a number >= 0")
    fetch = max_rows if max_rows else None if (max_rows == 0 or output) else DEFAULT_MAX_ROWS
    c = m.cluster(cluster)
    m.spark = session_for(m.spark, c)
    result = _run_cancellable(m.spark.session, body if body is not None else query, fetch, c.name)
    if output is not None:
        assert m.shell is not None, "a magic always runs in a shell"
        m.shell.user_ns[output] = result.frame
    return None if quiet else SqlView(result, limit)


def _run_cancellable(session: Any, text: str, max_rows: int | None, cluster: str) -> SqlResult:
    """Run the SQL on a helper thread while this (the kernel's) thread waits: the stop button then
    interrupts the wait, not a py4j call halfway through (that would break its connection), and cancels
    the query's Spark jobs."""
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    from ..runtimes.spark.sql import cancel_sql, run_sql

    group = f"cloudtik-sql-{uuid.uuid4().hex[:12]}"
    pool = ThreadPoolExecutor(1, thread_name_prefix="cloudtik-sql")
    try:
        future = pool.submit(run_sql, session, text, max_rows=max_rows, job_group=group)
        try:
            return future.result()
        except KeyboardInterrupt:
            cancel_sql(session, group)
            with contextlib.suppress(Exception):  # the cancelled query's own error
                future.result(timeout=CANCEL_GRACE)
            raise CellError(
                f"interrupted: the query on {cluster} was cancelled (the session stays)"
            ) from None
    finally:
        pool.shutdown(wait=False)
