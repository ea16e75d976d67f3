"""cloudtik_jupyter: cloud workspaces and Spark clusters from Jupyter, the terminal or Python."""

__version__ = "0.1.0"
