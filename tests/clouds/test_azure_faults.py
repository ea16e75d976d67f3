"""Every mutating ARM request of `create` and `delete` fails once, before Azure saw it or after Azure did
it (the answer lost), and a re-run converges with nothing duplicated or left behind."""

from __future__ import annotations

import pytest
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
