"""The side panel in a real JupyterLab, in a real browser: a Spark cluster made by the CLI appears live, is
scaled from its card, its Spark UIs open through Jupyter's proxy, and it is taken down after confirmation."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import BrowserContext, Locator, Page, expect

from cloudtik_jupyter.api import Cluster

from ..server.helpers import cli_up
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

    # Made by the CLI in another process while the panel is open: it appears without a reload.
    cli_up(tmp_path, "cli", workers=0, max_workers=2, template="virtual-spark")
    started = time.monotonic()
    card = page.locator('.ctj-card[data-cluster="cli"]')
    expect(card).to_have_attribute("data-phase", "running", timeout=UI_TIMEOUT_MS)
    expect(card).to_have_attribute("data-ready", "0", timeout=UI_TIMEOUT_MS)
    timings["card shows the cli cluster"] = time.monotonic() - started
    expect(card.locator(".ctj-provider")).to_have_text("virtual")
    expect(card.locator(".ctj-heartbeat")).to_contain_text("s ago")
    expect(card.locator(".ctj-mem")).to_contain_text("GiB")

    # The "new cluster" form lists the shipped templates and shows the server's answer to bad input.
    page.locator("#cloudtik-panel .ctj-new").click()
    form = page.locator("#cloudtik-panel .ctj-form")
    expect(form.locator(".ctj-template option[value='virtual-small']")).to_have_count(1)
    expect(form.locator(".ctj-new-workers")).to_have_value("2")
    form.locator(".ctj-new-name").fill("cli")
    form.locator(".ctj-create").click()
    expect(form.locator(".ctj-error")).to_contain_text("already exists")
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

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "side-panel.png"))

    # The Spark UIs, from the card's links, through Jupyter's proxy: pages with their styles and scripts.
    master = open_from_card(browser_context, card.locator(".ctj-links a", has_text="Spark master UI"))
    assert "/cloudtik/proxy/cli/8080/" in master.url
    expect(master).to_have_title(re.compile(r"^Spark Master at spark://"), timeout=UI_TIMEOUT_MS)
    expect(master.locator("body")).to_contain_text(re.compile(r"Workers:\s*1 Alive"))
    assert master.evaluate("document.styleSheets.length") >= 2  # its CSS came through the proxy too
    master.screenshot(path=str(ARTIFACTS / "spark-master-ui.png"))
    master.close()
    # Any web service on the head, by port.
    card.locator(".ctj-port-input").fill("18080")
    history = open_from_card(browser_context, card.locator(".ctj-open-port"))
    assert "/cloudtik/proxy/cli/18080/" in history.url
    expect(history.locator("body")).to_contain_text("History Server", timeout=UI_TIMEOUT_MS)
    history.close()

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
