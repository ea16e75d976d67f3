"""Every mutating ARM request of `create` and `delete` fails once, before Azure saw it or after Azure did
it (the answer lost), and a re-run converges with nothing duplicated or left behind."""

from __future__ import annotations

import pytest
from fakes import azure_types as AT
from fakes.azure import EXPECTED_AZURE, counts
from fakes.envs import AzureEnv, azure_fixture  # noqa: F401

from cloudtik_jupyter.errors import ProviderError


def _until_done(azure: AzureEnv, action: object, fired: list[str]) -> int:
    for runs in range(1, 80):
        try:
            action()  # type: ignore[operator]
            return runs
        except ProviderError as exc:
            assert "InjectedFault" in str(exc)
            found = counts(azure.fake.inventory())
            assert all(n <= EXPECTED_AZURE.get(k, 0) for k, n in found.items()), (fired[-1], found)
    raise AssertionError(f"did not converge after {len(fired)} faults")


@pytest.mark.parametrize("phase", ["before", "after"])
def test_create_and_delete_converge_when_each_request_fails_once(azure: AzureEnv, phase: str) -> None:
    ws = azure.workspace("ws")
    fault = azure.fake.server.fail_each(phase)

    runs = _until_done(azure, ws.create, fault.fired)

    assert runs == len(fault.fired) + 1 and len(fault.fired) >= 12
    assert counts(azure.fake.inventory()) == EXPECTED_AZURE
    assert all(r.present for r in ws.status())
    created = len(fault.fired)

    _until_done(azure, ws.delete, fault.fired)

    assert len(fault.fired) - created >= 10
    assert counts(azure.fake.inventory()) == {}


def test_a_failed_long_running_operation_fails_its_step_and_the_rerun_converges(azure: AzureEnv) -> None:
    """ARM accepts the PUT, the operation ends Failed and the resource stays, provisioningState Failed:
    the re-run puts it again."""
    ws = azure.workspace("ws")
    fault = azure.fake.arm.fail_operation(
        "PUT", r"/natGateways/", "NatGatewayProvisioningFailed", "NAT failed"
    )

    with pytest.raises(ProviderError, match="NatGatewayProvisioningFailed: NAT failed"):
        ws.create()

    (nat,) = azure.fake.of_type(AT.NAT)
    assert nat.failed and fault.fired
    ws.create()
    (nat,) = azure.fake.of_type(AT.NAT)
    assert not nat.failed
    assert counts(azure.fake.inventory()) == EXPECTED_AZURE
    assert all(r.present for r in ws.status())


def test_a_quota_exceeded_launch_leaves_nothing_and_says_so(azure: AzureEnv) -> None:
    from cloudtik_jupyter.providers import tags as T
    from cloudtik_jupyter.providers.azure.node_provider import AzureNodeProvider
    from cloudtik_jupyter.providers.base import NodeSpec

    azure.workspace("ws").create()
    before = azure.fake.inventory()
    quota = (
        "Operation could not be completed as it results in exceeding approved standardDSv5Family Cores "
        "quota. Location: westus2, Current Limit: 10, Current Usage: 8, Additional Required: 4"
    )
    azure.fake.server.fail("PUT", r"/virtualMachines/", status=409, code="OperationNotAllowed", message=quota)
    nodes = AzureNodeProvider(azure.provider_config(), "etl", workspace_name="ws", clients=azure.clients())
    image = {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}}

    with pytest.raises(ProviderError, match="OperationNotAllowed: Operation could not be completed"):
        nodes.create_nodes(NodeSpec("w", image, "u", "ssh-ed25519 AAAA k"), {T.NODE_KIND: T.KIND_WORKER}, 1)

    assert azure.fake.inventory() == before  # its NIC went away with it
