"""VMs and what each brings along (NIC, OS disk, public IP): found by tag, deleted together.

Azure has no server-side tag filter for listing VMs, so the filter runs here. Each node's NIC, disk and
IP have names derived from the VM's, so a delete interrupted after the VM went still finds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import tags as T
from .clients import AzureClients, finish


def nic_name(vm: str) -> str:
    return f"{vm}-nic"


def ip_name(vm: str) -> str:
    return f"{vm}-ip"


def disk_name(vm: str) -> str:
    return f"{vm}-osdisk"


def tagged_vms(c: AzureClients, group: str, tags: Mapping[str, str]) -> list[Any]:
    """VMs of `group` carrying all `tags` (an empty list when the group does not exist)."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        found = list(c.compute.virtual_machines.list(group))
    except ResourceNotFoundError:
        return []
    return [vm for vm in found if tags.items() <= dict(vm.tags or {}).items()]


def workspace_vms(c: AzureClients, group: str, workspace: str) -> list[Any]:
    return tagged_vms(c, group, {T.WORKSPACE: workspace})


def delete_vms(
    c: AzureClients, group: str, names: Sequence[str], with_ips: Sequence[str] | None = None
) -> list[str]:
    """Delete VMs, then whatever of their NIC, IP and disk is left (all idempotent: gone is gone).
    `with_ips`: the VMs that may have a public IP (a public head), when not all of them; the head
    deletes workers, which have none, and holds no right to delete IPs."""
    pollers = [c.compute.virtual_machines.begin_delete(group, name) for name in names]
    for poller in pollers:
        finish(poller)
    for stage in (
        [c.network.network_interfaces.begin_delete(group, nic_name(n)) for n in names],
        [
            c.network.public_ip_addresses.begin_delete(group, ip_name(n))
            for n in (names if with_ips is None else with_ips)
        ],
        [c.compute.disks.begin_delete(group, disk_name(n)) for n in names],
    ):
        for poller in stage:
            finish(poller)
    return list(names)
