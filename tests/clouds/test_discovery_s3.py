"""The AWS service registry: documents in the workspace's bucket, through boto3 against moto."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudtik_jupyter.config.schema import AwsProviderConfig
from cloudtik_jupyter.discovery import ClusterServices, DiscoveryScope, PublishedService, registry_for
from cloudtik_jupyter.discovery.clouds import OBJECT_PREFIX, S3Registry
from cloudtik_jupyter.errors import CloudtikError
from cloudtik_jupyter.providers.aws.naming import WorkspaceNames
from tests.clouds.conftest import MotoAws


def doc(cluster: str, port: int = 5000) -> ClusterServices:
    service = PublishedService(name="mlflow-tracking", kind="mlflow-tracking", address="10.0.1.5", port=port, protocol="http")
    return ClusterServices(workspace="ws", cluster=cluster, published_at=1.0, services=[service])


def test_publish_list_withdraw_in_the_workspace_bucket(aws: MotoAws) -> None:
    clients = aws.clients()
    account = clients.sts.get_caller_identity()["Account"]
    bucket = WorkspaceNames("ws").bucket(account, aws.region)
    clients.s3.create_bucket(Bucket=bucket)
    scope = DiscoveryScope("ws", AwsProviderConfig(type="aws", region=aws.region, endpoint_url=aws.endpoint))
    registry = registry_for(scope)
    assert isinstance(registry, S3Registry) and registry.bucket == bucket
    assert registry.list() == [] and registry.get("tracking") is None

    registry.put(doc("tracking"))
    registry.put(doc("other", 5001))
    registry.put(doc("tracking", 5002))  # a replaced head publishes again: one document per cluster
    assert sorted((d.cluster, d.services[0].port) for d in registry.list()) == [("other", 5001), ("tracking", 5002)]
    assert registry.get("tracking") == doc("tracking", 5002)

    # A document someone else wrote into the prefix that is not ours is skipped by list, refused by get.
    clients.s3.put_object(Bucket=bucket, Key=f"{OBJECT_PREFIX}evil.json", Body=b'{"format": 1, "cluster": "x"}')
    assert sorted(d.cluster for d in registry.list()) == ["other", "tracking"]
    with pytest.raises(CloudtikError, match="not a service document"):
        registry.get("evil")

    registry.delete("tracking")
    registry.delete("tracking")  # idempotent
    assert [d.cluster for d in registry.list()] == ["other"]
    keys = [o["Key"] for o in clients.s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert f"{OBJECT_PREFIX}tracking.json" not in keys


def test_mlflow_artifacts_default_to_the_workspace_bucket(aws: MotoAws, tmp_path: Path) -> None:
    from cloudtik_jupyter.config import load_config
    from cloudtik_jupyter.runtimes import enabled_runtimes
    from cloudtik_jupyter.runtimes.mlflow.runtime import default_artifacts

    config = load_config(
        {
            "cluster_name": "c",
            "workspace_name": "ws",
            "provider": {"type": "aws", "region": aws.region, "endpoint_url": aws.endpoint},
            "head_node_type": "head",
            "available_node_types": {"head": {}},
            "runtime": {"types": ["mlflow"]},
        }
    )
    ((_, mlflow),) = enabled_runtimes(config)
    account = aws.clients().sts.get_caller_identity()["Account"]
    bucket = WorkspaceNames("ws").bucket(account, aws.region)
    assert default_artifacts(mlflow, tmp_path) == f"s3://{bucket}/mlflow-artifacts"  # type: ignore[arg-type]
