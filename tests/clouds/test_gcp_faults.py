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
