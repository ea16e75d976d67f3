"""The Dask runtime: a `distributed` scheduler on the head, one worker per worker node.

`DaskRuntime` (in ``runtime``) is the plugin; ``dask_client(address)`` connects a notebook. `distributed`
itself is imported only by the daemons and by a client.
"""

from __future__ import annotations

from .config import DaskConfig, parse_dask_config

__all__ = ["DaskConfig", "parse_dask_config"]
