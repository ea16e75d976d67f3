"""The HTTP half shared by the fakes: a threaded server, a request log, faults, JSON in and out."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class FakeError(Exception):
    """Raised by a route: answered as the cloud's JSON error with `status`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, str]
    body: Any  # parsed JSON, or None
    base_url: str  # http://127.0.0.1:PORT, for URLs the fake hands back (operations to poll)
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    raw: bytes = b""  # the body as sent (object storage uploads are not JSON)


@dataclass(frozen=True)
class Response:
    status: int
    body: Any = None  # JSON, or bytes sent as they are (an object's content, an XML listing)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int


@dataclass
class Fault:
    """Fail the next `times` requests matching `method` and `path` (a regex searched in the path)."""

    method: str
    path: re.Pattern[str]
    phase: str  # "before": the cloud never saw it; "after": it was done, the answer is lost
    times: int = 1
    status: int = 400
    code: str = "InjectedFault"
    fired: list[str] = field(default_factory=list)
    each: bool = False  # fail the first request to each distinct path (any mutating method), once
    message: str = ""  # what the error says (a quota's wording, say); a default names the request

    def matches(self, method: str, path: str) -> bool:
        if self.each:
            mutating = method not in ("GET", "HEAD")
            return mutating and not self.path.search(path) and f"{method} {path}" not in self.fired
        return self.times > 0 and method == self.method and bool(self.path.search(path))


Handler = Callable[[Request], Response]
ErrorBody = Callable[[FakeError], Any]


class FakeServer:
    """Serves `handle` on 127.0.0.1:0 in a daemon thread; requests are handled one at a time (a lock),
    so the fake's state needs no locking of its own."""

    def __init__(self, handle: Handler, error_body: ErrorBody) -> None:
        self._handle = handle
        self._error_body = error_body
        self._lock = threading.Lock()
        self.requests: list[LoggedRequest] = []
        self.faults: list[Fault] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-cloud", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def fail(
        self,
        method: str,
        path: str,
        phase: str = "before",
        times: int = 1,
        status: int = 400,
        code: str = "",
        message: str = "",
    ) -> Fault:
        fault = Fault(
            method, re.compile(path), phase, times, status, code or "InjectedFault", message=message
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def fail_each(self, phase: str, unless: str = r"^$") -> Fault:
        """Fail every mutating request to a path not seen before (but those matching `unless`), once."""
        fault = Fault("*", re.compile(unless), phase, each=True)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def mutations(self) -> list[LoggedRequest]:
        return [r for r in self.requests if r.method not in ("GET", "HEAD")]

    def _serve(self, request: Request) -> Response:
        with self._lock:
            fault = next((f for f in self.faults if f.matches(request.method, request.path)), None)
            if fault is not None:
                fault.times -= 1
                fault.fired.append(f"{request.method} {request.path}" if fault.each else request.path)
            injected = FakeError(
                fault.status if fault else 400,
                fault.code if fault else "InjectedFault",
                (fault.message if fault else "") or f"injected by the test ({request.method} {request.path})",
            )
            try:
                if fault is not None and fault.phase == "before":
                    raise injected
                response = self._handle(request)
                if fault is not None:
                    raise injected
            except FakeError as exc:
                response = Response(exc.status, self._error_body(exc))
            self.requests.append(
                LoggedRequest(request.method, request.path, request.query, request.body, response.status)
            )
            return response

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # a response is two writes: no waiting on delayed ACKs

            def log_message(self, format: str, *args: Any) -> None:  # the request log is ours
                return None

            def _any(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                # A JSON API's body is JSON; an upload (object content) may be anything.
                is_json = "json" in headers.get("content-type", "json")
                try:
                    body = json.loads(raw) if raw.strip() and is_json else None
                except ValueError:
                    body = None
                    response = Response(400, server._error_body(FakeError(400, "InvalidJson", "not JSON")))
                else:
                    query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
                    host = self.headers.get("Host") or "127.0.0.1"
                    request = Request(self.command, split.path, query, body, f"http://{host}", headers, raw)
                    response = server._serve(request)
                if isinstance(response.body, bytes):
                    data = response.body
                    content_type = response.headers.get("Content-Type", "application/octet-stream")
                else:
                    data = b"" if response.body is None else json.dumps(response.body).encode()
                    content_type = "application/json; charset=utf-8"
                self.send_response(response.status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for key, value in response.headers.items():
                    if key.lower() in ("content-type", "content-length"):
                        continue
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

        return _Handler


Route = tuple[str, re.Pattern[str], Callable[..., Response]]


class Router:
    """method + path regex -> handler(request, **named groups)."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Callable[..., Response]) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$", re.IGNORECASE), handler))

    def dispatch(self, request: Request) -> Response:
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                return handler(request, **match.groupdict())
        raise FakeError(404, "NotFound", f"no route for {request.method} {request.path}")
