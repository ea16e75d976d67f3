"""Notebook helpers of the runtimes on `Cluster`: connect this process to a cluster's Dask, Ray or MLflow.

The client must reach the cluster's private addresses (true on `virtual`, or from inside the workspace).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import CloudtikError

if TYPE_CHECKING:
    from ..config.schema import ClusterConfig
    from ..records.cluster import ClusterInfo


class RuntimeHelpers:
    """Mixed into `Cluster`, whose `config`, `name` and `info()` these use."""

    if TYPE_CHECKING:
        config: ClusterConfig

        @property
        def name(self) -> str: ...

        def info(self) -> ClusterInfo: ...

    def _endpoint(self, runtime: str, link_name: str) -> str:
        if runtime not in self.config.runtime.types:
            raise CloudtikError(
                f"cluster {self.name!r} has no {runtime} runtime (add `{runtime}` to runtime.types)"
            )
        url = next((link.url for link in self.info().links if link.name == link_name), None)
        if url is None:
            raise CloudtikError(f"cluster {self.name!r} has no {link_name} yet (is it up?)")
        return url

    def dask_client(self, **options: Any) -> Any:
        """A `distributed.Client` connected to the cluster's Dask scheduler; `options` go to `Client`."""
        from ..runtimes.dask.client import dask_client

        return dask_client(self._endpoint("dask", "Dask scheduler"), **options)

    def mlflow_tracking_uri(self) -> str:
        """The cluster's MLflow tracking server (``http://head:port``), its own or, with
        ``runtime.mlflow.from_cluster``, the one another cluster of the workspace publishes.
        Pass it to ``mlflow.set_tracking_uri``."""
        return self._endpoint("mlflow", "MLflow tracking")

    def ray_address(self) -> str:
        """The cluster's Ray address for ``ray.init(address=...)`` from this process (``ray://head:port``)."""
        return self._endpoint("ray", "Ray client")
