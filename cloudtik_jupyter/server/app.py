"""The extension app: one hub (live cluster state, shared handles) and its forwards per Jupyter server."""

from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp

from .forwards import NodeForwards
from .handlers import routes
from .hub import ClusterHub


class CloudtikServerExtension(ExtensionApp):
    name = "cloudtik_jupyter"
    load_other_extensions = True

    hub: ClusterHub | None = None

    def initialize_settings(self) -> None:
        assert self.serverapp is not None
        self.hub = ClusterHub(self.serverapp.base_url, NodeForwards(), log=self.log)

    def initialize_handlers(self) -> None:
        assert self.hub is not None
        self.handlers.extend(routes(self.hub))

    async def stop_extension(self) -> None:
        """On server shutdown: end the streams, stop watching, close SSH connections and forwards."""
        if self.hub is not None:
            await self.hub.close()
            self.hub.forwards.close()
