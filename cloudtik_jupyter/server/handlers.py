"""REST under ``/cloudtik/`` for the side panel: list, status, scale, down, create, templates, live stream.

Every handler needs Jupyter's authentication; state-changing ones also its XSRF check (APIHandler does it
for every non-GET request). Bad input gets a 4xx JSON error ``{"message", "path"}``; each handler only
calls the API (through the hub's shared handles).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, TypeVar

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from pydantic import BaseModel, ValidationError
from tornado import web
from tornado.iostream import StreamClosedError

from ..errors import CloudtikError, ClusterNotFound, ConfigError, Timeout
from .hub import ClusterHub, Conflict, HubUpdate, Removed, Workspaces, check_name
from .models import CreateRequest, ErrorOut, ScaleRequest, template_out

KEEPALIVE_SECONDS = 15.0  # a comment line on an idle stream, so proxies keep it and we notice a gone client
AUTH_RESOURCE = "cloudtik"

M = TypeVar("M", bound=BaseModel)
Method = Callable[..., Awaitable[None]]


class ApiError(web.HTTPError):
    def __init__(self, status: int, message: str, path: str | None = None) -> None:
        super().__init__(status, message)
        self.message = message
        self.path = path


def _http_error(exc: CloudtikError) -> ApiError:
    if isinstance(exc, ClusterNotFound):
        return ApiError(404, str(exc))
    if isinstance(exc, ConfigError):
        return ApiError(400, str(exc), exc.path or None)
    if isinstance(exc, Conflict):
        return ApiError(409, str(exc))
    if isinstance(exc, Timeout):
        return ApiError(504, str(exc))
    return ApiError(500, str(exc))


def api_errors(method: Method) -> Method:
    """The API's errors as HTTP statuses: bad input 400, unknown cluster 404, clash 409."""

    @functools.wraps(method)
    async def wrapper(self: CloudtikHandler, *args: Any, **kwargs: Any) -> None:
        try:
            await method(self, *args, **kwargs)
        except CloudtikError as exc:
            raise _http_error(exc) from exc

    return wrapper


class CloudtikHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    def initialize(self, hub: ClusterHub) -> None:
        self.hub = hub

    def reply(self, payload: BaseModel | dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        body = payload.model_dump_json() if isinstance(payload, BaseModel) else json.dumps(payload)
        self.finish(body)

    def body_as(self, model: type[M]) -> M:
        try:
            data = json.loads(self.request.body or b"null")
        except ValueError as exc:
            raise ApiError(400, f"request body is not JSON: {exc}") from None
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            path = ".".join(str(p) for p in first["loc"]) or None
            raise ApiError(400, f"{path}: {first['msg']}" if path else first["msg"], path) from None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            error = ErrorOut(message=exc.message, path=exc.path)
        elif isinstance(exc, web.HTTPError):
            error = ErrorOut(message=exc.log_message or exc.reason or f"HTTP {status_code}")
        else:
            error = ErrorOut(message="internal error (see the Jupyter server's log)")
        self.set_header("Content-Type", "application/json")
        self.finish(error.model_dump_json())


class ClustersHandler(CloudtikHandler):
    @web.authenticated
    @authorized
    @api_errors
    async def get(self) -> None:
        """Every cluster known on this machine, whoever made it."""
        from ..api.cluster import Cluster

        clusters = await asyncio.to_thread(Cluster.list)
        self.reply({"clusters": [asdict(c) for c in clusters]})

    @web.authenticated
    @authorized
    @api_errors
    async def post(self) -> None:
        """A new cluster from a shipped template; `up` runs in the background (202), the stream shows it."""
        from ..config import load_config, shipped_templates

        request = self.body_as(CreateRequest)
        if request.template not in shipped_templates():
            raise ApiError(400, f"template: unknown template {request.template!r}", "template")
        check_name(request.cluster_name)
        source: dict[str, Any] = {"from": request.template, "cluster_name": request.cluster_name}
        if request.workers is not None:
            base = load_config({"from": request.template, "cluster_name": request.cluster_name})
            types = list(base.worker_types())
            if len(types) != 1:
                raise ApiError(400, "workers: the template has several worker types", "workers")
            source["available_node_types"] = {types[0]: {"min_workers": request.workers}}
        config = load_config(source, check_files=False)
        self.reply(self.hub.start_up(config), status=202)


class ClusterHandler(CloudtikHandler):
    @web.authenticated
    @authorized
    @api_errors
    async def get(self, name: str) -> None:
        """One cluster's status: nodes, heartbeat ages, metrics, links, events."""
        self.reply(await self.hub.status_card(name))

    @web.authenticated
    @authorized
    @api_errors
    async def delete(self, name: str) -> None:
        """`down`: terminate every node and forget the cluster."""
        terminated = await self.hub.down(name)
        self.reply({"name": name, "terminated": terminated})


class ScaleHandler(CloudtikHandler):
    @web.authenticated
    @authorized
    @api_errors
    async def post(self, name: str) -> None:
        """Ask the head for a number of workers (within min/max); returns at once (202)."""
        request = self.body_as(ScaleRequest)
        cluster = self.hub.cluster(name)
        await cluster.scale_async(request.workers, node_type=request.node_type, wait=False)
        self.reply({"name": name, "workers": request.workers, "node_type": request.node_type}, 202)


class TemplatesHandler(CloudtikHandler):
    @web.authenticated
    @authorized
    @api_errors
    async def get(self) -> None:
        """Shipped templates for the "new cluster" form, with their worker types and limits."""
        from ..config import load_config, shipped_templates

        def describe() -> list[dict[str, Any]]:
            return [
                template_out(t, load_config({"from": t, "cluster_name": "template"})).model_dump()
                for t in shipped_templates()
            ]

        self.reply({"templates": await asyncio.to_thread(describe)})


class StreamHandler(CloudtikHandler):
    """Server-sent events: ``snapshot`` (every card and workspace) on connect, then ``cluster`` (one card)
    on each change, ``removed`` when a cluster is gone and ``workspaces`` (all of them) when the workspaces
    or their clusters change. Driven by the head's state store, not by polling."""

    _updates: asyncio.Queue[HubUpdate] | None = None

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        try:
            async with self.hub.subscribe() as updates:
                self._updates = updates
                cards = [c.model_dump(mode="json") for c in self.hub.cards()]
                spaces = [w.model_dump(mode="json") for w in self.hub.workspaces()]
                await self._send("snapshot", json.dumps({"clusters": cards, "workspaces": spaces}))
                while True:
                    try:
                        update = await asyncio.wait_for(updates.get(), KEEPALIVE_SECONDS)
                    except asyncio.TimeoutError:
                        self.write(": keepalive\n\n")
                        await self.flush()
                        continue
                    if update is None:
                        break
                    if isinstance(update, Removed):
                        await self._send("removed", json.dumps({"name": update.name}))
                    elif isinstance(update, Workspaces):
                        spaces = [w.model_dump(mode="json") for w in update.workspaces]
                        await self._send("workspaces", json.dumps({"workspaces": spaces}))
                    else:
                        await self._send("cluster", update.model_dump_json())
            self.finish()
        except StreamClosedError:
            return  # the client left

    async def _send(self, event: str, data: str) -> None:
        self.write(f"event: {event}\ndata: {data}\n\n")
        await self.flush()

    def on_connection_close(self) -> None:
        if self._updates is not None:
            self._updates.put_nowait(None)  # leave now, not at the next keepalive
        super().on_connection_close()


def routes(hub: ClusterHub) -> list[tuple[str, type[web.RequestHandler], dict[str, Any]]]:
    from .proxy import proxy_routes

    name = r"(?P<name>[^/]+)"
    kwargs: dict[str, Any] = {"hub": hub}
    return [
        (r"/cloudtik/clusters", ClustersHandler, kwargs),
        (rf"/cloudtik/clusters/{name}", ClusterHandler, kwargs),
        (rf"/cloudtik/clusters/{name}/scale", ScaleHandler, kwargs),
        (r"/cloudtik/templates", TemplatesHandler, kwargs),
        (r"/cloudtik/stream", StreamHandler, kwargs),
        *proxy_routes(hub),
    ]
