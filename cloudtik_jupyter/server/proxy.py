"""``/cloudtik/proxy/CLUSTER/PORT/PATH``: a service on a cluster's head, through this Jupyter server.

The request goes over an SSH forward to the head (see forwards.py), so a web UI works from any browser
that reaches Jupyter, not only from the cluster's network. Jupyter's own credentials (token, login and
XSRF cookies) are never passed on to the service.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from tornado import httpclient, web
from tornado.httputil import HTTPHeaders

from ..errors import CloudtikError
from .handlers import AUTH_RESOURCE, _http_error
from .hub import ClusterHub
from .models import proxy_path

if TYPE_CHECKING:
    from ..api.cluster import Cluster

REQUEST_TIMEOUT_SECONDS = 60.0
# Hop-by-hop headers (RFC 9110 7.6.1) and those tornado sets itself.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


class ProxyHandler(JupyterHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    auth_resource = AUTH_RESOURCE

    def initialize(self, hub: ClusterHub) -> None:
        self.hub = hub

    @web.authenticated
    @authorized
    async def get(self, name: str, port: str, path: str) -> None:
        await self._proxy(name, port, path)

    @web.authenticated
    @authorized
    async def head(self, name: str, port: str, path: str) -> None:
        await self._proxy(name, port, path)

    @web.authenticated
    @authorized
    async def post(self, name: str, port: str, path: str) -> None:
        await self._proxy(name, port, path)

    @web.authenticated
    @authorized
    async def put(self, name: str, port: str, path: str) -> None:
        await self._proxy(name, port, path)

    @web.authenticated
    @authorized
    async def patch(self, name: str, port: str, path: str) -> None:
        await self._proxy(name, port, path)

    @web.authenticated
    @authorized
    async def delete(self, name: str, port: str, path: str) -> None:
        await self._proxy(name, port, path)

    @web.authenticated
    @authorized
    async def options(self, name: str, port: str, path: str) -> None:
        await self._proxy(name, port, path)

    async def _proxy(self, name: str, port_text: str, path: str) -> None:
        port = int(port_text)
        if not 0 < port < 65536:
            raise web.HTTPError(400, f"invalid port {port}")
        try:
            cluster = self.hub.cluster(name)
            response = await self._fetch(cluster, port, path)
        except CloudtikError as exc:
            raise _http_error(exc) from exc
        self.set_status(response.code, response.reason)
        self._clear_representation_headers()
        prefix = self.base_url + proxy_path(name, port)
        for key, value in response.headers.get_all():
            lower = key.lower()
            if lower in _HOP_BY_HOP or (lower == "set-cookie" and self._is_ours(value)):
                continue
            if lower == "location":
                value = _rewrite_location(value, prefix, port)
            self.add_header(key, value)
        if self.request.method != "HEAD" and response.body:
            self.write(response.body)
        self.finish()

    async def _fetch(self, cluster: Cluster, port: int, path: str) -> httpclient.HTTPResponse:
        forwards = self.hub.forwards
        query = f"?{self.request.query}" if self.request.query else ""
        failure: Exception | None = None
        for _ in range(2):  # a stale forward (head replaced or restarted) is reopened once
            local = await forwards.local_port(cluster, port)
            request = httpclient.HTTPRequest(
                f"http://127.0.0.1:{local}/{path}{query}",
                method=self.request.method or "GET",
                headers=self._upstream_headers(self.base_url + proxy_path(cluster.name, port)),
                body=self.request.body if self.request.method in ("POST", "PUT", "PATCH") else None,
                allow_nonstandard_methods=True,
                follow_redirects=False,
                decompress_response=False,
                request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
            try:
                return await httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
            except (OSError, httpclient.HTTPClientError) as exc:  # no HTTP answer at all
                failure = exc
                forwards.drop(cluster.name, port)
        raise web.HTTPError(502, f"port {port} on the head of {cluster.name!r} does not answer: {failure}")

    def _upstream_headers(self, prefix: str) -> HTTPHeaders:
        headers = HTTPHeaders()
        for key, value in self.request.headers.get_all():
            lower = key.lower()
            if lower in _HOP_BY_HOP or lower == "authorization":
                continue
            if lower == "cookie":
                value = self._foreign_cookies(value)
                if not value:
                    continue
            headers.add(key, value)
        # Where the service is seen from: UIs that honour these (Spark's reads X-Forwarded-Context) write
        # their absolute links under the proxy's path.
        headers["X-Forwarded-Context"] = headers["X-Forwarded-Prefix"] = prefix.rstrip("/")
        headers["X-Forwarded-Proto"] = self.request.protocol
        headers["X-Forwarded-Host"] = self.request.host
        return headers

    def _our_cookie_names(self) -> set[str]:
        return {self.identity_provider.get_cookie_name(self), "_xsrf"}

    def _foreign_cookies(self, header: str) -> str:
        """The request's cookies minus Jupyter's own (login, XSRF): the service must not see them."""
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        ours = self._our_cookie_names()
        return "; ".join(f"{k}={m.coded_value}" for k, m in jar.items() if k not in ours)

    def _is_ours(self, set_cookie: str) -> bool:
        """A service may not overwrite Jupyter's login or XSRF cookie."""
        name = set_cookie.split("=", 1)[0].strip()
        return name in self._our_cookie_names()

    def _clear_representation_headers(self) -> None:
        # The service's answer is passed on as is; drop the defaults tornado/Jupyter set for our own pages.
        for key in ("Content-Type", "Content-Length"):
            self.clear_header(key)


def _rewrite_location(location: str, prefix: str, port: int) -> str:
    """Redirects to the service's own root (``/jobs/``, ``http://HEAD:PORT/jobs/``) stay in the proxy."""
    parts = urlsplit(location)
    own_root = location.startswith("/") and not location.startswith("//")
    if own_root or (parts.scheme in ("http", "https") and parts.port == port):
        return prefix + parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
    return location  # relative, or elsewhere: not ours to rewrite
