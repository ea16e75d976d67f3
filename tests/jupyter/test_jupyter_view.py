"""`ClusterView` model state against a real virtual cluster: lost workers, scale buttons, down, close."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from cloudtik_jupyter.api import Cluster
from cloudtik_jupyter.jupyter.view import ClusterView
from cloudtik_jupyter.waiting import wait_for
from tests.jupyter.helpers import kill_node, node_records, small_config

pytestmark = pytest.mark.integration

VIEW_LAG = 1.0  # the view must reflect a change within this (plus the time to notice a dead process)


def row_ids(view: ClusterView) -> list[str]:
    return [row["node_id"] for row in view.rows]


async def test_view_shows_a_lost_worker_and_its_replacement_and_scale_buttons_work(
    cloudtik_home: Path, views: list[ClusterView]
) -> None:
    cluster = Cluster(small_config("viewed", workers=2, max_workers=3, head={"controller_interval": 1.0}))
    await cluster.up_async()
    view = ClusterView(cluster)
    views.append(view)
    await wait_for(lambda: view.state == "live" and len(view.rows) == 3, timeout=10, what="the first status")
    assert [r["kind"] for r in view.rows] == ["head", "worker", "worker"]
    assert (view.workers_ready, view.workers_min, view.workers_max) == (2, 2, 3)
    assert view._minus.disabled and not view._plus.disabled  # at min: only up

    victim = view.rows[1]["node_id"]
    killed_at = time.monotonic()
    kill_node(cloudtik_home, victim)
    await wait_for(lambda: victim not in row_ids(view), timeout=5, what="the killed worker's row to go")
    assert time.monotonic() - killed_at < VIEW_LAG + 1.0
    await wait_for(  # the head's controller replaces it
        lambda: view.workers_ready == 2 and victim not in row_ids(view),
        timeout=30,
        what="a replacement worker in the view",
    )

    view._plus.click()
    assert view.workers_desired == 3  # at once: the request is shown before it is done
    await wait_for(lambda: view.workers_ready == 3, timeout=30, what="the third worker to be ready")
    assert len(node_records(cloudtik_home, "viewed")) == 4
    assert view._plus.disabled and not view._minus.disabled  # at max
    view._minus.click()
    await wait_for(lambda: view.workers_total == 2, timeout=30, what="scale down to two workers")
    assert view.error == ""
    # The scale's own note comes when its wait returns: the row may leave the view a moment before it.
    await wait_for(
        lambda: any("scaled to 2" in line for line in view.events), timeout=10, what="the scale's note"
    )

    view.scale_to(9)  # out of range: a clear message, nothing changes
    await wait_for(lambda: "allowed 2..3" in view.error, timeout=10, what="the out-of-range message")
    assert view.workers_desired == 2 and len(node_records(cloudtik_home, "viewed")) == 3
    await cluster.down_async()
    await wait_for(lambda: view.state == "gone", timeout=10, what="the view to see the cluster go")
    await view.wait_stopped()


async def test_down_asks_first_and_closing_a_view_stops_its_watch(
    cloudtik_home: Path, views: list[ClusterView]
) -> None:
    cluster = Cluster(small_config("doomed", workers=1, max_workers=2))
    await cluster.up_async()
    watcher, other = ClusterView(cluster), ClusterView("doomed")
    views += [watcher, other]
    await wait_for(lambda: len(watcher.rows) == len(other.rows) == 2, timeout=10, what="both views")

    other.close()  # the frontend closed it: its background work ends, the other view carries on
    await other.wait_stopped(timeout=5)
    assert other.state == "closed" and watcher.watching

    watcher._down.click()
    assert watcher._confirm_box.layout.display == "flex" and "2 node(s)" in watcher._question.value
    watcher._cancel.click()
    assert watcher._confirm_box.layout.display == "none"
    assert len(node_records(cloudtik_home, "doomed")) == 2  # nothing happened

    watcher._down.click()
    watcher._confirm.click()
    await wait_for(lambda: watcher.state == "gone", timeout=30, what="down to finish in the view")
    await watcher.wait_stopped()
    assert node_records(cloudtik_home, "doomed") == []
    assert watcher._down.disabled and watcher._plus.disabled and watcher._minus.disabled
    assert any("terminated 2 node(s)" in line for line in watcher.events)


def test_view_keeps_updating_while_the_kernel_runs_a_long_magic(
    shell: InteractiveShell, cloudtik_home: Path, views: list[ClusterView]
) -> None:
    """A cell blocked in `%cloudtik exec` still lets the view follow the cluster (the magic pumps it)."""
    shell.run_cell("%%cloudtik up --quiet\ncluster_name: busy\nfrom: virtual-small\n").raise_error()
    view = shell.run_line_magic("cloudtik", "status busy --view")
    assert isinstance(view, ClusterView)
    views.append(view)
    victim = view.rows[2]["node_id"]
    root_pid = next(r.pid for r in node_records(cloudtik_home, "busy") if r.node_id == victim)
    seen_at: list[float] = []
    view.observe(lambda _: seen_at.append(time.monotonic()) if victim not in row_ids(view) else None, "rows")

    # The cell kills a worker's root process, then stays busy for a while (a long-running command). The
    # removal reaches the view through the head (silence watch, then the controller's listing): a few
    # seconds on a loaded machine, well inside the cell.
    shell.run_line_magic("cloudtik", f"exec busy --quiet 'kill -9 {root_pid}; sleep 8'")
    returned_at = time.monotonic()
    assert seen_at and seen_at[0] < returned_at - 1.0, "the view did not update while the cell ran"
    shell.run_line_magic("cloudtik", "down busy --quiet")
