"""`ClusterView`: the live view of one cluster (what `%cloudtik status NAME` displays).

Nodes table, workers ready vs min/max, service links, recent events, scale buttons and down with
confirmation. The cluster is watched on the package's private loop (`Cluster.watch_async`); what it
yields is posted to an `Inbox` and written into the widget by `_apply`, on the kernel's thread only.
The watch ends when the view is closed or the cluster goes away.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from traitlets import Dict, Int, List, Unicode

from .. import aio
from ..errors import CloudtikError
from . import rendering as R
from .links import link_hrefs
from .updater import Inbox

if TYPE_CHECKING:
    from ..api.cluster import Cluster
    from ..cluster.progress import ProgressEvent, ProgressSink
    from ..records.cluster import ClusterStatus

EVENTS_SHOWN = 8
# The longest a view may lag a change the state store does not publish (e.g. an instance dying); what the
# store publishes arrives at once.
WATCH_INTERVAL = 0.5


@dataclass(frozen=True)
class Seen:
    status: ClusterStatus


@dataclass(frozen=True)
class Note:
    text: str
    at: float


@dataclass(frozen=True)
class Failed:
    message: str


@dataclass(frozen=True)
class Settled:
    """A scale request from this view finished (the count it asked for is now the status's business)."""


@dataclass(frozen=True)
class Gone:
    """The cluster no longer exists."""


Message = Seen | Note | Failed | Settled | Gone


def _button(description: str, tooltip: str, style: str = "") -> widgets.Button:
    return widgets.Button(
        description=description,
        tooltip=tooltip,
        button_style=style,
        layout=widgets.Layout(width="auto"),
    )


_open_views: weakref.WeakSet[ClusterView] = weakref.WeakSet()


def cluster_gone(name: str) -> None:
    """Tell every open view of cluster `name` it is gone (a `down` from here need not wait for the watch)."""
    for view in list(_open_views):
        if view.cluster_name == name:
            view._inbox.post(Gone())


class ClusterView(widgets.VBox):
    """Live view of `cluster` (a `Cluster` or the name of one known on this machine)."""

    cluster_name = Unicode("").tag(sync=True)
    state = Unicode("connecting").tag(sync=True)  # connecting | live | gone | closed
    rows = List(Dict()).tag(sync=True)  # one `rendering.RowCells` per node, as JSON
    workers_ready = Int(0).tag(sync=True)
    workers_total = Int(0).tag(sync=True)
    workers_min = Int(0).tag(sync=True)
    workers_max = Int(0).tag(sync=True)
    workers_desired = Int(0).tag(sync=True)
    links = List(Dict()).tag(sync=True)
    events = List(Unicode()).tag(sync=True)
    error = Unicode("").tag(sync=True)

    def __init__(
        self, cluster: Cluster | str, *, status: ClusterStatus | None = None, watch: bool = True
    ) -> None:
        self._owns_cluster = isinstance(cluster, str)  # made here: its connections are ours to close
        if isinstance(cluster, str):
            from ..api.cluster import Cluster

            cluster = Cluster(cluster)
        self.cluster = cluster
        self.status: ClusterStatus | None = None
        self._notes: list[Note] = []
        self._lock = threading.Lock()
        self._scale_target: int | None = None  # guarded by _lock: the count the scale loop works towards
        self._scaling = False
        self._futures: list[Future[Any]] = []
        # Relayed: the view keeps updating while a cell runs. Every widget write takes `_inbox.lock`.
        self._inbox: Inbox[Message] = Inbox(self._apply, relay=True)
        self._hrefs: dict[str, str] = {}

        self._header = widgets.HTML()
        self._table = widgets.HTML()
        self._links = widgets.HTML()
        self._events = widgets.HTML()
        self._error = widgets.HTML()
        self._minus = _button("-1 worker", "Remove a worker")
        self._plus = _button("+1 worker", "Add a worker")
        self._down = _button("Down", "Terminate every node of this cluster", "danger")
        self._question = widgets.HTML()
        self._confirm = _button("Terminate", "Yes, terminate all nodes", "danger")
        self._cancel = _button("Cancel", "Keep the cluster")
        self._confirm_box = widgets.HBox(
            [self._question, self._confirm, self._cancel], layout=widgets.Layout(display="none")
        )
        self._minus.on_click(lambda _: self.scale_by(-1))
        self._plus.on_click(lambda _: self.scale_by(1))
        self._down.on_click(lambda _: self.ask_down())
        self._confirm.on_click(lambda _: self.confirm_down())
        self._cancel.on_click(lambda _: self.cancel_down())
        controls = widgets.HBox([self._minus, self._plus, self._down])
        super().__init__(
            [self._header, self._table, self._links, self._events, controls, self._confirm_box, self._error]
        )
        self.cluster_name = cluster.name
        _open_views.add(self)
        if self.comm is not None and hasattr(self.comm, "on_close"):
            self.comm.on_close(lambda _msg: self._stop("closed"))  # the frontend closed the view
        if status is not None:
            self._apply([Seen(status)])
        else:
            self._render()
        if watch:
            self._start(self._watch())

    # -- background work (private loop) ----------------------------------------------------------

    def _start(self, coro: Any) -> None:
        self._futures.append(aio.submit(coro))

    @property
    def watching(self) -> bool:
        """Whether any background work for this view is still running."""
        return any(not f.done() for f in self._futures)

    async def _watch(self) -> None:
        try:
            async for status in self.cluster.watch_async(max_interval=WATCH_INTERVAL):
                self._inbox.post(Seen(status))
        except CloudtikError as exc:
            self._inbox.post(Failed(f"lost track of the cluster: {exc}"))
            return
        self._inbox.post(Gone())

    def progress_sink(self) -> ProgressSink:
        """A progress callback (any thread) that shows events in this view's recent events."""

        def sink(event: ProgressEvent) -> None:
            who = f"{event.node_id}: " if event.node_id else ""
            self._inbox.post(Note(f"{who}{event.message}", time.time()))

        return sink

    def follow(self, future: Future[Any], what: str) -> None:
        """Show in this view how background work started elsewhere (e.g. `up --no-wait`) ends."""

        def done(f: Future[Any]) -> None:
            if f.cancelled():
                self._inbox.post(Note(f"{what}: cancelled", time.time()))
            elif isinstance(exc := f.exception(), CloudtikError):
                self._inbox.post(Failed(f"{what}: {exc}"))
            elif exc is not None:
                self._inbox.post(Failed(f"{what}: unexpected {type(exc).__name__}: {exc}"))
            else:
                self._inbox.post(Note(f"{what}: done", time.time()))

        self._futures.append(future)
        future.add_done_callback(done)

    # -- actions (the buttons call these) --------------------------------------------------------

    def _current_count(self) -> int:
        with self._lock:
            if self._scale_target is not None:
                return self._scale_target
        return self.status.workers_desired if self.status else 0

    def scale_by(self, delta: int) -> None:
        self.scale_to(self._current_count() + delta)

    def scale_to(self, workers: int) -> None:
        """Ask for `workers` workers; requests made while one runs are merged (the last one wins)."""
        with self._lock:
            self._scale_target = workers
            start = not self._scaling
            self._scaling = True
        with self._inbox.lock:
            self.error = ""
            self.workers_desired = workers
            self._render()
        if start:
            self._start(self._scale_until_settled())

    async def _scale_until_settled(self) -> None:
        sink = self.progress_sink()
        while True:
            with self._lock:
                target = self._scale_target
            if target is None:
                break
            try:
                await self.cluster.scale_async(target, progress=sink)
            except CloudtikError as exc:
                with self._lock:
                    self._scale_target, self._scaling = None, False
                self._inbox.post(Failed(str(exc)))
                self._inbox.post(Settled())
                return
            with self._lock:
                if self._scale_target == target:
                    self._scale_target, self._scaling = None, False
                    break
        self._inbox.post(Note(f"scaled to {target} worker(s)", time.time()))
        self._inbox.post(Settled())

    def ask_down(self) -> None:
        with self._inbox.lock:
            count = len(self.status.nodes) if self.status else 0
            self._question.value = f"Terminate all {count} node(s) of <b>{self.cluster_name}</b>?"
            self._confirm_box.layout.display = "flex"

    def cancel_down(self) -> None:
        with self._inbox.lock:
            self._confirm_box.layout.display = "none"

    def confirm_down(self) -> None:
        with self._inbox.lock:
            self._confirm_box.layout.display = "none"
            self._down.disabled = True
        self._start(self._terminate())

    async def _terminate(self) -> None:
        try:
            count = await self.cluster.down_async(progress=self.progress_sink())
        except CloudtikError as exc:
            self._inbox.post(Failed(f"down failed: {exc}"))
            return
        self._inbox.post(Note(f"terminated {count} node(s)", time.time()))
        self._inbox.post(Gone())

    # -- the one writer of widget state (kernel thread) -------------------------------------------

    def _apply(self, messages: list[Message]) -> None:
        if self.state == "closed":
            return
        with self.hold_sync():
            for message in messages:
                if isinstance(message, Seen):
                    self._take_status(message.status)
                elif isinstance(message, Note):
                    self._notes = [*self._notes, message][-EVENTS_SHOWN:]
                elif isinstance(message, Failed):
                    self.error = message.message
                elif isinstance(message, Settled) and self.status is not None:
                    self.workers_desired = self.status.workers_desired
                elif isinstance(message, Gone):
                    self.rows, self.workers_ready, self.workers_total = [], 0, 0  # nothing is left
                    self._stop("gone")
            self.events = self._event_lines()
            self._render()

    def _take_status(self, status: ClusterStatus) -> None:
        self.status = status
        if self.state == "connecting":
            self.state = "live"
        self.rows = [asdict(R.row_cells(n)) for n in status.nodes]
        self.workers_ready = status.workers_ready
        self.workers_total = len(status.workers)
        self.workers_min = status.workers_min
        self.workers_max = status.workers_max
        with self._lock:
            pending = self._scale_target
        self.workers_desired = pending if pending is not None else status.workers_desired
        self.links = [asdict(link) for link in status.links]
        self._hrefs = link_hrefs(status.name, status.links)
        if status.error:
            self.error = status.error  # e.g. the head's host key changed: never shown as a quiet node

    def _event_lines(self) -> list[str]:
        stamped = [(n.at, n.text) for n in self._notes]
        if self.status is not None:
            stamped += [(e.at, e.message) for e in self.status.events]
        return [f"{R.fmt_clock(at)}  {text}" for at, text in sorted(stamped)[-EVENTS_SHOWN:]]

    def _render(self) -> None:
        live = self.state == "live"
        summary = (
            f"workers: {self.workers_ready} ready of {self.workers_total} "
            f"(min {self.workers_min}, max {self.workers_max}, desired {self.workers_desired})"
        )
        provider = f" ({self.status.provider})" if self.status else ""
        badge = "" if live else f" &middot; <i>{self.state}</i>"
        self._header.value = f"<b>{self.cluster_name}</b>{provider} &middot; {summary}{badge}"
        self._table.value = R.nodes_table_html([R.RowCells(**row) for row in self.rows])
        self._links.value = R.links_html(self.status.links, self._hrefs) if self.status else ""
        self._events.value = R.events_html(self.events)
        self._error.value = R.error_html(self.error)
        count = self._current_count()
        self._minus.disabled = not live or count <= self.workers_min
        self._plus.disabled = not live or count >= self.workers_max
        self._down.disabled = self.state in ("gone", "closed")

    # -- lifetime ---------------------------------------------------------------------------------

    def _stop(self, state: str) -> None:
        """Stop background work for good (the cluster went away, or the view was closed)."""
        with self._inbox.lock:
            self._stop_locked(state)

    def _stop_locked(self, state: str) -> None:
        if self.state not in ("gone", "closed"):
            self.state = state
        for future in self._futures:
            future.cancel()
        if self._owns_cluster:
            self._owns_cluster = False
            with contextlib.suppress(CloudtikError):
                self.cluster.close()  # on the kernel's thread: the private loop does the closing
        if state == "closed":
            _open_views.discard(self)
            self._inbox.close()
        else:
            self._render()

    def close(self) -> None:
        self._stop("closed")
        super().close()

    async def wait_stopped(self, timeout: float = 10.0) -> None:
        """Wait until no background work of this view runs (tests, notebooks)."""
        from ..waiting import wait_for

        await wait_for(lambda: not self.watching, timeout=timeout, what="the view's background work to stop")

    def __repr__(self) -> str:
        if self.status is None:
            return f"ClusterView({self.cluster_name!r}, {self.state})"
        return R.status_text(self.status) + ("" if self.state == "live" else f"\n({self.state})")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle: dict[str, Any] | None = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = repr(self)  # the whole table, not ipywidgets' 110 characters
        return bundle
