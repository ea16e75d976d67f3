"""cloudtik_jupyter: cloud workspaces and Spark clusters from Jupyter, the terminal or Python."""

__version__ = "0.1.0"


def load_ipython_extension(ipython: object) -> None:
    """`%load_ext cloudtik_jupyter`: register `%cloudtik` / `%%cloudtik` (imports no cloud SDK)."""
    from .jupyter.magics import register

    register(ipython)  # type: ignore[arg-type]


def unload_ipython_extension(ipython: object) -> None:
    from .jupyter.magics import unregister

    unregister(ipython)  # type: ignore[arg-type]
