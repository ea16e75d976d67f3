"""The live stream the side panel reads: driven by the head's state store, on a real jupyter_server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from tornado.httpclient import HTTPResponse

from cloudtik_jupyter.api.workspace import Workspace

from .helpers import CliCluster
from .sse import Event, Stream, card_of

Fetch = Callable[..., Awaitable[HTTPResponse]]


@asynccontextmanager
async def open_stream(port: int, base_url: str, auth: dict[str, str]) -> AsyncIterator[Stream]:
    url = f"http://127.0.0.1:{port}{base_url}cloudtik/stream"
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as client,
        client.stream("GET", url, headers=auth) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = Stream(response)
        try:
            yield stream
        finally:
            await stream.close()


def status_of(name: str, event: Event) -> dict[str, Any] | None:
    card = card_of(name, event)
    return card["status"] if card and card["status"] else None


def status_field(name: str, event: Event, key: str) -> object:
    return (status_of(name, event) or {}).get(key)


def workspaces_of(event: Event) -> object:
    return event.data["workspaces"] if event.kind in ("workspaces", "snapshot") else None


def phase_of(name: str, event: Event) -> object:
    return (card_of(name, event) or {}).get("phase")


async def test_stream_shows_scale_and_down_as_they_happen(
    cli_cluster: CliCluster,
    jp_fetch: Fetch,
    jp_http_port: int,
    jp_base_url: str,
    jp_auth_header: dict[str, str],
) -> None:
    async with open_stream(jp_http_port, jp_base_url, jp_auth_header) as stream:
        snapshot = await stream.wait("the snapshot", lambda e: e.kind == "snapshot", timeout=10)
        assert [c["name"] for c in snapshot.data["clusters"]] == ["cli"]

        await stream.wait(
            "'cli' running with its worker",
            lambda e: phase_of("cli", e) == "running" and status_field("cli", e, "workers_ready") == 1,
            timeout=20,
        )
        # Heartbeats arrive through the store's change feed: card after card, with no request from us.
        since = stream.mark()
        for _ in range(3):
            beat = await stream.wait("a heartbeat", lambda e: bool(status_of("cli", e)), since=since)
            since = stream.seen.index(beat, since) + 1

        since = stream.mark()
        scaled = await jp_fetch(
            "cloudtik", "clusters", "cli", "scale", method="POST", body=json.dumps({"workers": 2})
        )
        assert scaled.code == 202
        await stream.wait(
            "the scale request to show",
            lambda e: status_field("cli", e, "workers_desired") == 2,
            since=since,
            timeout=10,
        )
        await stream.wait(
            "the second worker to be ready",
            lambda e: status_field("cli", e, "workers_ready") == 2,
            since=since,
        )

        since = stream.mark()
        down = await jp_fetch("cloudtik", "clusters", "cli", method="DELETE")
        assert down.code == 200
        stopping = await stream.wait(
            "'cli' stopping", lambda e: phase_of("cli", e) == "stopping", since=since
        )
        assert stopping.data["operation"] == "down"
        await stream.wait(
            "'cli' removed",
            lambda e: e.kind == "removed" and e.data["name"] == "cli",
            since=since,
            timeout=20,
        )


async def test_new_cluster_from_a_template(
    cloudtik_home: object,
    jp_fetch: Fetch,
    jp_http_port: int,
    jp_base_url: str,
    jp_auth_header: dict[str, str],
) -> None:
    async with open_stream(jp_http_port, jp_base_url, jp_auth_header) as stream:
        snapshot = await stream.wait("the snapshot", lambda e: e.kind == "snapshot", timeout=10)
        assert snapshot.data == {"clusters": [], "workspaces": []}
        request = {"template": "virtual-small", "cluster_name": "made", "workers": 0}
        created = await jp_fetch("cloudtik", "clusters", method="POST", body=json.dumps(request))
        assert created.code == 202
        card = json.loads(created.body)
        assert (card["name"], card["phase"], card["operation"]) == ("made", "starting", "up")
        await stream.wait(
            "'made' running",
            lambda e: (
                (card_of("made", e) or {}).get("phase") == "running"
                and (status_of("made", e) or {}).get("workers_desired") == 0
            ),
            timeout=60,
        )
        listed = json.loads((await jp_fetch("cloudtik", "clusters")).body)["clusters"]
        assert [c["name"] for c in listed] == ["made"]
        # Workspace cards: the virtual default holds the new cluster; one made elsewhere shows up empty.
        default = {"name": "default", "provider": "virtual", "created": False, "clusters": ["made"]}
        await stream.wait("the default workspace", lambda e: workspaces_of(e) == [default], timeout=10)
        await asyncio.to_thread(Workspace({"workspace_name": "team"}).create)
        team = {"name": "team", "provider": "virtual", "created": True, "clusters": []}
        await stream.wait("workspace 'team'", lambda e: workspaces_of(e) == [default, team], timeout=10)
        down = await jp_fetch("cloudtik", "clusters", "made", method="DELETE")
        assert json.loads(down.body)["terminated"] == 1
