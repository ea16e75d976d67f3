"""Fixtures that start a fake cloud for one test and hand out configs and providers pointed at it.

Import the fixture function into a test module to use it (``from fakes.envs import gcp_fixture``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cloudtik_jupyter.config.schema import AzureProviderConfig, GcpProviderConfig
from cloudtik_jupyter.config.workspace import WorkspaceConfig, validate_workspace_config
from cloudtik_jupyter.providers.azure.clients import AzureClients
from cloudtik_jupyter.providers.azure.clients import make_clients as make_azure_clients
from cloudtik_jupyter.providers.azure.workspace import AzureWorkspaceProvider
from cloudtik_jupyter.providers.common.steps import StepHooks
from cloudtik_jupyter.providers.gcp.clients import GcpClients, make_clients
from cloudtik_jupyter.providers.gcp.workspace import GcpWorkspaceProvider

from .azure import SUBSCRIPTION, FakeAzure
from .gcp import PROJECT, FakeGcp

USER_CIDR = "203.0.113.0/24"  # documentation range: stands in for "the user's address"
GCP_REGION = "us-central1"


@dataclass
class GcpEnv:
    fake: FakeGcp
    home: Path
    project: str = PROJECT
    region: str = GCP_REGION

    @property
    def url(self) -> str:
        return self.fake.url

    def clients(self) -> GcpClients:
        return make_clients(self.project, self.region, endpoint_url=self.url)

    def provider_dict(self, **extra: Any) -> dict[str, Any]:
        return {
            "type": "gcp",
            "project_id": self.project,
            "region": self.region,
            "endpoint_url": self.url,
            **extra,
        }

    def provider_config(self, **extra: Any) -> GcpProviderConfig:
        return GcpProviderConfig.model_validate(self.provider_dict(**extra))

    def config_dict(self, name: str = "ws", **networking: Any) -> dict[str, Any]:
        networking.setdefault("allowed_ssh_cidrs", [USER_CIDR])
        return {"workspace_name": name, "provider": self.provider_dict(), "networking": networking}

    def workspace_config(self, name: str = "ws", **networking: Any) -> WorkspaceConfig:
        return validate_workspace_config(self.config_dict(name, **networking))

    def workspace(
        self,
        name: str = "ws",
        clients: GcpClients | None = None,
        hooks: StepHooks | None = None,
        **networking: Any,
    ) -> GcpWorkspaceProvider:
        config = self.workspace_config(name, **networking)
        return GcpWorkspaceProvider(
            config.provider,  # type: ignore[arg-type]
            name,
            config,
            clients=clients or self.clients(),
            hooks=hooks,
            timeout=30,
        )


@pytest.fixture(name="gcp")
def gcp_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GcpEnv]:
    """A fresh fake GCP project for one test, and nothing that could reach Google or this user's config."""
    monkeypatch.setenv("CLOUDTIK_HOME", str(tmp_path / "cloudtik-home"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud-config"))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-google-credentials.json"))
    fake = FakeGcp().start()
    try:
        yield GcpEnv(fake, tmp_path / "cloudtik-home")
    finally:
        fake.stop()


AZURE_LOCATION = "westus2"


@dataclass
class AzureEnv:
    fake: FakeAzure
    home: Path
    subscription: str = SUBSCRIPTION
    location: str = AZURE_LOCATION

    @property
    def url(self) -> str:
        return self.fake.url

    def clients(self) -> AzureClients:
        return make_azure_clients(self.subscription, self.location, endpoint_url=self.url)

    def provider_dict(self, **extra: Any) -> dict[str, Any]:
        return {
            "type": "azure",
            "subscription_id": self.subscription,
            "location": self.location,
            "endpoint_url": self.url,
            **extra,
        }

    def provider_config(self, **extra: Any) -> AzureProviderConfig:
        return AzureProviderConfig.model_validate(self.provider_dict(**extra))

    def config_dict(self, name: str = "ws", **networking: Any) -> dict[str, Any]:
        networking.setdefault("allowed_ssh_cidrs", [USER_CIDR])
        return {"workspace_name": name, "provider": self.provider_dict(), "networking": networking}

    def workspace_config(self, name: str = "ws", **networking: Any) -> WorkspaceConfig:
        return validate_workspace_config(self.config_dict(name, **networking))

    def workspace(
        self,
        name: str = "ws",
        clients: AzureClients | None = None,
        hooks: StepHooks | None = None,
        **networking: Any,
    ) -> AzureWorkspaceProvider:
        config = self.workspace_config(name, **networking)
        return AzureWorkspaceProvider(
            config.provider,  # type: ignore[arg-type]
            name,
            config,
            clients=clients or self.clients(),
            hooks=hooks,
            timeout=30,
        )


@pytest.fixture(name="azure")
def azure_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AzureEnv]:
    """A fresh fake Azure subscription for one test, and nothing that could reach Azure or this user's config."""
    monkeypatch.setenv("CLOUDTIK_HOME", str(tmp_path / "cloudtik-home"))
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "no-azure-config"))
    for var in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_SUBSCRIPTION_ID"):
        monkeypatch.delenv(var, raising=False)
    fake = FakeAzure().start()
    try:
        yield AzureEnv(fake, tmp_path / "cloudtik-home")
    finally:
        fake.stop()
