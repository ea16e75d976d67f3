"""The proxy to web UIs on a cluster's nodes, on jupyter-server-proxy (streaming, WebSockets, any method).

Two routes:
- ``/cloudtik/proxy/CLUSTER/PORT/PATH`` (the head) and ``/cloudtik/proxy/CLUSTER/nodes/SEQ/PORT/PATH`` (a
  worker): Jupyter-authenticated entry points. Only declared service ports pass (see links.py); the answer
  is a redirect to the service's signed address (see capability.py).
- ``/cloudtik/svc/CLUSTER/NODE/PORT/GRANT/PATH``: the service itself, through an SSH forward (a 0600 Unix
  socket, see forwards.py). Authorised by the signed grant, not by Jupyter's session: every answer carries
  ``Content-Security-Policy: sandbox`` so the page runs in an opaque origin and cannot act as Jupyter, and
  Jupyter's credentials (login and XSRF cookies, token, XSRF header) are never passed on to the service.
"""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server_proxy.handlers import ProxyHandler, RewritableResponse
from tornado import httputil, web

from ..config.schema import NAME_PATTERN
from ..errors import CloudtikError, ClusterNotFound
from .capability import Expired, Invalid, ServiceRef
from .forwards import NoSuchNode
from .handlers import AUTH_RESOURCE
from .hub import ClusterHub
from .links import HEAD, proxy_path

SANDBOX = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads"
_NAME = re.compile(NAME_PATTERN)
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.IGNORECASE)
# Request headers that carry Jupyter's credentials (or JupyterHub's): never sent to a service.
_CREDENTIAL_HEADERS = ("Authorization", "X-XSRFToken", "X-Xsrftoken", "X-CSRFToken")
_JUPYTER_COOKIE_PREFIXES = ("_xsrf", "jupyterhub-", "username-")
# Response headers a service may not set on a page served from Jupyter's host.
_DROPPED_RESPONSE_HEADERS = {"referrer-policy", "access-control-allow-credentials"}


def _check_path(raw_path: str) -> None:
    """No encoded slashes or backslashes and no dot segments anywhere in the request's path."""
    if _ENCODED_SEPARATOR.search(raw_path):
        raise web.HTTPError(400, "encoded slashes are not allowed in proxied paths")
    if any(segment in (".", "..") for segment in unquote(raw_path).split("/")):
        raise web.HTTPError(400, "dot segments are not allowed in proxied paths")


def _parse_ref(cluster: str, node: str, port: str) -> ServiceRef:
    if not _NAME.match(cluster):
        raise web.HTTPError(400, f"invalid cluster name {cluster!r}")
    if node != HEAD and not (node.isdigit() and len(node) <= 9):
        raise web.HTTPError(400, f"invalid node {node!r} (head, or a worker's sequence id)")
    if not (port.isdigit() and len(port) <= 5 and 0 < int(port) < 65536):
        raise web.HTTPError(400, f"invalid port {port!r}")
    return ServiceRef(cluster, node if node == HEAD else str(int(node)), int(port))


def _check_declared(hub: ClusterHub, ref: ServiceRef) -> None:
    """404 for an unknown cluster, 403 for a port the cluster does not declare."""
    try:
        cluster = hub.cluster(ref.cluster)
    except ClusterNotFound as exc:
        raise web.HTTPError(404, str(exc)) from None
    except CloudtikError as exc:
        raise web.HTTPError(400, str(exc)) from None
    if not hub.declared_ports(cluster).allows(ref.node, ref.port):
        where = "the head" if ref.node == HEAD else "workers"
        raise web.HTTPError(
            403,
            f"port {ref.port} on {where} of {ref.cluster!r} is not a declared service "
            "(list it in proxy.allowed_ports to reach it)",
        )


class EntryHandler(JupyterHandler):
    """Jupyter-authenticated: checks the target, then redirects to the service's signed address."""

    auth_resource = AUTH_RESOURCE
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

    def initialize(self, hub: ClusterHub) -> None:
        self.hub = hub

    @web.authenticated
    @authorized
    async def get(self, name: str, port: str, path: str | None = None, node: str = HEAD) -> None:
        _check_path(self.request.path)
        ref = _parse_ref(name, node, port)
        path = path or ""
        _check_declared(self.hub, ref)
        query = f"?{self.request.query}" if self.request.query else ""
        address = self.base_url + self.hub.signer.issue(ref) + quote(path, safe="/:@!$&'()*+,;=-._~")
        # 307 keeps the method and body (an API client posting to the entry URL).
        self.redirect(address + query, status=307)

    head = post = put = patch = delete = options = get


class ServiceHandler(ProxyHandler):
    """A declared service's web UI, sandboxed, authorised by its signed address."""

    def initialize(self, hub: ClusterHub) -> None:
        self.hub = hub
        self.host_allowlist = ["localhost"]  # the Unix socket of the forward, nothing else
        self.rewrite_response = (
            lambda response: self._rewrite_body(response),
        )  # a bare function: its args are inspected
        self._ref: ServiceRef | None = None
        self._links: dict[str, str] = {}  # "http://IP:PORT" on a node -> its entry URL
        # jupyter-server-proxy's WebSocket mixin pins these two to JupyterHandler's on the instance; every
        # header and the first flush must pass through the filters below.
        self.set_header = self._filtered_set_header
        self.flush = self._sandboxed_flush

    # -- authorisation ---------------------------------------------------------------------------

    async def prepare(self, *args: Any, **kwargs: Any) -> None:
        # Not jupyter-server-proxy's prepare (it demands Jupyter's session): the grant authorises.
        await JupyterHandler.prepare(self, *args, **kwargs)
        _check_path(self.request.path)
        kw = self.path_kwargs
        ref = _parse_ref(kw["name"], kw["node"], kw["port"])
        try:
            self.hub.signer.check(ref, kw["grant"])
        except Invalid:
            raise web.HTTPError(403, "invalid service address (open it again from the panel)") from None
        except Expired:
            if self.request.method not in ("GET", "HEAD") or self._is_websocket():
                raise web.HTTPError(403, "this service address has expired (open it again)") from None
            query = f"?{self.request.query}" if self.request.query else ""
            self.redirect(self._entry(ref) + quote(kw["path"], safe="/:@!$&'()*+,;=-._~") + query)
            return
        _check_declared(self.hub, ref)
        self._ref = ref

    def _is_websocket(self) -> bool:
        return self.request.headers.get("Upgrade", "").lower() == "websocket"

    def check_origin(self, origin: str | None = None) -> bool:
        # The sandboxed page's origin is "null"; the signed address is the authorisation.
        return True

    def _entry(self, ref: ServiceRef) -> str:
        return self.base_url + proxy_path(ref.cluster, ref.port, ref.node)

    # -- the request -----------------------------------------------------------------------------

    async def _target(self, path: str) -> tuple[int, str]:
        assert self._ref is not None
        ref = self._ref
        cluster = self.hub.cluster(ref.cluster)
        try:
            socket = await self.hub.forwards.socket(cluster, ref.node, ref.port)
            if "html" in self.request.headers.get("Accept", ""):
                self._links = await self.hub.node_links(cluster, self.base_url)
        except NoSuchNode as exc:
            raise web.HTTPError(404, str(exc)) from None
        except CloudtikError as exc:
            raise web.HTTPError(502, f"{ref.cluster}: {exc}") from None
        self.unix_socket = str(socket)
        return ref.port, "/" + path

    async def _serve(self, path: str) -> None:
        if self._finished:
            return  # prepare redirected
        if self.request.method == "OPTIONS" and self.request.headers.get("Access-Control-Request-Method"):
            self._preflight()
            return
        port, upstream = await self._target(path)
        try:
            await super().proxy("localhost", port, upstream)
        except web.HTTPError as exc:
            if exc.status_code in (500, 599) and self._ref is not None:
                self.hub.forwards.drop(self._ref.cluster, self._ref.node, self._ref.port)
                raise web.HTTPError(502, f"the service does not answer: {exc.log_message}") from None
            raise

    async def http_get(self, name: str, node: str, port: str, grant: str, path: str) -> None:
        await self._serve(path)

    async def open(self, name: str, node: str, port: str, grant: str, path: str) -> None:
        upstream_port, upstream = await self._target(path)
        await self.proxy_open("localhost", upstream_port, upstream)

    async def post(self, name: str, node: str, port: str, grant: str, path: str) -> None:
        await self._serve(path)

    put = patch = delete = head = options = post

    def _preflight(self) -> None:
        """CORS preflight of the sandboxed page's own requests (origin "null"), answered here."""
        self.set_status(204)
        self.set_header("Access-Control-Allow-Origin", "null")
        self.set_header("Access-Control-Allow-Methods", self.request.headers["Access-Control-Request-Method"])
        wanted = self.request.headers.get("Access-Control-Request-Headers")
        if wanted:
            self.set_header("Access-Control-Allow-Headers", wanted)
        self.set_header("Access-Control-Max-Age", "600")
        self.finish()

    # -- what goes to the service ----------------------------------------------------------------

    def _jupyter_cookie(self, name: str) -> bool:
        return name == self.identity_provider.get_cookie_name(self) or name.startswith(
            _JUPYTER_COOKIE_PREFIXES
        )

    def proxy_request_headers(self) -> httputil.HTTPHeaders:
        headers: httputil.HTTPHeaders = super().proxy_request_headers()
        for name in _CREDENTIAL_HEADERS:
            headers.pop(name, None)
        raw = "; ".join(headers.get_list("Cookie"))
        headers.pop("Cookie", None)
        if raw:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(raw)
            except Exception:  # a malformed Cookie header: pass on nothing rather than guess
                jar = SimpleCookie()
            kept = "; ".join(f"{k}={m.coded_value}" for k, m in jar.items() if not self._jupyter_cookie(k))
            if kept:
                headers["Cookie"] = kept
        if self._links:
            headers["Accept-Encoding"] = "identity"  # a page whose links we rewrite must come uncompressed
        headers["X-Forwarded-Proto"] = self.request.protocol
        headers["X-Forwarded-Host"] = self.request.host
        return headers

    def _get_context_path(self, host: str, port: int) -> str:
        # Where the service is seen from: UIs that honour X-Forwarded-Context (Spark) write their absolute
        # links under it; redirects to the service's own root are rewritten under it.
        assert self._ref is not None
        return f"{self.base_url}{self._ref.prefix()}{self.path_kwargs['grant']}"

    def _rewrite_location_header(self, location: str, host: str, port: int, proxied_path: str) -> str:
        parts = urlsplit(location)
        if parts.scheme in ("http", "https") and parts.netloc:
            entry = self._links.get(f"{parts.scheme}://{parts.netloc}")
            if entry is None and self._ref is not None and parts.port == self._ref.port:
                entry = self._get_context_path(host, port) + "/"
            if entry is not None:
                return entry + parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
            return location
        result: str = super()._rewrite_location_header(location, host, port, proxied_path)
        return result

    # -- what comes back -------------------------------------------------------------------------

    def _rewrite_body(self, response: RewritableResponse) -> None:
        """Links in a page to other nodes' declared UIs (Spark's worker links) go through the proxy."""
        if not self._links or "html" not in response.headers.get("Content-Type", ""):
            return
        if response.headers.get("Content-Encoding"):
            return  # compressed: left as is
        body = response.body
        for origin, entry in self._links.items():
            body = body.replace(f"{origin}/".encode(), entry.encode()).replace(
                f'{origin}"'.encode(), f'{entry}"'.encode()
            )
        response.body = body

    def _filtered_set_header(self, name: str, value: Any) -> None:
        if self._allowed_header(name, value):
            JupyterHandler.set_header(
                self, name, self._scoped_cookie(value) if name.lower() == "set-cookie" else value
            )

    def add_header(self, name: str, value: Any) -> None:
        if self._allowed_header(name, value):
            JupyterHandler.add_header(
                self, name, self._scoped_cookie(value) if name.lower() == "set-cookie" else value
            )

    def _allowed_header(self, name: str, value: Any) -> bool:
        lower = name.lower()
        if lower in _DROPPED_RESPONSE_HEADERS:
            return False
        if lower == "set-cookie":
            return not self._jupyter_cookie(str(value).split("=", 1)[0].strip())
        return True

    def _scoped_cookie(self, value: Any) -> str:
        """A service's cookie is kept to the service's own address (never Jupyter's paths or domain)."""
        if self._ref is None:
            return str(value)
        parts = [p.strip() for p in str(value).split(";")]
        kept = [parts[0]] + [
            p for p in parts[1:] if p.split("=", 1)[0].strip().lower() not in ("path", "domain")
        ]
        return "; ".join([*kept, f"Path={self.base_url}{self._ref.prefix()}"])

    def _sandboxed_flush(self, include_footers: bool = False) -> Any:
        if not self._headers_written and self._ref is not None:
            self._sandbox_headers()
        return JupyterHandler.flush(self, include_footers)

    def _sandbox_headers(self) -> None:
        # Every answer from a service, whatever the service said: an opaque origin, no referrer (the signed
        # address stays here), and its own requests (origin "null") readable by it.
        JupyterHandler.add_header(self, "Content-Security-Policy", SANDBOX)
        JupyterHandler.set_header(self, "Referrer-Policy", "no-referrer")
        JupyterHandler.set_header(self, "X-Content-Type-Options", "nosniff")
        if self.request.headers.get("Origin") == "null":
            JupyterHandler.set_header(self, "Access-Control-Allow-Origin", "null")
            JupyterHandler.add_header(self, "Vary", "Origin")


def proxy_routes(hub: ClusterHub) -> list[tuple[str, type[web.RequestHandler], dict[str, Any]]]:
    name = r"(?P<name>[^/]+)"
    port = r"(?P<port>[^/]+)"
    path = r"(?:/(?P<path>.*))?"
    kwargs: dict[str, Any] = {"hub": hub}
    return [
        (rf"/cloudtik/proxy/{name}/nodes/(?P<node>[^/]+)/{port}{path}", EntryHandler, kwargs),
        (rf"/cloudtik/proxy/{name}/{port}{path}", EntryHandler, kwargs),
        (
            rf"/cloudtik/svc/{name}/(?P<node>[^/]+)/{port}/(?P<grant>[^/]+)/(?P<path>.*)",
            ServiceHandler,
            kwargs,
        ),
    ]
