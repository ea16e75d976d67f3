"""`ClusterForm`: validation as you type (the config layer's, by key), and Launch on a real virtual cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudtik_jupyter.jupyter.form import ClusterForm
from cloudtik_jupyter.jupyter.view import ClusterView
from cloudtik_jupyter.waiting import wait_for
from tests.jupyter.helpers import node_records


def test_form_validates_as_you_type_and_shows_errors_by_key() -> None:
    form = ClusterForm(cluster_name="demo")
    try:
        assert form.valid and form.errors == {} and not form.launch_button.disabled
        assert [row.value.name for row in form._rows()] == ["worker"]  # from the virtual-small template
        assert "cluster_name: demo" in form.preview.value

        form.name.value = "Bad_Name"
        assert not form.valid and form.launch_button.disabled
        assert "lowercase" in form.errors["cluster_name"]
        assert "lowercase" in form._field_errors["cluster_name"].value

        form.name.value = "demo"
        row = form._rows()[0]
        row.min_workers.value = 5  # above max (4)
        assert set(form.errors) == {"available_node_types.worker.max_workers"}
        assert "must be &gt;= min_workers (5)" in row.error.value
        assert form.general_errors.value == ""
        row.min_workers.value = -1
        assert "available_node_types.worker.min_workers" in form.errors
        row.min_workers.value = 1
        assert form.valid

        form.add_row.click()  # a new, unnamed worker type
        assert form.errors == {"available_node_types": "every node type needs a name"}
        form._rows()[1].name.value = "worker"
        assert "already used" in form.errors["available_node_types.worker"]
        form._rows()[1].name.value = "big"
        assert form.valid and form.config is not None
        assert set(form.config.worker_types()) == {"worker", "big"}
        form._rows()[1].remove.click()
        assert [r.value.name for r in form._rows()] == ["worker"]

        form.provider.value = "aws"
        assert form.region.layout.display == "flex" and form.account.layout.display == "none"
        assert form.valid and form.config is not None and form.config.provider.type == "aws"
        form.region.value = "eu-west-1"
        assert form.config is not None and form.config.provider.model_dump()["region"] == "eu-west-1"
        form.provider.value = "virtual"
        assert form.region.layout.display == "none"

        form.template.value = "virtual-spark"
        assert form.runtimes["spark"].value and form.name.value == "demo"
        assert form.config is not None and form.config.runtime.types == ["spark"]
    finally:
        form.close()


def test_an_existing_clusters_name_is_said_and_launch_becomes_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDTIK_HOME", str(tmp_path))
    record = tmp_path / "clusters" / "taken" / "cluster.yaml"
    record.parent.mkdir(parents=True)
    record.write_text("cluster_name: taken\n")
    form = ClusterForm(cluster_name="fresh")
    try:
        assert not form.existing and form.launch_button.description == "Launch"
        form.name.value = "taken"
        assert form.existing and form.valid  # allowed, but never silently
        assert form.launch_button.description == "Update" and form.launch_button.button_style == "warning"
        assert "exists on this machine" in form._field_errors["cluster_name"].value
        form.name.value = "fresh"
        assert not form.existing and form.launch_button.description == "Launch"
        assert form._field_errors["cluster_name"].value == ""
    finally:
        form.close()


@pytest.mark.integration
async def test_launch_shows_progress_then_the_live_view(cloudtik_home: Path) -> None:
    form = ClusterForm(cluster_name="formed")
    try:
        form._rows()[0].min_workers.value = 1
        form._rows()[0].max_workers.value = 2
        form.launch_button.click()
        assert form.state == "launching" and form.launch_button.disabled
        await wait_for(lambda: form.state == "launched", timeout=60, what="the form's launch")
        assert "up formed: up in" in form.progress.value
        assert isinstance(form.view, ClusterView) and form.output.children == (form.view,)
        view = form.view
        await wait_for(lambda: view.workers_ready == 1 and len(view.rows) == 2, timeout=10, what="the view")
        assert len(node_records(cloudtik_home, "formed")) == 2
        assert form.cluster is not None
        await form.cluster.down_async()
        await wait_for(lambda: view.state == "gone", timeout=10, what="the view to see the cluster go")
    finally:
        form.close()


@pytest.mark.integration
async def test_an_existing_name_warns_and_offers_update_instead(cloudtik_home: Path) -> None:
    first = ClusterForm(cluster_name="taken")
    second = ClusterForm(cluster_name="other")
    try:
        first._rows()[0].min_workers.value = 1
        first.launch_button.click()
        await wait_for(lambda: first.state == "launched", timeout=60, what="the first form's launch")
        assert first.launch_button.description == "Launch"  # its own cluster is no reason to warn

        # A second form with the same name: a warning, and the button offers Update.
        assert not second.existing and second.launch_button.description == "Launch"
        second.name.value = "taken"
        assert second.existing and second.valid
        assert "exists on this machine" in second._field_errors["cluster_name"].value
        assert (second.launch_button.description, second.launch_button.button_style) == ("Update", "warning")
        second.launch()  # launching a new cluster under a taken name is refused ...
        assert second.state == "editing" and "use Update" in second.general_errors.value
        assert len(node_records(cloudtik_home, "taken")) == 2  # ... and nothing changed
        second.name.value = "fresh"
        assert not second.existing and second._field_errors["cluster_name"].value == ""
        assert second.launch_button.description == "Launch"

        # Back to the taken name: Update reconfigures the cluster, on purpose this time.
        second.name.value = "taken"
        second._rows()[0].min_workers.value = 2
        second.launch_button.click()
        assert second.state == "launching"
        await wait_for(lambda: second.state != "launching", timeout=60, what="the update")
        assert second.state == "launched", second.general_errors.value
        assert "update taken: up in" in second.progress.value
        assert len(node_records(cloudtik_home, "taken")) == 3
        assert second.cluster is not None
        await second.cluster.down_async()
    finally:
        first.close()
        second.close()
