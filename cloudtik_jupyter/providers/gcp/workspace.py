"""GCP WorkspaceProvider: the network, firewall, NAT, service accounts and bucket a team's clusters share.

`create` runs named steps that each look before they act, so an interrupted run converges when re-run;
`delete` undoes them in reverse order and touches only what the workspace owns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import ConfigError
from .. import tags as T
from ..base import ResourceStatus
from ..common.guard import refuse_busy_delete, refuse_data_delete
from ..common.lock import LockRecord, hold_cloud_lock
from ..common.polling import poll
from ..common.steps import StepHooks, Steps
from ..common.subnets import overlaps
from . import identity, network, storage
from . import naming as N
from .clients import GcpClients, gcp_errors, is_not_found, make_clients
from .lock import BucketLock
from .lookup import workspace_instances, zone_of
from .naming import GcpNames
from .network import Network
from .operations import wait_all
from .roles import head_condition, head_role

if TYPE_CHECKING:
    from ...config.schema import GcpProviderConfig
    from ...config.workspace import NetworkingConfig, WorkspaceConfig


@dataclass(frozen=True)
class Inputs:
    """What `create` checked before touching anything (bad input creates nothing)."""

    shared: Network | None
    peer: Network | None
    peer_ranges: tuple[str, ...]
    shared_ranges: tuple[str, ...]


class GcpWorkspaceProvider:
    def __init__(
        self,
        provider_config: GcpProviderConfig,
        workspace_name: str,
        config: WorkspaceConfig | None = None,
        *,
        clients: GcpClients | None = None,
        progress: Callable[[str], None] | None = None,
        hooks: StepHooks | None = None,
        timeout: float = 600.0,
    ) -> None:
        self.provider_config = provider_config
        self.workspace_name = workspace_name
        self.config = config
        self.names = GcpNames(workspace_name, provider_config.project_id)
        self.timeout = timeout  # per wait
        self.hooks = hooks
        self._clients = clients
        self._progress = progress or (lambda message: None)

    @property
    def clients(self) -> GcpClients:
        if self._clients is None:
            pc = self.provider_config
            self._clients = make_clients(pc.project_id, pc.region, endpoint_url=pc.endpoint_url)
        return self._clients

    # -- create -----------------------------------------------------------------------------------

    def _networking(self) -> NetworkingConfig:
        if self.config is None:
            raise ConfigError("networking", "creating or updating a workspace needs its config (networking)")
        return self.config.networking

    def _existing(self, key: str, name: str) -> Network:
        c = self.clients
        found = network.find_network(c, self.names, name.rsplit("/", 1)[-1])
        if found is None:
            raise ConfigError(key, f"no network {name} in project {c.project}")
        return found

    def _check_inputs(self, net: NetworkingConfig) -> Inputs:
        c = self.clients
        if network.get_or_none(lambda: c.regions.get(project=c.project, region=c.region)) is None:
            raise ConfigError("provider.region", f"no region {c.region} in project {c.project}")
        shared = peer = None
        shared_ranges: list[str] = []
        peer_ranges: list[str] = []
        if net.mode == "shared-vpc":
            shared = self._existing("networking.vpc_id", str(net.vpc_id))
            shared_ranges = network.network_ranges(c, shared.name)
        if net.mode == "peering":
            peer = self._existing("networking.peer_vpc_id", str(net.peer_vpc_id))
            peer_ranges = network.network_ranges(c, peer.name)
            clash = [r for r in peer_ranges if overlaps(r, net.vpc_cidr)]
            if clash:
                raise ConfigError(
                    "networking.vpc_cidr",
                    f"{net.vpc_cidr} overlaps the peer network's {clash[0]}; choose another block",
                )
        return Inputs(shared, peer, tuple(peer_ranges), tuple(shared_ranges))

    def create(self) -> None:
        """Create what is missing, converge what exists (also how `update` applies a changed config)."""
        cfg = self._networking()
        c, names, t = self.clients, self.names, self.timeout
        step = Steps(self._progress, self.hooks, verb="creating")
        with gcp_errors(f"creating workspace {self.workspace_name!r}"):
            inputs = self._check_inputs(cfg)
            net = inputs.shared or step("network", lambda: network.ensure_network(c, names, t))
            subnets = step(
                "subnets",
                lambda: network.ensure_subnets(c, names, net, cfg.vpc_cidr, inputs.peer_ranges, t),
            )
            ssh_from = sorted({*cfg.allowed_ssh_cidrs, *inputs.peer_ranges, *inputs.shared_ranges})
            step("firewall rules", lambda: network.ensure_firewalls(c, names, net, ssh_from, cfg.mode, t))
            private = subnets[N.PRIVATE_SUBNET]
            step("Cloud NAT", lambda: network.ensure_router_nat(c, names, net, private, t))
            if inputs.peer is not None:
                peer = inputs.peer
                step("peering", lambda: network.ensure_peering(c, names, net, peer, t))
            head = step("head service account", lambda: identity.ensure_account(c, names, "head"))
            worker = step("worker service account", lambda: identity.ensure_account(c, names, "worker"))
            step(
                "head role",
                lambda: identity.ensure_role(c, names, head_role(names.head_role_id, names.workspace)),
            )
            step(
                "head role binding",
                lambda: identity.update_policy(
                    identity.project_policy(c),
                    lambda p: identity.with_binding(
                        p,
                        names.head_role,
                        identity.member(head),
                        head_condition(names.instance_prefix, names.workspace),
                    ),
                    t,
                    f"binding {names.head_role} to {head}",
                ),
            )
            step("head may act as worker", lambda: identity.ensure_act_as(c, head, worker, t))
            step("bucket", lambda: storage.ensure_bucket(c, names))
            step("bucket access", lambda: storage.ensure_bucket_access(c, names, [head, worker], t))

    @contextmanager
    def lock(self, record: LockRecord) -> Iterator[LockRecord]:
        """The workspace's lock in the cloud (an empty bucket) for the time of a create or delete."""
        lock = BucketLock(self.clients, self.names)
        with (
            gcp_errors(f"locking workspace {self.workspace_name!r}"),
            hold_cloud_lock(lock, self.workspace_name, record) as held,
        ):
            yield held

    # -- delete -----------------------------------------------------------------------------------

    def delete(self, force: bool = False) -> list[str]:
        """Delete in reverse order; returns what was removed. Refuses while instances run in the
        workspace or the bucket holds data, unless `force` (then instances are deleted and the bucket
        emptied first)."""
        c, names, t = self.clients, self.names, self.timeout
        step = Steps(self._progress, self.hooks, verb="deleting")
        with gcp_errors(f"deleting workspace {self.workspace_name!r}"):
            instances = workspace_instances(c, self.workspace_name)
            refuse_busy_delete(self.workspace_name, len(instances), self.cluster_names(), force)
            has_bucket = storage.get_bucket(c, names.bucket) is not None
            holds = has_bucket and bool(storage.object_names(c, names.bucket, limit=1))
            refuse_data_delete(self.workspace_name, f"bucket {names.bucket}", holds, force)
            if instances:
                step.remove("instances", lambda: self._delete_instances(instances))
            step.remove("bucket", lambda: storage.delete_bucket(c, names))
            head = identity.member(names.email("head"))

            def unbind() -> list[str]:
                changed = identity.update_policy(
                    identity.project_policy(c),
                    lambda p: identity.without_member(p, head, names.head_role),
                    t,
                    f"unbinding {names.head_role}",
                )
                return [f"{names.head_role} for {head}"] if changed else []

            step.remove("head role binding", unbind)
            step.remove("head role", lambda: identity.delete_role(c, names))
            step.remove("worker service account", lambda: identity.delete_account(c, names.email("worker")))
            step.remove("head service account", lambda: identity.delete_account(c, names.email("head")))
            peer = self.config.networking.peer_vpc_id if self.config is not None else None
            step.remove(
                "peering", lambda: network.delete_peering(c, names, peer and peer.rsplit("/", 1)[-1], t)
            )
            step.remove("Cloud NAT", lambda: network.delete_router(c, names, t))
            step.remove("firewall rules", lambda: network.delete_firewalls(c, names, t))
            step.remove("subnets", lambda: network.delete_subnets(c, names, t))
            step.remove("network", lambda: network.delete_network(c, names, t))
        return step.removed

    def _delete_instances(self, instances: list[object]) -> list[str]:
        c = self.clients
        ops = []
        for i in instances:
            try:
                ops.append(c.instances.delete_unary(project=c.project, zone=zone_of(i), instance=i.name))  # type: ignore[attr-defined]
            except Exception as exc:
                if not is_not_found(exc):
                    raise
        wait_all(
            c, ops, timeout=self.timeout, what=f"deleting instances of workspace {self.workspace_name!r}"
        )
        poll(
            lambda: not workspace_instances(c, self.workspace_name),
            timeout=self.timeout,
            what=f"instances of workspace {self.workspace_name!r} to be deleted",
        )
        return [str(i.name) for i in instances]  # type: ignore[attr-defined]

    def cluster_names(self) -> set[str]:
        found = workspace_instances(self.clients, self.workspace_name)
        return {dict(i.labels).get(T.CLUSTER, "") for i in found} - {""}

    # -- status and info ----------------------------------------------------------------------------

    def _mode(self) -> str:
        if self.config is not None:
            return self.config.networking.mode
        rule = network.find_firewall(self.clients, self.names, self.names.internal_firewall)
        return N.networking_mode(rule.description) if rule is not None else "public"

    def status(self) -> list[ResourceStatus]:
        from .status import workspace_status

        with gcp_errors(f"reading workspace {self.workspace_name!r}"):
            return workspace_status(self.clients, self.names, self._mode(), self._shared_network())

    def _shared_network(self) -> str | None:
        if self.config is not None and self.config.networking.vpc_id:
            return self.config.networking.vpc_id.rsplit("/", 1)[-1]
        return None

    def info(self) -> dict[str, str]:
        c, names = self.clients, self.names
        with gcp_errors(f"reading workspace {self.workspace_name!r}"):
            out = {"provider": "gcp", "project": c.project, "region": c.region, "networking": self._mode()}
            rule = network.find_firewall(c, names, names.internal_firewall)
            if rule is not None:
                out["network"] = rule.network.rsplit("/", 1)[-1]
            for role, sub in network.find_subnets(c, names).items():
                out[role.replace("-", "_")] = sub.name
            out["network_tag"] = names.network_tag
            out["head_service_account"] = names.email("head")
            out["worker_service_account"] = names.email("worker")
            out["bucket"] = names.bucket
            clusters = sorted(self.cluster_names())
            out["clusters"] = ",".join(clusters) if clusters else "-"
            return out
