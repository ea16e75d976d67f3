"""`ClusterForm`: build a cluster config with widgets, validated as you type; Launch brings it up.

Every edit re-validates through the config layer (`form_spec.validate`) and shows each problem next to
its field. Launch runs `Cluster.up_async` on the package's private loop; its progress is posted to an
`Inbox` and drawn on the kernel's thread, and when the cluster is up the form shows its live view.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any, Union

import ipywidgets as widgets
from traitlets import Bool, Dict, Unicode

from .. import aio
from ..errors import CloudtikError
from . import form_spec as spec
from .progress import ProgressBoard
from .rendering import error_html
from .updater import Inbox

if TYPE_CHECKING:
    from ..api.cluster import Cluster
    from ..cluster.progress import ProgressEvent
    from ..config.schema import ClusterConfig
    from .view import ClusterView

NO_TEMPLATE = "(none)"


def _labelled() -> dict[str, Any]:
    """Keyword arguments for a labelled field; a fresh Layout each (a shared one would hide them all)."""
    return {"style": {"description_width": "110px"}, "layout": widgets.Layout(width="360px")}


@dataclass(frozen=True)
class LaunchDone:
    error: str | None


FormMessage = Union["ProgressEvent", LaunchDone]


class WorkerRow(widgets.HBox):
    """One worker node type: name, min and max workers, and its own error line."""

    def __init__(self, value: spec.WorkerType) -> None:
        self.name = widgets.Text(value=value.name, description="worker type", **_labelled())
        self.min_workers = widgets.IntText(
            value=value.min_workers, description="min", layout={"width": "120px"}
        )
        self.max_workers = widgets.IntText(
            value=value.max_workers, description="max", layout={"width": "120px"}
        )
        self.remove = widgets.Button(description="remove", layout=widgets.Layout(width="auto"))
        self.error = widgets.HTML()
        super().__init__([self.name, self.min_workers, self.max_workers, self.remove, self.error])

    @property
    def value(self) -> spec.WorkerType:
        return spec.WorkerType(self.name.value.strip(), self.min_workers.value, self.max_workers.value)


class ClusterForm(widgets.VBox):
    """Provider, template, node types and counts, runtimes; Launch shows progress, then the live view."""

    errors = Dict().tag(sync=True)  # key path -> message, as the config layer reports them
    valid = Bool(False).tag(sync=True)
    existing = Bool(False).tag(sync=True)  # a cluster of that name exists here: Launch becomes Update
    state = Unicode("editing").tag(sync=True)  # editing | launching | launched | failed

    def __init__(self, *, cluster_name: str = "my-cluster", template: str | None = "virtual-small") -> None:
        from ..config import shipped_templates
        from ..providers import provider_types
        from ..runtimes import runtime_names

        self.cluster: Cluster | None = None
        self.view: ClusterView | None = None
        self.config: ClusterConfig | None = None
        self._launch_future: Future[Any] | None = None
        self._board: ProgressBoard | None = None
        self._inbox: Inbox[FormMessage] = Inbox(self._apply)
        self._filling = False  # while a template fills the fields, validate once at the end

        self.name = widgets.Text(description="cluster name", continuous_update=True, **_labelled())
        self.template = widgets.Dropdown(
            options=[NO_TEMPLATE, *shipped_templates()], description="template", **_labelled()
        )
        self.provider = widgets.Dropdown(options=provider_types(), description="provider", **_labelled())
        self.region = widgets.Text(description="region", **_labelled())
        self.account = widgets.Text(description="project", **_labelled())
        self.head_type = widgets.Text(description="head type", **_labelled())
        self.rows = widgets.VBox()
        self.add_row = widgets.Button(description="add worker type", layout=widgets.Layout(width="auto"))
        self.runtimes = {name: widgets.Checkbox(description=name, indent=False) for name in runtime_names()}
        self.preview = widgets.HTML()
        self.general_errors = widgets.HTML()
        self.launch_button = widgets.Button(description="Launch", button_style="primary", disabled=True)
        self.stop_button = widgets.Button(description="Stop", layout=widgets.Layout(display="none"))
        self.progress = widgets.HTML()
        self.output = widgets.VBox()
        self._field_errors = {key: widgets.HTML() for key in ("cluster_name", "provider", "head_node_type")}

        for field in (self.name, self.region, self.account, self.head_type, self.provider):
            field.observe(lambda _: self.validate(), names="value")
        for box in self.runtimes.values():
            box.observe(lambda _: self.validate(), names="value")
        self.template.observe(lambda change: self._use_template(change["new"]), names="value")
        self.provider.observe(lambda _: self._show_provider_fields(), names="value")
        self.add_row.on_click(lambda _: self._add_row(spec.WorkerType("", 0, 1)))
        self.launch_button.on_click(lambda _: self.update() if self.existing else self.launch())
        self.stop_button.on_click(lambda _: self.stop())

        super().__init__(
            [
                widgets.HBox([self.name, self._field_errors["cluster_name"]]),
                self.template,
                widgets.HBox([self.provider, self._field_errors["provider"]]),
                self.region,
                self.account,
                widgets.HBox([self.head_type, self._field_errors["head_node_type"]]),
                self.rows,
                self.add_row,
                widgets.HBox([widgets.Label("runtimes"), *self.runtimes.values()]),
                self.general_errors,
                widgets.HBox([self.launch_button, self.stop_button]),
                widgets.Accordion([self.preview], titles=("config (YAML)",)),
                self.progress,
                self.output,
            ]
        )
        self.set_values(spec.FormValues(cluster_name=cluster_name))
        if template:
            self.template.value = template  # fills the fields from the template and validates
        self.validate()

    # -- values ---------------------------------------------------------------------------------

    def values(self) -> spec.FormValues:
        return spec.FormValues(
            cluster_name=self.name.value.strip(),
            provider=self.provider.value or "virtual",
            region=self.region.value,
            account=self.account.value,
            head_type=self.head_type.value.strip(),
            workers=tuple(row.value for row in self._rows()),
            runtimes=tuple(name for name, box in self.runtimes.items() if box.value),
        )

    def set_values(self, values: spec.FormValues) -> None:
        self._filling = True
        try:
            self.name.value = values.cluster_name
            self.provider.value = values.provider
            self.region.value = values.region
            self.account.value = values.account
            self.head_type.value = values.head_type
            self.rows.children = ()
            for worker in values.workers:
                self._add_row(worker)
            for name, box in self.runtimes.items():
                box.value = name in values.runtimes
        finally:
            self._filling = False
        self._show_provider_fields()
        self.validate()

    def _rows(self) -> list[WorkerRow]:
        return [row for row in self.rows.children if isinstance(row, WorkerRow)]

    def _add_row(self, value: spec.WorkerType) -> None:
        row = WorkerRow(value)
        for field in (row.name, row.min_workers, row.max_workers):
            field.observe(lambda _: self.validate(), names="value")
        row.remove.on_click(lambda _: self._remove_row(row))
        self.rows.children = (*self.rows.children, row)
        self.validate()

    def _remove_row(self, row: WorkerRow) -> None:
        self.rows.children = tuple(r for r in self.rows.children if r is not row)
        row.close()
        self.validate()

    def _use_template(self, template: str) -> None:
        if template == NO_TEMPLATE:
            return
        try:
            values = spec.template_values(template, self.name.value.strip())
        except CloudtikError as exc:
            self.general_errors.value = error_html(f"template {template}: {exc}")
            return
        self.set_values(values)

    def _show_provider_fields(self) -> None:
        region_key, account_key = spec.PROVIDER_KEYS.get(self.provider.value or "", (None, None))
        self.region.description = region_key or "region"
        self.account.description = account_key or "account"
        self.region.layout.display = "flex" if region_key else "none"
        self.account.layout.display = "flex" if account_key else "none"

    # -- validation (on every edit) ---------------------------------------------------------------

    def validate(self) -> bool:
        """Check the fields with the config layer; show each problem by its field. True when valid."""
        if self._filling:
            return self.valid
        values = self.values()
        result = spec.validate(values)
        self.config = result.config
        self.errors = result.errors
        self.valid = result.config is not None
        self._show_errors(values, result.errors)
        self._show_existing(values.cluster_name if "cluster_name" not in result.errors else "")
        self.preview.value = self._yaml(values)
        self.launch_button.disabled = not self.valid or self.state in ("launching", "launched")
        return self.valid

    def _show_errors(self, values: spec.FormValues, errors: dict[str, str]) -> None:
        shown: set[str] = set()
        for key, label in self._field_errors.items():
            mine = {k: v for k, v in errors.items() if k == key or k.startswith(key + ".")}
            label.value = error_html("; ".join(mine.values()))
            shown |= mine.keys()
        for row in self._rows():
            prefix = f"available_node_types.{row.value.name}"
            mine = {
                k: v
                for k, v in errors.items()
                if row.value.name and (k == prefix or k.startswith(prefix + "."))
            }
            row.error.value = error_html(
                "; ".join(f"{k.removeprefix(prefix + '.')}: {v}" for k, v in mine.items())
            )
            shown |= mine.keys()
        rest = [f"{k}: {v}" if k else v for k, v in errors.items() if k not in shown]
        self.general_errors.value = "<br>".join(error_html(line) for line in rest)

    def _show_existing(self, name: str) -> None:
        """Never reconfigure a cluster silently: an existing name is said, and Launch becomes Update."""
        from ..cluster.context import record_exists

        if self.state in ("launching", "launched"):
            return  # this form's own cluster
        self.existing = bool(name) and record_exists(name)
        if self.existing:
            self._field_errors["cluster_name"].value = (
                f'<span style="color:#9a6700">a cluster named <b>{escape(name)}</b> exists on this machine: '
                "Update applies this config to it</span>"
            )
        launched = self.state in ("launching", "launched")
        self.launch_button.description = "Update" if self.existing and not launched else "Launch"
        self.launch_button.button_style = "warning" if self.existing else "primary"

    @staticmethod
    def _yaml(values: spec.FormValues) -> str:
        from ..config.yaml_io import dump_yaml

        return f"<pre>{escape(dump_yaml(values.to_mapping()))}</pre>"

    # -- launch -------------------------------------------------------------------------------------

    def launch(self) -> None:
        """What the Launch button does: `up` of a new cluster on the private loop, progress and then the
        view here. A name already in use is refused (see `update`)."""
        self._start(update=False)

    def update(self) -> None:
        """What the button does when the name is in use: `up` the existing cluster with this config."""
        self._start(update=True)

    def _start(self, *, update: bool) -> None:
        if not self.validate() or self.config is None or self.state in ("launching", "launched"):
            return
        if self.existing and not update:
            self.general_errors.value = error_html(
                f"a cluster named {self.config.cluster_name!r} exists: use Update to reconfigure it, "
                "or choose another name"
            )
            return
        from ..api.cluster import Cluster

        self.cluster = Cluster(self.config)
        self.state = "launching"
        self.launch_button.disabled = True
        self.stop_button.layout.display = "flex"
        self._board = ProgressBoard(f"{'update' if update else 'up'} {self.cluster.name}")
        self.progress.value = self._board._repr_html_()
        future = aio.submit(self.cluster.up_async(progress=self._inbox.post))
        future.add_done_callback(self._launch_finished)
        self._launch_future = future

    def _launch_finished(self, future: Future[Any]) -> None:  # on the private loop's thread
        if future.cancelled():
            self._inbox.post(LaunchDone("stopped; Launch again to pick up where it left off"))
        elif (exc := future.exception()) is not None:
            self._inbox.post(LaunchDone(str(exc) if isinstance(exc, CloudtikError) else repr(exc)))
        else:
            self._inbox.post(LaunchDone(None))

    def stop(self) -> None:
        """Stop a launch in progress (re-launching converges)."""
        if self._launch_future is not None:
            self._launch_future.cancel()

    def _apply(self, messages: list[FormMessage]) -> None:
        board = self._board
        for message in messages:
            if isinstance(message, LaunchDone):
                self._finish(message)
            elif board is not None:
                board.add(message)
        if board is not None:
            self.progress.value = board._repr_html_()

    def _finish(self, done: LaunchDone) -> None:
        self.stop_button.layout.display = "none"
        if self._board is not None:
            self._board.finish("failed" if done.error else "up")
        if done.error is not None:
            self.state = "failed"
            self.general_errors.value = error_html(f"launch failed: {done.error}")
            self.launch_button.disabled = not self.valid  # fix what failed and Launch again
            return
        from .view import ClusterView

        assert self.cluster is not None
        self.state = "launched"
        self.view = ClusterView(self.cluster)
        self.output.children = (self.view,)

    def close(self) -> None:
        self._inbox.close()
        if self.view is not None:
            self.view.close()
        if self.cluster is not None and self.state != "launching":
            with contextlib.suppress(CloudtikError):
                self.cluster.close()  # its connections; the cluster keeps running
        super().close()
