"""The jupyter_server extension: REST under ``/cloudtik/`` for the side panel, and a proxy to the web UIs of
services on cluster heads. Enabled on install by jupyter-config/; imported only by jupyter_server.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import CloudtikServerExtension

    return [{"module": "cloudtik_jupyter.server", "app": CloudtikServerExtension}]
