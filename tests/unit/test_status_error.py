"""A status error (the head's host key changed) is shown wherever a status is: text, HTML, the live view."""

from __future__ import annotations

from cloudtik_jupyter.jupyter.rendering import status_html, status_text
from cloudtik_jupyter.records.cluster import ClusterStatus

ERROR = (
    "host key of node vn-1 at 127.0.0.2 has CHANGED: pinned SHA256:aaa, presented SHA256:bbb. Not connecting."
)


def test_the_error_is_in_the_text_and_the_html() -> None:
    status = ClusterStatus("c", "virtual", [], 0, 0, error=ERROR)
    assert status_text(status).splitlines()[-1] == f"Error: {ERROR}"
    assert "SHA256:aaa" in status_html(status) and "SHA256:bbb" in status_html(status)
    quiet = ClusterStatus("c", "virtual", [], 0, 0)
    assert "Error" not in status_text(quiet) and "cf222e" not in status_html(quiet)
