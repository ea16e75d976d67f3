"""Service links as a notebook should show them: through the Jupyter server's proxy when there is one.

A kernel started by a Jupyter server has ``JPY_PARENT_PID`` (the server's pid) and ``JPY_SESSION_NAME``;
the server's info file (``jpserver-PID.json`` in Jupyter's runtime dir) gives its base URL. Links then
point at ``BASE/cloudtik/proxy/...`` (relative to the page, so they work from any browser that reaches
Jupyter); elsewhere (a terminal IPython, nbclient) the raw URL is all there is.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from ..records.cluster import ServiceLink


@functools.lru_cache(maxsize=1)
def jupyter_base_url() -> str | None:
    """The base URL of the Jupyter server running this kernel, or None when there is none."""
    pid = os.environ.get("JPY_PARENT_PID", "")
    if not pid.isdigit() or "JPY_SESSION_NAME" not in os.environ:
        return None
    try:
        from jupyter_core.paths import jupyter_runtime_dir

        info = json.loads((Path(jupyter_runtime_dir()) / f"jpserver-{pid}.json").read_text())
    except (ImportError, OSError, ValueError):
        return None
    base = info.get("base_url") if isinstance(info, dict) else None
    return base if isinstance(base, str) and base.startswith("/") else None


def link_hrefs(cluster: str, links: Sequence[ServiceLink]) -> dict[str, str]:
    """Raw URL -> the same web UI through this kernel's Jupyter server (empty without a server).

    Links from `status`/`info` are the runtimes' links on the head (their host is the head's address)."""
    base = jupyter_base_url()
    if base is None:
        return {}
    from ..server.links import proxy_url

    hrefs = {}
    for link in links:
        proxied = proxy_url(link, cluster, urlsplit(link.url).hostname, base)
        if proxied is not None:
            hrefs[link.url] = proxied
    return hrefs
