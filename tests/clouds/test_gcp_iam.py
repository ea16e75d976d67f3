"""GCP identities are least privilege (read back from the fake's IAM), and the fake refuses malformed
payloads the way GCP does, so a wrong request fails a test instead of passing."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from fakes.envs import GcpEnv, gcp_fixture  # noqa: F401
from fakes.gcp import OWNER

from cloudtik_jupyter.providers.gcp.naming import GcpNames
from cloudtik_jupyter.providers.gcp.roles import HEAD_PERMISSIONS


def test_service_accounts_are_least_privilege(gcp: GcpEnv) -> None:
    gcp.workspace("ws").create()
    iam, names = gcp.fake.iam, GcpNames("ws", gcp.project)
    head, worker = f"serviceAccount:{names.email('head')}", f"serviceAccount:{names.email('worker')}"

    role = iam.roles[names.head_role_id]
    assert sorted(role["includedPermissions"]) == sorted(HEAD_PERMISSIONS)
    for permission in role["includedPermissions"]:
        service, resource, verb = permission.split(".")
        assert service == "compute" and "*" not in permission
        assert verb not in ("setIamPolicy", "getIamPolicy") and not resource.startswith("project")
    assert "compute.instances.delete" in HEAD_PERMISSIONS and "compute.subnetworks.use" in HEAD_PERMISSIONS

    project = {b["role"]: b["members"] for b in iam.project_policy.bindings}
    assert project == {"roles/owner": [OWNER], names.head_role: [head]}  # the owner's binding survives
    assert worker not in str(project)  # workers hold nothing at project level

    (act_as,) = iam.account_policies[names.email("worker")].bindings
    assert act_as == {"role": "roles/iam.serviceAccountUser", "members": [head]}
    assert iam.account_policies[names.email("head")].bindings == []  # the head can't launch more heads

    bucket = {b["role"]: b["members"] for b in iam.bucket_policies[names.bucket].bindings}
    assert bucket["roles/storage.objectAdmin"] == sorted([head, worker])
    assert not {"allUsers", "allAuthenticatedUsers"} & {m for ms in bucket.values() for m in ms}
    assert set(bucket) == {"roles/storage.objectAdmin", "roles/storage.legacyBucketOwner"}


def test_delete_removes_only_our_bindings(gcp: GcpEnv) -> None:
    ws = gcp.workspace("ws")
    ws.create()
    ws.delete()
    assert gcp.fake.iam.project_policy.bindings == [{"role": "roles/owner", "members": [OWNER]}]


def _post(gcp: GcpEnv, path: str, body: Any) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{gcp.url}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        (
            "/compute/v1/projects/cloudtik-test/global/networks",
            {"name": "n1", "autoCreateSubnetworks": False, "auto_create_subnetworks": False},
            'Unknown name \\"auto_create_subnetworks\\"',
        ),
        (
            "/compute/v1/projects/cloudtik-test/global/networks",
            {"autoCreateSubnetworks": False},
            "Required field 'resource.name'",
        ),
        (
            "/compute/v1/projects/cloudtik-test/global/networks",
            {"name": "Bad_Name", "autoCreateSubnetworks": False},
            "must be a match of regex",
        ),
        (
            "/compute/v1/projects/cloudtik-test/zones/us-central1-a/instances",
            {
                "name": "i1",
                "machineType": "zones/us-central1-a/machineTypes/n2-standard-4",
                "disks": [{"boot": True}],
                "networkInterfaces": [{}],
            },
            "sourceImage",
        ),
        (
            "/compute/v1/projects/cloudtik-test/zones/us-central1-a/instances",
            {
                "name": "i1",
                "machineType": "n2-standard-4",
                "labels": {"Owner": "me"},
                "disks": [{"boot": True}],
                "networkInterfaces": [{}],
            },
            "label key 'Owner'",
        ),
        (  # an enum value the discovery document does not list
            "/compute/v1/projects/cloudtik-test/global/firewalls",
            {"name": "f1", "network": "global/networks/n1", "direction": "SIDEWAYS"},
            "'SIDEWAYS' is not one of EGRESS, INGRESS",
        ),
        (  # a JSON type the discovery document does not allow
            "/compute/v1/projects/cloudtik-test/global/networks",
            {"name": "n1", "autoCreateSubnetworks": "no"},
            "'no' is not a valid boolean",
        ),
        ("/v1/projects/cloudtik-test/serviceAccounts", {"accountId": "sa"}, "Invalid account ID"),
        (
            "/v1/projects/cloudtik-test/roles",
            {"roleId": "role_1", "role": {"includedPermissions": ["compute.*"]}},
            "Permission compute.* is not valid",
        ),
    ],
)
def test_the_fake_refuses_malformed_requests(gcp: GcpEnv, path: str, body: Any, expected: str) -> None:
    status, text = _post(gcp, f"{path}?alt=json", body)
    assert status == 400 and expected in text, text
    assert gcp.fake.inventory()["networks"] == set()  # nothing was created


def test_the_fake_refuses_a_preemptible_instance_that_restarts(gcp: GcpEnv) -> None:
    """GCP's scheduling rule, through the real SDK: the provider's payload must get it right."""
    from google.cloud import compute_v1

    from cloudtik_jupyter.errors import ProviderError
    from cloudtik_jupyter.providers.gcp.clients import gcp_errors

    gcp.workspace("ws").create()
    c = gcp.clients()
    names = GcpNames("ws", gcp.project)
    instance = compute_v1.Instance(
        name="i1",
        machine_type="zones/us-central1-a/machineTypes/n2-standard-4",
        disks=[
            compute_v1.AttachedDisk(
                boot=True,
                initialize_params=compute_v1.AttachedDiskInitializeParams(
                    source_image="projects/debian-cloud/global/images/family/debian-12"
                ),
            )
        ],
        network_interfaces=[
            compute_v1.NetworkInterface(
                subnetwork=f"regions/us-central1/subnetworks/{names.subnet('private-subnet')}"
            )
        ],
        scheduling=compute_v1.Scheduling(preemptible=True),
    )
    with pytest.raises(ProviderError, match="OnHostMaintenance"), gcp_errors("launching"):
        c.instances.insert_unary(project=c.project, zone="us-central1-a", instance_resource=instance)
