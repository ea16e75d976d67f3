"""Fixtures for cloud provider tests: moto as a real HTTP server on 127.0.0.1, boto3 pointed at it.

The server runs in this test process (a thread) for the session and is reset before every test. Tests
never connect to an address moto hands out (its instances and elastic IPs get 10.x, even 127.x, ones).
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cloudtik_jupyter.config.schema import AwsProviderConfig
from cloudtik_jupyter.config.workspace import WorkspaceConfig, validate_workspace_config
from cloudtik_jupyter.providers.aws.clients import AwsClients, make_clients
from cloudtik_jupyter.providers.aws.workspace import AwsWorkspaceProvider

REGION = "us-east-1"
USER_CIDR = "203.0.113.0/24"  # documentation range: stands in for "the user's address"


_READS = ("Describe", "Get", "List", "Head")
_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")


@dataclass
class Gate:
    """Sees every AWS request moto serves, in order, and can hold one in flight: tests interrupt a
    CLI process while its cloud call is on the wire, then let the call finish."""

    log: list[str] = field(default_factory=list)  # mutating calls, "ec2.CreateVpc", in arrival order
    hold_call: str | None = None
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, call: str) -> None:
        """Hold the next request making `call` ("ec2.CreateVpc", "s3.PUT") until `open()`."""
        with self._lock:
            self.hold_call = call
            self.held.clear()
            self.release.clear()

    def open(self) -> None:
        with self._lock:
            self.hold_call = None
        self.release.set()

    def reset(self) -> None:
        self.open()
        with self._lock:
            self.log.clear()

    def see(self, environ: dict[str, Any]) -> None:
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = scope.group(1) if scope else "?"
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        action = re.search(rb"(?:^|&)Action=([A-Za-z]+)", body)
        if action:
            name = action.group(1).decode()
            if name.startswith(_READS):
                return
        elif environ.get("REQUEST_METHOD") in ("PUT", "POST", "DELETE"):
            name = environ["REQUEST_METHOD"]
        else:
            return
        call = f"{service}.{name}"
        with self._lock:
            self.log.append(call)
            hold = call == self.hold_call
            if hold:
                self.hold_call = None
        if hold:
            self.held.set()
            self.release.wait(timeout=300)


@pytest.fixture(scope="session")
def moto_gate() -> Gate:
    return Gate()


@pytest.fixture(scope="session")
def moto_endpoint(moto_gate: Gate) -> Iterator[str]:
    from moto.moto_server.threaded_moto_server import MotoRequestHandler
    from moto.server import DomainDispatcherApplication, ThreadedMotoServer, create_backend_app
    from werkzeug.serving import make_server

    class GatedMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)

            def gated(environ: dict[str, Any], start_response: Any) -> Any:
                moto_gate.see(environ)
                return app(environ, start_response)

            self._server = make_server(
                self._ip_address, self._port, gated, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per AWS call otherwise
    server = GatedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        assert host == "127.0.0.1"
        yield f"http://{host}:{port}"
    finally:
        moto_gate.open()
        server.stop()


@dataclass
class MotoAws:
    endpoint: str
    home: Path
    gate: Gate
    region: str = REGION

    def clients(self) -> AwsClients:
        return make_clients(self.region, self.endpoint)

    def provider_config(self, **extra: Any) -> AwsProviderConfig:
        return AwsProviderConfig(type="aws", region=self.region, endpoint_url=self.endpoint, **extra)

    def config_dict(self, name: str = "ws", **networking: Any) -> dict[str, Any]:
        networking.setdefault("allowed_ssh_cidrs", [USER_CIDR])
        return {
            "workspace_name": name,
            "provider": {"type": "aws", "region": self.region, "endpoint_url": self.endpoint},
            "networking": networking,
        }

    def workspace_config(self, name: str = "ws", **networking: Any) -> WorkspaceConfig:
        return validate_workspace_config(self.config_dict(name, **networking))

    def workspace(
        self, name: str = "ws", clients: AwsClients | None = None, **networking: Any
    ) -> AwsWorkspaceProvider:
        config = self.workspace_config(name, **networking)
        return AwsWorkspaceProvider(
            config.provider,  # type: ignore[arg-type]
            name,
            config,
            clients=clients or self.clients(),
            timeout=30,
        )


@pytest.fixture
def aws(moto_endpoint: str, moto_gate: Gate, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MotoAws:
    """A clean moto region, fake credentials, and nothing that could reach real AWS or this user's config."""
    fake = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_endpoint,  # a client made without endpoint_url still lands on moto
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "CLOUDTIK_HOME": str(tmp_path / "cloudtik-home"),
    }
    for key, value in fake.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    moto_gate.reset()
    return MotoAws(moto_endpoint, tmp_path / "cloudtik-home", moto_gate)


def policy(doc: Any) -> dict[str, Any]:
    """IAM returns policy documents URL-encoded JSON (boto3 decodes some, not all)."""
    if isinstance(doc, str):
        from urllib.parse import unquote

        return dict(json.loads(unquote(doc)))
    return dict(doc)
