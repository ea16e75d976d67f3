"""The proxy to services on a cluster's head, on a real jupyter_server, against a cluster made by the CLI.

One cluster for the module (its head runs a small tornado echo service on a port the config declares in
`proxy.allowed_ports`, and a trap port it does not declare); each test gets a fresh Jupyter server.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from jupyter_server.serverapp import ServerApp
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from cloudtik_jupyter.server.app import CloudtikServerExtension

from .helpers import ECHO_PORT, TRAP_PORT, cli_up, short_cloudtik_home, start_echo_service, trap_hits

NAME = "px"
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def proxy_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    workdir = tmp_path_factory.mktemp("proxy")
    with pytest.MonkeyPatch.context() as patch, short_cloudtik_home(patch) as home:
        cli_up(workdir, NAME, workers=0, max_workers=1, extra={"proxy": {"allowed_ports": [ECHO_PORT]}})
        start_echo_service(NAME, workdir)
        yield home


@pytest.fixture
def cloudtik_home(proxy_home: Path) -> Path:
    return proxy_home


@pytest.fixture
async def client(
    jp_serverapp: ServerApp, jp_http_port: int, http_server_client: object
) -> AsyncIterator[httpx.AsyncClient]:
    """Jupyter's token in the Authorization header (`http_server_client`: the server listens)."""
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{jp_http_port}",
        headers={"Authorization": f"token {jp_serverapp.identity_provider.token}"},
        timeout=TIMEOUT,
    ) as http:
        yield http


def entry(base_url: str, port: int = ECHO_PORT, path: str = "") -> str:
    return f"{base_url}cloudtik/proxy/{NAME}/{port}/{path}"


async def service_address(client: httpx.AsyncClient, base_url: str) -> str:
    """The signed address the entry URL redirects to (ending with '/')."""
    answer = await client.get(entry(base_url))
    assert answer.status_code == 307, answer.text
    return str(answer.headers["Location"])


def hub_of(app: ServerApp) -> Any:
    extension = next(
        a
        for apps in app.extension_manager.extension_apps.values()
        for a in apps
        if isinstance(a, CloudtikServerExtension)
    )
    return extension.hub


async def test_a_declared_service_is_sandboxed_and_never_sees_jupyters_credentials(
    client: httpx.AsyncClient, jp_base_url: str, jp_serverapp: ServerApp
) -> None:
    login = next(  # the login cookie Jupyter sets for this host
        c.split("=", 1)[0]
        for c in (await client.get(f"{jp_base_url}api/status")).headers.get_list("Set-Cookie")
        if c.startswith("username-")
    )
    credentials = {
        "Cookie": f"mine=1; _xsrf=secret; {login}=session; jupyterhub-session-id=hub",
        "X-XSRFToken": "secret",
    }
    first = await client.get(entry(jp_base_url, path="some/page"), params={"q": "1"}, headers=credentials)
    assert first.status_code == 307
    address = first.headers["Location"]
    prefix = f"{jp_base_url}cloudtik/svc/{NAME}/head/{ECHO_PORT}/"
    assert address.startswith(prefix) and address.endswith("/some/page?q=1")

    page = await client.get(address, headers=credentials)
    assert page.status_code == 200, page.text
    echoed = page.json()
    assert echoed["path"] == "/some/page?q=1"
    sent = {k.lower(): v for k, v in echoed["headers"].items()}
    assert "authorization" not in sent and "x-xsrftoken" not in sent
    assert sent["cookie"] == "mine=1"  # Jupyter's (and JupyterHub's) cookies stay here
    grant_prefix = address.removesuffix("some/page?q=1").rstrip("/")
    assert sent["x-forwarded-context"] == grant_prefix  # for the service's absolute links

    # The page runs in an opaque origin, and may set cookies only for its own address.
    policy = page.headers["Content-Security-Policy"]
    assert "sandbox" in policy and "allow-same-origin" not in policy
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers.get_list("Set-Cookie") == [f"service=1; Path={prefix}"]

    # The signed address alone authorises (a sandboxed page's requests carry no Jupyter cookie) ...
    async with httpx.AsyncClient(base_url=str(client.base_url), timeout=TIMEOUT) as anonymous:
        again = await anonymous.get(address)
        assert again.status_code == 200 and again.json()["path"] == "/some/page?q=1"
        # ... while the entry URL needs Jupyter's login.
        login_page = await anonymous.get(entry(jp_base_url))
        assert login_page.status_code == 302 and "/login" in login_page.headers["Location"]

    base = address.removesuffix("some/page?q=1")
    spaced = (await client.get(base + "a%20b/c")).json()  # an encoded path: same context, same path
    assert spaced["path"] == "/a%20b/c"
    assert {k.lower(): v for k, v in spaced["headers"].items()}["x-forwarded-context"] == grant_prefix
    redirect = await client.get(base + "redirect")
    assert redirect.status_code == 302
    assert redirect.headers["Location"] == base + "landed?from=redirect"
    absolute = await client.get(base + "absolute-redirect", headers={"Accept": "text/html"})
    assert absolute.headers["Location"] == entry(jp_base_url, path="landed?from=redirect")
    # Links in a page to the cluster's declared UIs go through the proxy too.
    html = await client.get(base + "page", headers={"Accept": "text/html"})
    assert f'href="{entry(jp_base_url, path="landed")}"' in html.text, html.text


async def test_posts_streams_and_websockets_go_through(
    client: httpx.AsyncClient, jp_base_url: str, jp_http_port: int
) -> None:
    base = await service_address(client, jp_base_url)
    # A service UI's POST needs no Jupyter XSRF token (the service does its own checks).
    posted = await client.post(base + "form", content=b"a=1", headers={"Content-Type": "text/plain"})
    assert posted.status_code == 200, posted.text
    assert (posted.json()["method"], posted.json()["body"]) == ("POST", "a=1")

    # Server-sent events arrive as they are sent: the second only after /release.
    async with client.stream("GET", base + "events", headers={"Accept": "text/event-stream"}) as events:
        chunks = events.aiter_text()
        first = await asyncio.wait_for(anext(chunks), TIMEOUT)
        assert "data: one" in first and "two" not in first
        assert (await client.get(base + "release")).text == "released"
        rest = "".join([chunk async for chunk in chunks])
        assert "data: two" in rest

    socket_url = f"ws://127.0.0.1:{jp_http_port}{base}ws"
    opening = {
        "Origin": "null",
        "Cookie": "mine=1; _xsrf=secret",
        "Authorization": client.headers["Authorization"],
    }
    connection = await websocket_connect(HTTPRequest(socket_url, headers=opening))
    try:
        for text in ("hello", "again"):
            await connection.write_message(text)
            assert await asyncio.wait_for(connection.read_message(), TIMEOUT) == f"echo: {text}"
        await connection.write_message("cookie?")  # Jupyter's credentials were not passed on
        assert await asyncio.wait_for(connection.read_message(), TIMEOUT) == "cookie: mine=1; authorization: "
    finally:
        connection.close()
    forged = socket_url.replace(f"/{ECHO_PORT}/", f"/{TRAP_PORT}/")
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(forged)
    assert refused.value.code == 403


async def raw_status(port: int, target: str, headers: dict[str, str]) -> int | None:
    """Send a request line exactly as written (no client normalising it); the answer's status, or None
    when the server closed the connection without one."""
    lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), TIMEOUT)
    except ConnectionResetError:
        return None
    finally:
        writer.close()
    return int(status.split()[1]) if status else None


async def test_hostile_proxy_requests_are_refused_and_reach_nothing(
    client: httpx.AsyncClient, jp_base_url: str, jp_http_port: int, jp_serverapp: ServerApp
) -> None:
    auth = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}
    base = await service_address(client, jp_base_url)
    grant = base.rstrip("/").rsplit("/", 1)[1]
    svc = f"{jp_base_url}cloudtik/svc/{NAME}"
    proxy = f"{jp_base_url}cloudtik/proxy"
    hostile = {
        "undeclared port": f"{proxy}/{NAME}/{TRAP_PORT}/",
        "ssh port": f"{proxy}/{NAME}/22/",
        "port 0": f"{proxy}/{NAME}/0/",
        "port 65536": f"{proxy}/{NAME}/65536/",
        "huge port": f"{proxy}/{NAME}/{'9' * 30}/",
        "signed port": f"{proxy}/{NAME}/+{ECHO_PORT}/",
        "undeclared worker port": f"{proxy}/{NAME}/nodes/2/{ECHO_PORT}/",
        "node traversal": f"{proxy}/{NAME}/nodes/..%2F..%2F/{ECHO_PORT}/",
        "name traversal": f"{proxy}/..%2F..%2Fetc/{ECHO_PORT}/",
        "encoded slash in the name": f"{proxy}/{NAME}%2F{TRAP_PORT}/{ECHO_PORT}/",
        "encoded slash in the path": f"{proxy}/{NAME}/{ECHO_PORT}/a%2F..%2F..%2Fapi/",
        "dot segments in the path": f"{proxy}/{NAME}/{ECHO_PORT}/../../../api/kernels",
        "host and port in the port": f"{proxy}/{NAME}/{ECHO_PORT}@127.0.0.1:{TRAP_PORT}/",
        "absolute URL as the port": f"{proxy}/{NAME}/http:%2F%2F127.0.0.1:{TRAP_PORT}/",
        "absolute request target": f"http://127.0.0.1:{TRAP_PORT}/",
        "unknown cluster": f"{proxy}/ghost/{ECHO_PORT}/",
        "forged grant": f"{svc}/head/{ECHO_PORT}/9999999999.{'A' * 24}/",
        "grant moved to the trap": f"{svc}/head/{TRAP_PORT}/{grant}/",
        "grant moved to a worker": f"{svc}/2/{ECHO_PORT}/{grant}/",
        "grant moved to another cluster": f"{jp_base_url}cloudtik/svc/other/head/{ECHO_PORT}/{grant}/",
        "grant traversal": f"{svc}/head/{ECHO_PORT}/../../../api/kernels",
        "dot segments after a grant": f"{base}../../../../api/kernels",
    }
    statuses = {what: await raw_status(jp_http_port, target, auth) for what, target in hostile.items()}
    assert {w: s for w, s in statuses.items() if s is None or not 400 <= s < 500} == {}, statuses
    # Headers beyond tornado's limit: refused (the connection is closed, or a 4xx).
    huge = await raw_status(jp_http_port, f"{proxy}/{NAME}/{ECHO_PORT}/", {**auth, "X-Big": "x" * 200_000})
    assert huge is None or 400 <= huge < 500
    assert trap_hits(NAME) == 0  # no connection ever reached the undeclared port
    assert hub_of(jp_serverapp).forwards._open.keys() <= {(NAME, "head", ECHO_PORT)}


async def test_forwards_are_unix_sockets_only_this_user_can_open(
    client: httpx.AsyncClient, jp_base_url: str, jp_serverapp: ServerApp
) -> None:
    def listening() -> set[tuple[str, int]]:
        connections = psutil.Process().net_connections(kind="inet")
        return {(c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN}

    def unix_sockets(prefix: str) -> set[Path]:
        paths = {Path(c.laddr) for c in psutil.Process().net_connections(kind="unix") if c.laddr}
        return {p for p in paths if p.parent.name.startswith(prefix)}

    before = listening()
    base = await service_address(client, jp_base_url)
    assert (await client.get(base + "x")).status_code == 200  # a forward to the service
    card = (await client.get(f"{jp_base_url}cloudtik/clusters/{NAME}")).json()  # forwards to the store
    assert card["status"]["nodes"], card
    assert listening() == before  # no TCP port was opened for any of them
    forwards = hub_of(jp_serverapp).forwards
    (forward,) = forwards._open.values()
    store_sockets = unix_sockets("ctj-rs-")
    assert len(store_sockets) == 3  # the primary and two shards
    for path in [forward.path, *store_sockets]:
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
        mode = os.stat(path)
        assert stat.S_ISSOCK(mode.st_mode) and stat.S_IMODE(mode.st_mode) == 0o600, path
        assert mode.st_uid == os.getuid()
