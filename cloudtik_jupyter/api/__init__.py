"""The Python API every front end goes through: `Cluster` and `Workspace` (sync methods + async twins)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cluster import Cluster
    from .workspace import Workspace

__all__ = ["Cluster", "Workspace"]


def __getattr__(name: str) -> Any:  # lazy: `import cloudtik_jupyter` stays fast
    if name == "Cluster":
        from .cluster import Cluster

        return Cluster
    if name == "Workspace":
        from .workspace import Workspace

        return Workspace
    raise AttributeError(name)
