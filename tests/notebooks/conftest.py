"""Notebook tests reuse the virtual-provider fixtures (a private CLOUDTIK_HOME, full cleanup)."""

from tests.integration.conftest import cloudtik_home  # noqa: F401
