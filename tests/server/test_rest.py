"""The server extension's REST API, on a real jupyter_server, against clusters made by the real CLI."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any

from tornado.httpclient import HTTPResponse

from cloudtik_jupyter.waiting import wait_for

from .helpers import CliCluster

Fetch = Callable[..., Awaitable[HTTPResponse]]
NO_AUTH = {"Authorization": ""}  # overrides jp_fetch's token header


def body(response: HTTPResponse) -> Any:
    return json.loads(response.body)


async def fetch(jp_fetch: Fetch, *parts: str, **kwargs: Any) -> HTTPResponse:
    return await jp_fetch(*parts, raise_error=False, follow_redirects=False, **kwargs)


async def test_unauthenticated_requests_are_refused(jp_fetch: Fetch) -> None:
    refused = [
        await fetch(jp_fetch, "cloudtik", "clusters", headers=NO_AUTH),
        await fetch(jp_fetch, "cloudtik", "clusters", "cli", headers=NO_AUTH),
        await fetch(jp_fetch, "cloudtik", "templates", headers=NO_AUTH),
        await fetch(jp_fetch, "cloudtik", "stream", headers=NO_AUTH),
        await fetch(jp_fetch, "cloudtik", "clusters", method="POST", body="{}", headers=NO_AUTH),
        await fetch(
            jp_fetch, "cloudtik", "clusters", "cli", "scale", method="POST", body="{}", headers=NO_AUTH
        ),
        await fetch(jp_fetch, "cloudtik", "clusters", "cli", method="DELETE", headers=NO_AUTH),
    ]
    assert [r.code for r in refused] == [403] * len(refused)
    # A page (the proxy) sends a browser to the login page instead.
    page = await fetch(jp_fetch, "cloudtik", "proxy", "cli", "8080", "", headers=NO_AUTH)
    assert page.code == 302 and "/login" in page.headers["Location"]


async def test_cookie_sessions_need_the_xsrf_token(jp_fetch: Fetch) -> None:
    # A token-authenticated request leaves a login cookie, as in a browser.
    first = await fetch(jp_fetch, "cloudtik", "clusters")
    jar: SimpleCookie = SimpleCookie()
    for header in first.headers.get_list("Set-Cookie"):
        jar.load(header)
    (login,) = [f"{k}={m.value}" for k, m in jar.items() if k.startswith("username-")]
    scale = ("cloudtik", "clusters", "nope", "scale")
    request = {"method": "POST", "body": json.dumps({"workers": 1})}
    forged = await fetch(jp_fetch, *scale, headers={**NO_AUTH, "Cookie": login}, **request)
    assert forged.code == 403
    with_xsrf = await fetch(
        jp_fetch,
        *scale,
        headers={**NO_AUTH, "Cookie": f"{login}; _xsrf=t0k3n", "X-XSRFToken": "t0k3n"},
        **request,
    )
    assert with_xsrf.code == 404, with_xsrf.body  # past auth and XSRF: the cluster is unknown
    assert body(with_xsrf)["message"].startswith("no cluster named 'nope'")


async def test_list_and_status_show_a_cluster_made_by_the_cli(
    cli_cluster: CliCluster, jp_fetch: Fetch
) -> None:
    listed = body(await fetch(jp_fetch, "cloudtik", "clusters"))["clusters"]
    assert {"name": "cli", "provider": "virtual", "workspace": "default"} in listed

    async def reporting() -> dict[str, Any] | None:
        card = body(await fetch(jp_fetch, "cloudtik", "clusters", "cli"))
        status = card["status"]
        return card if all(n["heartbeat_age"] is not None for n in status["nodes"]) else None

    card = await wait_for(reporting, timeout=30, what="every node of 'cli' to report a heartbeat")
    status = card["status"]
    assert (card["name"], card["provider"], card["phase"]) == ("cli", "virtual", "running")
    assert [n["kind"] for n in status["nodes"]] == ["head", "worker"]
    assert (status["workers_ready"], status["workers_desired"]) == (1, 1)
    assert (status["workers_min"], status["workers_max"]) == (1, 3)
    assert status["heartbeat_age"] < 10
    assert 0 < status["memory_used"] <= status["memory_total"]
    assert status["cpu_percent"] is not None


async def test_bad_input_gets_a_4xx_json_error(cli_cluster: CliCluster, jp_fetch: Fetch) -> None:
    async def post(path: tuple[str, ...], payload: object) -> tuple[int, dict[str, Any]]:
        raw = payload if isinstance(payload, str) else json.dumps(payload)
        response = await fetch(jp_fetch, "cloudtik", *path, method="POST", body=raw)
        return response.code, body(response)

    scale = ("clusters", "cli", "scale")
    code, error = await post(scale, {"workers": 9})
    assert (code, error["path"]) == (400, "workers") and "allowed 1..3" in error["message"]
    assert (await post(scale, {"workers": "many"}))[1]["path"] == "workers"
    assert (await post(scale, {"workers": 2, "nodes": 1}))[1]["path"] == "nodes"
    assert (await post(scale, "not json"))[0] == 400
    code, error = await post(scale, {"workers": 2, "node_type": "gpu"})
    assert (code, error["path"]) == (400, "node_type")
    assert (await post(("clusters", "ghost", "scale"), {"workers": 1}))[0] == 404
    # A name is never taken for a path to a config file.
    traversal = await fetch(jp_fetch, "cloudtik", "clusters", "..%2F..%2Fcli.yaml")
    assert traversal.code in (400, 404)
    code, error = await post(("clusters",), {"template": "../../etc/x", "cluster_name": "x"})
    assert (code, error["path"]) == (400, "template")
    code, error = await post(("clusters",), {"template": "virtual-small", "cluster_name": "Bad Name"})
    assert (code, error["path"]) == (400, "cluster_name")
    code, error = await post(("clusters",), {"template": "virtual-small", "cluster_name": "cli"})
    assert code == 409 and "already exists" in error["message"]
    code, error = await post(("clusters",), {"template": "virtual-small", "cluster_name": "x", "workers": 9})
    assert (code, error["path"]) == (400, "available_node_types.worker.max_workers")


async def test_templates_describe_their_worker_types(jp_fetch: Fetch) -> None:
    templates = {t["name"]: t for t in body(await fetch(jp_fetch, "cloudtik", "templates"))["templates"]}
    small = templates["virtual-small"]
    assert small["provider"] == "virtual"
    assert small["worker_types"] == [{"name": "worker", "min_workers": 2, "max_workers": 4}]


async def test_scale_and_down_through_rest(cli_cluster: CliCluster, jp_fetch: Fetch) -> None:
    async def status() -> dict[str, Any]:
        return body(await fetch(jp_fetch, "cloudtik", "clusters", "cli"))["status"]

    scaled = await fetch(
        jp_fetch, "cloudtik", "clusters", "cli", "scale", method="POST", body=json.dumps({"workers": 2})
    )
    assert scaled.code == 202
    assert (await status())["workers_desired"] == 2

    async def two_ready() -> bool:
        return (await status())["workers_ready"] == 2

    await wait_for(two_ready, timeout=60, what="'cli' to have 2 workers up-to-date")

    down = await fetch(jp_fetch, "cloudtik", "clusters", "cli", method="DELETE")
    assert (down.code, body(down)) == (200, {"name": "cli", "terminated": 3})
    assert body(await fetch(jp_fetch, "cloudtik", "clusters"))["clusters"] == []
    assert (await fetch(jp_fetch, "cloudtik", "clusters", "cli")).code == 404
