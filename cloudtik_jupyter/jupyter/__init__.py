"""Jupyter front end: `%cloudtik` magics, the `ClusterForm` and the live `ClusterView` widget.

Everything here goes through `cloudtik_jupyter.api`; widgets are imported only when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .form import ClusterForm
    from .view import ClusterView

__all__ = ["ClusterForm", "ClusterView"]


def __getattr__(name: str) -> Any:  # lazy: `%load_ext cloudtik_jupyter` must not import ipywidgets
    if name == "ClusterView":
        from .view import ClusterView

        return ClusterView
    if name == "ClusterForm":
        from .form import ClusterForm

        return ClusterForm
    raise AttributeError(name)
