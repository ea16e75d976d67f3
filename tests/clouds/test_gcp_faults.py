"""Every mutating GCP request of `create` and `delete` fails once, before GCP saw it or after GCP did it
(the answer lost: the nastier case), and a re-run converges with nothing duplicated or left behind."""

from __future__ import annotations

import pytest
from fakes.envs import GcpEnv, gcp_fixture  # noqa: F401
from fakes.gcp import EXPECTED_GCP, counts

from cloudtik_jupyter.errors import ProviderError

READS = r"(:getIamPolicy|/wait)$"  # POSTs that change nothing


def _until_done(gcp: GcpEnv, action: object, fired: list[str]) -> int:
    for runs in range(1, 80):
        try:
            action()  # type: ignore[operator]
            return runs
        except ProviderError as exc:
            assert "InjectedFault" in str(exc)
            found = counts(gcp.fake.inventory())
            assert all(n <= EXPECTED_GCP.get(k, 0) for k, n in found.items()), (fired[-1], found)
    raise AssertionError(f"did not converge after {len(fired)} faults")


@pytest.mark.parametrize("phase", ["before", "after"])
def test_create_and_delete_converge_when_each_request_fails_once(gcp: GcpEnv, phase: str) -> None:
    ws = gcp.workspace("ws")
    fault = gcp.fake.server.fail_each(phase, unless=READS)

    runs = _until_done(gcp, ws.create, fault.fired)

    assert runs == len(fault.fired) + 1 and len(fault.fired) >= 10  # one run per failed request
    assert counts(gcp.fake.inventory()) == EXPECTED_GCP
    assert all(r.present for r in ws.status())
    created = len(fault.fired)

    _until_done(gcp, ws.delete, fault.fired)

    assert len(fault.fired) - created >= 10
    assert counts(gcp.fake.inventory()) == {}


def test_a_failed_operation_fails_its_step_and_the_rerun_converges(gcp: GcpEnv) -> None:
    """GCP accepts the request, then the operation ends DONE with an error: nothing was made."""
    ws = gcp.workspace("ws")
    subnets = gcp.fake.fail_operation(
        "POST", r"/subnetworks$", "RESOURCE_OPERATION_RATE_EXCEEDED", "Rate exceeded"
    )
    router = gcp.fake.fail_operation("POST", r"/routers$", "IP_SPACE_EXHAUSTED", "No addresses left for NAT")

    with pytest.raises(ProviderError, match=r"creating subnetwork .*: Rate exceeded"):
        ws.create()
    assert "subnetworks" not in counts(gcp.fake.inventory())  # the operation failed: nothing was made
    with pytest.raises(ProviderError, match=r"creating Cloud NAT .*: No addresses left for NAT"):
        ws.create()
    assert "routers" not in counts(gcp.fake.inventory())
    assert subnets.fired and router.fired
    ws.create()
    assert counts(gcp.fake.inventory()) == EXPECTED_GCP


def test_a_quota_exceeded_launch_leaves_nothing_and_says_so(gcp: GcpEnv) -> None:
    from cloudtik_jupyter.providers import tags as T
    from cloudtik_jupyter.providers.base import NodeSpec
    from cloudtik_jupyter.providers.gcp.node_provider import GcpNodeProvider

    gcp.workspace("ws").create()
    before = gcp.fake.inventory()
    quota = "Quota 'CPUS' exceeded.  Limit: 24.0 in region us-central1."
    gcp.fake.fail_operation("POST", r"/instances$", "QUOTA_EXCEEDED", quota, times=2)
    nodes = GcpNodeProvider(gcp.provider_config(), "etl", workspace_name="ws", clients=gcp.clients())
    spec = NodeSpec("w", {"sourceImage": "projects/debian-cloud/global/images/family/debian-12"}, "u", "")

    with pytest.raises(ProviderError, match="Quota 'CPUS' exceeded"):
        nodes.create_nodes(spec, {T.NODE_KIND: T.KIND_WORKER}, 2)

    assert gcp.fake.inventory() == before  # no instance, no disk
    assert nodes.non_terminated_nodes({}) == []
    (node,) = nodes.create_nodes(spec, {T.NODE_KIND: T.KIND_WORKER}, 1)  # quota back: it works
    nodes.terminate_nodes([node])
