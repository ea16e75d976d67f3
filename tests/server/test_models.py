"""What the panel is sent: service links through the proxy, phases, and redirects kept inside the proxy."""

from __future__ import annotations

from cloudtik_jupyter.cluster.status import ClusterStatus, NodeRow, ServiceLink
from cloudtik_jupyter.server.models import link_out, phase_of, status_out
from cloudtik_jupyter.server.proxy import _rewrite_location

HEAD_IP = "127.9.0.1"


def node(kind: str, status: str = "up-to-date", **metrics: float) -> NodeRow:
    return NodeRow("vn-1", 1, kind, kind, HEAD_IP, None, status, **metrics)  # type: ignore[arg-type]


def test_web_links_on_the_head_go_through_the_proxy() -> None:
    ui = link_out(ServiceLink("Spark master UI", f"http://{HEAD_IP}:8080", "web"), "c", HEAD_IP, "/base/")
    assert ui.proxy_url == "/base/cloudtik/proxy/c/8080/"
    deep = link_out(ServiceLink("jobs", f"http://{HEAD_IP}:18080/jobs/?id=1", "web"), "c", HEAD_IP, "/")
    assert deep.proxy_url == "/cloudtik/proxy/c/18080/jobs/?id=1"
    # An endpoint (not a page) and a web UI elsewhere are shown as they are.
    endpoint = link_out(ServiceLink("Spark master", f"spark://{HEAD_IP}:7077", "endpoint"), "c", HEAD_IP, "/")
    elsewhere = link_out(ServiceLink("docs", "https://example.org/", "web"), "c", HEAD_IP, "/")
    assert endpoint.proxy_url is None and elsewhere.proxy_url is None


def test_status_sums_metrics_and_keeps_the_stalest_heartbeat() -> None:
    head = NodeRow("vn-1", 1, "head", "head", HEAD_IP, None, "up-to-date", 0.5, 10.0, 100, 1000)
    worker = NodeRow("vn-2", 2, "worker", "worker", "127.9.0.2", None, "up-to-date", 2.5, 30.0, 300, 1000)
    links = [ServiceLink("ui", f"http://{HEAD_IP}:8080", "web")]
    status = ClusterStatus("c", "virtual", [head, worker], 1, 3, workers_desired=1, links=links)
    out = status_out(status, "/")
    assert (out.heartbeat_age, out.cpu_percent, out.memory_used, out.memory_total) == (2.5, 20.0, 400, 2000)
    assert (out.head_status, out.workers_ready, out.workers_desired) == ("up-to-date", 1, 1)
    assert out.links[0].proxy_url == "/cloudtik/proxy/c/8080/"


def test_phase() -> None:
    def status(head_status: str | None) -> ClusterStatus:
        nodes = (
            [] if head_status is None else [NodeRow("vn-1", 1, "head", "head", HEAD_IP, None, head_status)]
        )
        return ClusterStatus("c", "virtual", nodes, 0, 0)

    assert phase_of(status("up-to-date"), None, None) == "running"
    assert phase_of(status("setting-up"), None, None) == "starting"
    assert phase_of(status("update-failed"), None, None) == "failed"
    assert phase_of(status(None), None, None) == "stopped"
    assert phase_of(status(None), None, "boom") == "failed"
    assert phase_of(None, "up", None) == "starting"
    assert phase_of(status("up-to-date"), "down", None) == "stopping"


def test_redirects_stay_inside_the_proxy() -> None:
    prefix = "/base/cloudtik/proxy/c/8080/"
    assert _rewrite_location("/jobs/?x=1", prefix, 8080) == prefix + "jobs/?x=1"
    assert _rewrite_location(f"http://{HEAD_IP}:8080/stages/", prefix, 8080) == prefix + "stages/"
    assert _rewrite_location("stages/", prefix, 8080) == "stages/"  # relative: already inside
    assert _rewrite_location("https://example.org/", prefix, 8080) == "https://example.org/"
    assert _rewrite_location("//example.org/x", prefix, 8080) == "//example.org/x"
