"""What the panel is sent (service links through the proxy, phases), and what the proxy lets through."""

from __future__ import annotations

import dataclasses
import re
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from cloudtik_jupyter.config import load_config
from cloudtik_jupyter.errors import ConfigError
from cloudtik_jupyter.records.cluster import ClusterStatus, ClusterSummary, NodeRow, ServiceLink
from cloudtik_jupyter.server.capability import Expired, Invalid, ServiceRef, Signer
from cloudtik_jupyter.server.links import DeclaredPorts, declared_ports
from cloudtik_jupyter.server.models import (
    ClusterCard,
    EventOut,
    LinkOut,
    NodeOut,
    StatusOut,
    TemplateOut,
    WorkerTypeOut,
    WorkspaceOut,
    card,
    link_out,
    phase_of,
    status_out,
)

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


def test_status_counts_each_machines_memory_once_and_keeps_the_stalest_heartbeat() -> None:
    head = NodeRow("vn-1", 1, "head", "head", HEAD_IP, None, "up-to-date", 0.5, 10.0, 100, 1000, "m1")
    # Two virtual nodes on one machine report its memory each; a third machine, and an old agent.
    same = NodeRow("vn-2", 2, "worker", "worker", "127.9.0.2", None, "up-to-date", 2.5, 30.0, 120, 1000, "m1")
    other = NodeRow(
        "vn-3", 3, "worker", "worker", "127.9.0.3", None, "up-to-date", 1.0, 20.0, 300, 2000, "m2"
    )
    old = NodeRow("vn-4", 4, "worker", "worker", "127.9.0.4", None, "up-to-date", 1.0, 40.0, 50, 500)
    links = [ServiceLink("ui", f"http://{HEAD_IP}:8080", "web")]
    status = ClusterStatus("c", "virtual", [head, same, other, old], 1, 3, workers_desired=1, links=links)
    out = status_out(status, "/")
    assert (out.heartbeat_age, out.cpu_percent) == (2.5, 25.0)
    assert (out.memory_used, out.memory_total) == (120 + 300 + 50, 1000 + 2000 + 500)
    assert (out.head_status, out.workers_ready, out.workers_desired) == ("up-to-date", 3, 1)
    assert out.links[0].proxy_url == "/cloudtik/proxy/c/8080/"
    assert [n.seq for n in out.nodes] == [1, 2, 3, 4]


def test_node_rows_carry_history_and_their_own_uis_through_the_proxy() -> None:
    config = load_config({"from": "virtual-spark", "cluster_name": "c"})
    worker = NodeRow(
        "vn-7",
        7,
        "worker",
        "worker",
        "127.9.0.7",
        None,
        "up-to-date",
        1.0,
        5.0,
        1,
        2,
        "m1",
        cpu_history=(1.0, 5.0),
        memory_history=(1, 1),
    )
    (out,) = status_out(ClusterStatus("c", "virtual", [worker], 0, 1), "/b/", config).nodes
    assert (out.cpu_history, out.memory_history, out.machine) == ([1.0, 5.0], [1, 1], "m1")
    (ui,) = out.links
    assert (ui.url, ui.proxy_url) == ("http://127.9.0.7:8081", "/b/cloudtik/proxy/c/nodes/7/8081/")


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
    # A head that needs action (half-dead, or gone with workers left) is failed, and the card says why.
    why = "head vn-1: its node agent has not reported for 40s; run `cloudtik up` to repair it"
    half_dead = dataclasses.replace(status("up-to-date"), error=why)
    assert phase_of(half_dead, None, None) == "failed"
    shown = card(ClusterSummary("c", "virtual", ""), half_dead, "/b/")
    assert (shown.phase, shown.error) == ("failed", half_dead.error)
    assert card(ClusterSummary("c", "virtual", ""), half_dead, "/b/", error="boom").error == "boom"
    headless = ClusterStatus("c", "virtual", [], 0, 0, error="the head is gone")
    assert phase_of(headless, None, None) == "failed"


def test_signed_service_addresses_are_bound_to_one_service_and_expire() -> None:
    now = [1000.0]
    signer = Signer(b"k" * 32, lifetime=60, clock=lambda: now[0])
    ui = ServiceRef("c", "head", 8080)
    address = signer.issue(ui)
    assert address.startswith("cloudtik/svc/c/head/8080/") and address.endswith("/")
    grant = address.split("/")[-2]
    signer.check(ui, grant)
    for other in (ServiceRef("c", "head", 8081), ServiceRef("c", "2", 8080), ServiceRef("d", "head", 8080)):
        with pytest.raises(Invalid):
            signer.check(other, grant)
    with pytest.raises(Invalid):
        Signer(b"x" * 32, clock=lambda: now[0]).check(ui, grant)  # another server's key
    now[0] += 61
    with pytest.raises(Expired):
        signer.check(ui, grant)


@given(st.data())
def test_any_change_to_a_grant_is_refused(data: st.DataObject) -> None:
    signer = Signer(b"k" * 32, clock=lambda: 1000.0)
    ui = ServiceRef("c", "head", 8080)
    grant = signer.issue(ui).split("/")[-2]
    forged = data.draw(st.text(alphabet=string.ascii_letters + string.digits + "._-", max_size=60))
    if forged != grant:
        with pytest.raises((Invalid, Expired)):
            signer.check(ui, forged)


def test_declared_ports_are_the_runtimes_web_uis_plus_the_users_list() -> None:
    spark = load_config({"from": "virtual-spark", "cluster_name": "c", "proxy": {"allowed_ports": [4040]}})
    ports = declared_ports(spark)
    assert ports == DeclaredPorts(frozenset({8080, 18080, 4040}), frozenset({8081}))
    assert ports.allows("head", 4040) and not ports.allows("head", 7077)  # spark:// is not a web UI
    assert ports.allows("2", 8081) and not ports.allows("2", 8080)
    bare = declared_ports(load_config({"from": "virtual-small", "cluster_name": "c"}))
    assert bare == DeclaredPorts(frozenset(), frozenset())
    with pytest.raises(ConfigError):
        load_config({"from": "virtual-small", "cluster_name": "c", "proxy": {"allowed_ports": [0]}})


API_TS = Path(__file__).resolve().parents[2] / "labextension" / "src" / "api.ts"
TS_MIRRORS: dict[str, type[BaseModel]] = {
    "ILink": LinkOut,
    "INode": NodeOut,
    "IEvent": EventOut,
    "IStatus": StatusOut,
    "ICard": ClusterCard,
    "IWorkspace": WorkspaceOut,
    "IWorkerType": WorkerTypeOut,
    "ITemplate": TemplateOut,
}


def ts_interfaces(source: str) -> dict[str, dict[str, str]]:
    """``export interface IName { field: type; }`` -> {IName: {field: type}} (the panel's plain shapes)."""
    found = {}
    for name, body in re.findall(r"export interface (\w+) \{(.*?)\n\}", source, re.S):
        fields = re.findall(r"^\s+(\w+): (.+);$", body, re.M)
        found[name] = dict(fields)
    return found


def test_the_panels_typescript_types_match_the_servers_models() -> None:
    interfaces = ts_interfaces(API_TS.read_text())
    for ts_name, model in TS_MIRRORS.items():
        fields = interfaces[ts_name]
        schema = model.model_json_schema()
        assert set(fields) == set(schema["properties"]), f"{ts_name} vs {model.__name__}"
        for field, prop in schema["properties"].items():
            nullable = any(option.get("type") == "null" for option in prop.get("anyOf", []))
            assert fields[field].endswith("| null") == nullable, f"{ts_name}.{field}: {fields[field]}"
