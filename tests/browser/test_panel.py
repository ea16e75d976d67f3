"""The side panel in a real JupyterLab, in a real browser: a Spark cluster made by the CLI appears live in its
workspace's card with a row per node, is scaled from its card (a refused scale's error stays), its Spark
UIs open through Jupyter's proxy (a worker's too, from the master's page), a service UI talks to its
service over a WebSocket through the proxy, an undeclared port is refused, and it is taken down."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import BrowserContext, Locator, Page, expect

from cloudtik_jupyter.api import Cluster
from cloudtik_jupyter.waiting import wait_for_sync

from ..server.helpers import ECHO_PORT, TRAP_PORT, cli_up, start_echo_service, trap_hits
from .conftest import ARTIFACTS, Lab

UI_TIMEOUT_MS = 60_000


def open_from_card(context: BrowserContext, clickable: Locator) -> Page:
    """Click something on a card that opens a new tab; that tab, loaded."""
    with context.expect_page(timeout=UI_TIMEOUT_MS) as opened:
        clickable.click()
    page = opened.value
    page.wait_for_load_state()
    return page


def open_panel(page: Page, lab: Lab) -> None:
    page.goto(f"{lab.url}lab?token={lab.token}")
    tab = page.locator('.jp-SideBar li[data-id="cloudtik-panel"]')
    expect(tab).to_be_visible(timeout=UI_TIMEOUT_MS)
    tab.click()
    expect(page.locator("#cloudtik-panel .ctj-connection")).to_have_text("live", timeout=UI_TIMEOUT_MS)


def test_panel_shows_scales_proxies_and_downs_a_cli_cluster(
    lab: Lab, browser_context: BrowserContext, tmp_path: Path
) -> None:
    page = browser_context.pages[0] if browser_context.pages else browser_context.new_page()
    try:
        scenario(lab, browser_context, page, tmp_path)
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "side-panel-failure.png"))
        print(f"jupyter lab's log (tail):\n{lab.log.read_text()[-4000:]}")
        raise


def scenario(lab: Lab, browser_context: BrowserContext, page: Page, tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    started = time.monotonic()
    open_panel(page, lab)
    timings["lab + panel open"] = time.monotonic() - started

    # Made by the CLI in another process while the panel is open: it appears without a reload, inside
    # the card of its workspace (the virtual default), with a row per node.
    cli_up(
        tmp_path,
        "cli",
        workers=0,
        max_workers=2,
        template="virtual-spark",
        extra={"proxy": {"allowed_ports": [ECHO_PORT]}},
    )
    started = time.monotonic()
    workspace = page.locator('.ctj-workspace[data-workspace="default"][data-provider="virtual"]')
    card = workspace.locator('.ctj-card[data-cluster="cli"]')
    expect(card).to_have_attribute("data-phase", "running", timeout=UI_TIMEOUT_MS)
    expect(card).to_have_attribute("data-ready", "0", timeout=UI_TIMEOUT_MS)
    timings["card shows the cli cluster"] = time.monotonic() - started
    expect(workspace.locator(".ctj-workspace-count")).to_have_text("1 cluster")
    expect(card.locator(".ctj-provider")).to_have_text("virtual")
    expect(card.locator(".ctj-heartbeat").first).to_contain_text("s ago")
    expect(card.locator(".ctj-mem")).to_contain_text("GiB")
    head_row = card.locator(".ctj-node[data-seq='1']")
    expect(head_row.locator(".ctj-node-title")).to_have_text("#1 head")
    expect(head_row.locator(".ctj-node-status")).to_have_text("up-to-date")
    # Sparklines fill up as heartbeats arrive (the store keeps a ring per node).
    expect(head_row.locator(".ctj-spark-cpu")).to_have_attribute(
        "data-points", re.compile(r"^([3-9]|\d\d)$"), timeout=UI_TIMEOUT_MS
    )
    points = head_row.locator(".ctj-spark-mem polyline").get_attribute("points") or ""
    assert len(points.split()) >= 3, points

    # A refused scale (more than max_workers): its message stays while heartbeats keep updating the card.
    card.locator(".ctj-scale-input").fill("9")
    card.locator(".ctj-scale").click()
    problem = card.locator(".ctj-action-error")
    expect(problem).to_contain_text("allowed 0..2", timeout=UI_TIMEOUT_MS)
    shown_at = time.monotonic()

    def head_card() -> tuple[str | None, ...]:
        # What a heartbeat's update changes: the age (unless every look lands as long after a beat as the
        # last one did) and the sparklines' latest samples.
        return (
            head_row.locator(".ctj-heartbeat").text_content(),
            head_row.locator(".ctj-spark-cpu polyline").get_attribute("points"),
            head_row.locator(".ctj-spark-mem polyline").get_attribute("points"),
        )

    before = head_card()
    wait_for_sync(lambda: head_card() != before, timeout=UI_TIMEOUT_MS / 1000, what="a heartbeat's update")
    page.wait_for_timeout(max(0.0, 2.0 - (time.monotonic() - shown_at)) * 1000)  # observe: 2 s of updates
    expect(problem).to_be_visible()
    expect(problem).to_contain_text("allowed 0..2")
    problem.locator(".ctj-dismiss").click()
    expect(problem).to_be_hidden()

    # The "new cluster" form lists the shipped templates; the browser checks the name before sending it.
    page.locator("#cloudtik-panel .ctj-new").click()
    form = page.locator("#cloudtik-panel .ctj-form")
    expect(form.locator(".ctj-template option[value='virtual-small']")).to_have_count(1)
    expect(form.locator(".ctj-new-workers")).to_have_value("2")
    name = form.locator(".ctj-new-name")
    posts: list[str] = []
    page.on(
        "request",
        lambda r: posts.append(r.url) if r.method == "POST" and "/cloudtik/clusters" in r.url else None,
    )
    name.fill("Bad Name")
    form.locator(".ctj-create").click()
    assert name.evaluate("input => input.validity.patternMismatch") is True  # the pattern compiles
    name.fill("cli")
    form.locator(".ctj-create").click()
    expect(form.locator(".ctj-error")).to_contain_text("already exists")
    assert name.evaluate("input => input.validity.customError") is True
    assert posts == []  # neither went to the server
    form.locator(".ctj-cancel").click()
    expect(form).to_be_hidden()

    card.locator(".ctj-copy").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == 'from cloudtik_jupyter.api import Cluster\n\ncluster = Cluster("cli")\n'

    started = time.monotonic()
    card.locator(".ctj-scale-input").fill("1")
    card.locator(".ctj-scale").click()
    expect(card).to_have_attribute("data-desired", "1", timeout=UI_TIMEOUT_MS)
    expect(card).to_have_attribute("data-ready", "1", timeout=UI_TIMEOUT_MS)
    timings["scale 0 -> 1 seen in the card"] = time.monotonic() - started
    expect(card.locator(".ctj-workers")).to_have_text("1 / 1 workers")
    cluster = Cluster("cli")
    try:
        assert cluster.status().workers_ready == 1  # the real cluster, not only the page
    finally:
        cluster.close()

    # "Live view" puts `%cloudtik status cli` in the current notebook and runs it.
    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
    notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
    expect(notebook).to_be_visible(timeout=UI_TIMEOUT_MS)
    card.locator(".ctj-live").click()
    live_cell = notebook.locator(".jp-CodeCell", has_text="%cloudtik status cli")
    expect(live_cell).to_have_count(1, timeout=UI_TIMEOUT_MS)
    expect(live_cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"), timeout=UI_TIMEOUT_MS)
    # In a notebook of a Jupyter server, the view's links go through its proxy too.
    view_link = live_cell.locator(".jp-OutputArea a", has_text=":8080")
    expect(view_link).to_have_attribute(
        "href", re.compile(r"/cloudtik/proxy/cli/8080/$"), timeout=UI_TIMEOUT_MS
    )

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "side-panel.png"))

    # The Spark UIs, from the card's links, through Jupyter's proxy: pages with their styles and scripts.
    # Pages are served sandboxed, under a signed address, without Jupyter's cookies.
    master = open_from_card(browser_context, card.locator(".ctj-links a", has_text="Spark master UI"))
    assert "/cloudtik/svc/cli/head/8080/" in master.url
    expect(master).to_have_title(re.compile(r"^Spark Master at spark://"), timeout=UI_TIMEOUT_MS)
    expect(master.locator("body")).to_contain_text(re.compile(r"Workers:\s*1 Alive"))
    assert master.evaluate("document.styleSheets.length") >= 2  # its CSS came through the proxy too
    assert master.evaluate(
        "(() => { try { return document.cookie; } catch (e) { return 'refused'; } })()"
    ) in ("", "refused")
    master.screenshot(path=str(ARTIFACTS / "spark-master-ui.png"))
    # The master's link to its worker goes through the proxy as well, and can be followed.
    worker_link = master.locator("a", has_text=re.compile(r"worker-\d+"))
    expect(worker_link).to_have_attribute("href", re.compile(r"/cloudtik/proxy/cli/nodes/\d+/8081/?$"))
    worker_link.click()
    expect(master).to_have_title(re.compile(r"^Spark Worker at "), timeout=UI_TIMEOUT_MS)
    assert "/cloudtik/svc/cli/" in master.url and "/8081/" in master.url
    master.close()
    # The card's row of the worker links its UI too.
    worker_row = card.locator(".ctj-node[data-seq]:not([data-seq='1'])")
    expect(worker_row.locator(".ctj-node-links a", has_text="Spark worker UI")).to_have_count(1)
    # A declared web service on the head, by port.
    card.locator(".ctj-port-input").fill("18080")
    history = open_from_card(browser_context, card.locator(".ctj-open-port"))
    assert "/cloudtik/svc/cli/head/18080/" in history.url
    expect(history.locator("body")).to_contain_text("History Server", timeout=UI_TIMEOUT_MS)
    history.close()

    # A service UI that talks to its service over a WebSocket, through the proxy (sandboxed: no cookies).
    start_echo_service("cli", tmp_path)
    echo = browser_context.new_page()
    echo.goto(f"{lab.url}cloudtik/proxy/cli/{ECHO_PORT}/socket-page")
    expect(echo.locator("#out")).to_have_text("echo: hello", timeout=UI_TIMEOUT_MS)
    expect(echo).to_have_title(re.compile(r"^cookies: (refused)?$"))
    # A port the cluster does not declare is refused, and nothing reaches it.
    refused = echo.goto(f"{lab.url}cloudtik/proxy/cli/{TRAP_PORT}/")
    assert refused is not None and refused.status == 403
    echo.close()
    assert trap_hits("cli") == 0

    # Down asks first; then the card goes away.
    started = time.monotonic()
    card.locator(".ctj-down").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Take down cli?")
    dialog.locator("button.jp-mod-warn").click()
    expect(card).to_have_count(0, timeout=UI_TIMEOUT_MS)
    timings["down from the card"] = time.monotonic() - started
    expect(page.locator("#cloudtik-panel .ctj-empty")).to_be_visible()

    assert not [e for e in errors if "cloudtik" in e.lower()], errors
    print("browser timings:", {k: round(v, 2) for k, v in timings.items()})
