"""AWS WorkspaceProvider: the network, firewall, identities and bucket a team's clusters share.

Every step finds its resource by tag before creating it, so an interrupted `create` converges when
re-run and never duplicates; `delete` undoes the steps in reverse order, removes every resource tagged
as the workspace's own (duplicates too) and touches nothing else. A key pair named after the workspace is
its lock in the cloud while a create or delete runs (see `lock.py`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError
from .. import tags as T
from ..base import ResourceStatus
from ..common.guard import refuse_busy_delete, refuse_data_delete
from ..common.lock import LockRecord, hold_cloud_lock
from ..common.steps import StepHooks, Steps
from . import gateways, identity, network, peering, storage
from . import naming as N
from .clients import AwsClients, aws_errors, make_clients
from .firewall import delete_security_groups, ensure_security_group, find_security_group
from .lock import KeyPairLock
from .lookup import workspace_instances
from .naming import WorkspaceNames, tag_dict
from .policies import PolicyScope, head_policy, worker_policy
from .polling import poll

if TYPE_CHECKING:
    from ...config.schema import AwsProviderConfig
    from ...config.workspace import NetworkingConfig, WorkspaceConfig

ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class Inputs:
    """What `create` checked before touching anything (bad input creates nothing)."""

    zones: tuple[str, ...]
    shared_vpc: network.Vpc | None
    peer_vpc: network.Vpc | None


class AwsWorkspaceProvider:
    def __init__(
        self,
        provider_config: AwsProviderConfig,
        workspace_name: str,
        config: WorkspaceConfig | None = None,
        *,
        clients: AwsClients | None = None,
        progress: Callable[[str], None] | None = None,
        hooks: StepHooks | None = None,
        timeout: float = 900.0,
    ) -> None:
        self.provider_config = provider_config
        self.workspace_name = workspace_name
        self.config = config
        self.names = WorkspaceNames(workspace_name)
        self.timeout = timeout  # per wait (a NAT gateway takes minutes on AWS, none on moto)
        self._clients = clients
        self._progress = progress or (lambda message: None)
        self.hooks = hooks  # see common.steps: tests make a step fail once
        self._account: str | None = None

    @property
    def clients(self) -> AwsClients:
        if self._clients is None:
            pc = self.provider_config
            self._clients = make_clients(pc.region, pc.endpoint_url)
        return self._clients

    @property
    def _ec2(self) -> Any:
        return self.clients.ec2

    def _roles(self) -> tuple[identity.RoleSpec, identity.RoleSpec]:
        n = self.names
        return (
            identity.RoleSpec(n.head_role, n.head_profile, N.HEAD_ROLE, N.HEAD_PROFILE),
            identity.RoleSpec(n.worker_role, n.worker_profile, N.WORKER_ROLE, N.WORKER_PROFILE),
        )

    @property
    def account_id(self) -> str:
        if self._account is None:
            self._account = str(self.clients.sts.get_caller_identity()["Account"])
        return self._account

    @property
    def bucket(self) -> str:
        return self.names.bucket(self.account_id, self.clients.region)

    # -- create -----------------------------------------------------------------------------------

    def _networking(self) -> NetworkingConfig:
        if self.config is None:
            raise ConfigError("networking", "creating or updating a workspace needs its config (networking)")
        return self.config.networking

    def _check_inputs(self, net: NetworkingConfig) -> Inputs:
        ec2, region = self._ec2, self.clients.region
        zones = tuple(self.provider_config.availability_zones or ())
        if not zones:
            found = ec2.describe_availability_zones(Filters=[{"Name": "state", "Values": ["available"]}])
            zones = tuple(sorted(z["ZoneName"] for z in found["AvailabilityZones"])[:2])
        if not zones:
            raise ConfigError("provider.availability_zones", f"no available zones found in {region}")
        shared = peer = None
        if net.mode == "shared-vpc":
            shared = network.describe_vpc(ec2, str(net.vpc_id))
            if shared is None:
                raise ConfigError("networking.vpc_id", f"no VPC {net.vpc_id} in {region}")
            if not shared.owned and network.attached_gateway(ec2, shared.id) is None:
                raise ConfigError(
                    "networking.vpc_id",
                    f"VPC {shared.id} has no internet gateway (its NAT needs one); cloudtik does not attach "
                    f"one to a VPC it does not own: attach one, or use networking.mode public or peering",
                )
        if net.mode == "peering":
            peer = network.describe_vpc(ec2, str(net.peer_vpc_id))
            if peer is None:
                raise ConfigError("networking.peer_vpc_id", f"no VPC {net.peer_vpc_id} in {region}")
            if ipaddress.ip_network(net.vpc_cidr).overlaps(ipaddress.ip_network(peer.cidr)):
                raise ConfigError(
                    "networking.vpc_cidr",
                    f"{net.vpc_cidr} overlaps the peer VPC's {peer.cidr}; choose another block",
                )
            taken = peering.foreign_routes(ec2, self.names, peer.id, net.vpc_cidr)
            if taken:
                raise ConfigError(
                    "networking.vpc_cidr",
                    f"the peer VPC {peer.id} already routes {net.vpc_cidr} elsewhere ({'; '.join(taken)}); "
                    f"cloudtik does not replace routes it does not own: choose another block",
                )
        return Inputs(zones, shared, peer)

    @contextmanager
    def lock(self, record: LockRecord) -> Iterator[LockRecord]:
        """The workspace's lock in the cloud (a key pair) for the time of a create or delete."""
        with aws_errors(f"locking workspace {self.workspace_name!r}"):
            lock = KeyPairLock(self._ec2, self.names)
            with hold_cloud_lock(lock, self.workspace_name, record) as held:
                yield held

    def create(self) -> None:
        """Create what is missing, converge what exists (also how `update` applies a changed config)."""
        net = self._networking()
        ec2, names, t = self._ec2, self.names, self.timeout
        step = Steps(self._progress, self.hooks, verb="creating")
        with aws_errors(f"creating workspace {self.workspace_name!r}"):
            inputs = self._check_inputs(net)
            vpc = inputs.shared_vpc or step("VPC", lambda: network.ensure_vpc(ec2, names, net.vpc_cidr))
            igw = step("internet gateway", lambda: network.ensure_internet_gateway(ec2, names, vpc))
            subnets = step("subnets", lambda: network.ensure_subnets(ec2, names, vpc, inputs.zones))
            public_subnet = subnets[N.PUBLIC_SUBNET].id
            private_subnets = [subnets[r].id for r in N.PRIVATE_SUBNETS]

            def public_routes() -> str:
                table = network.ensure_route_table(ec2, names, vpc, N.PUBLIC_ROUTE_TABLE).id
                network.ensure_route(ec2, table, ANYWHERE, GatewayId=igw)
                network.ensure_associations(ec2, table, [public_subnet])
                return table

            public_rt = step("public route table", public_routes)

            def nat_gateway() -> str:
                allocation = gateways.ensure_eip(ec2, names)
                return gateways.ensure_nat(ec2, names, public_subnet, allocation, t)

            nat = step("NAT gateway", nat_gateway)

            def private_routes() -> str:
                table = network.ensure_route_table(ec2, names, vpc, N.PRIVATE_ROUTE_TABLE).id
                network.ensure_route(ec2, table, ANYWHERE, NatGatewayId=nat)
                network.ensure_associations(ec2, table, private_subnets)
                return table

            private_rt = step("private route table", private_routes)
            region = self.clients.region
            step(
                "S3 endpoint",
                lambda: gateways.ensure_s3_endpoint(ec2, names, region, vpc.id, [public_rt, private_rt]),
            )
            ssh_from = list(net.allowed_ssh_cidrs)
            if inputs.peer_vpc:
                ssh_from.append(inputs.peer_vpc.cidr)  # the client lives in the peer VPC
            if inputs.shared_vpc:
                ssh_from.append(inputs.shared_vpc.cidr)  # ...or in the shared VPC itself
            step(
                "security group",
                lambda: ensure_security_group(ec2, names, vpc.id, net.mode, sorted(set(ssh_from))),
            )
            if inputs.peer_vpc:
                peer = inputs.peer_vpc
                step(
                    "VPC peering",
                    lambda: peering.ensure_peering(ec2, names, vpc, peer, [public_rt, private_rt], t),
                )
            step("EC2 Spot service-linked role", lambda: identity.ensure_spot_role(self.clients.iam))
            step("IAM roles and instance profiles", self._create_identity)
            step(
                "bucket",
                lambda: storage.ensure_bucket(self.clients.s3, names, self.bucket, region, N.BUCKET),
            )

    def _create_identity(self) -> None:
        iam = self.clients.iam
        head, worker = self._roles()
        worker_arn = identity.ensure_role(iam, self.names, worker)
        identity.ensure_role(iam, self.names, head)
        scope = PolicyScope(
            self.workspace_name, self.account_id, self.clients.region, self.bucket, worker_arn
        )
        identity.ensure_role_policy(iam, worker, worker_policy(scope))
        identity.ensure_role_policy(iam, head, head_policy(scope))
        identity.ensure_profile(iam, self.names, worker)
        identity.ensure_profile(iam, self.names, head)

    # -- delete -----------------------------------------------------------------------------------

    def delete(self, force: bool = False) -> list[str]:
        """Delete in reverse order, every tagged match of each kind; returns what was removed. Refuses
        while instances run in the workspace or the bucket holds data, unless `force` (then instances
        are terminated and the bucket emptied first)."""
        ec2, names, t = self._ec2, self.names, self.timeout
        step = Steps(self._progress, self.hooks, verb="deleting")
        with aws_errors(f"deleting workspace {self.workspace_name!r}"):
            instances = [i["InstanceId"] for i in workspace_instances(ec2, self.workspace_name)]
            has_bucket = storage.bucket_exists(self.clients.s3, self.bucket)
            objects = storage.object_count(self.clients.s3, self.bucket) if has_bucket else 0
            refuse_busy_delete(self.workspace_name, len(instances), self.cluster_names(), force)
            refuse_data_delete(self.workspace_name, f"bucket {self.bucket}", bool(objects), force)
            if instances:

                def terminate() -> list[str]:
                    ec2.terminate_instances(InstanceIds=instances)
                    poll(
                        lambda: not workspace_instances(ec2, self.workspace_name),
                        timeout=t,
                        what=f"instances of workspace {self.workspace_name!r} to terminate",
                    )
                    return instances

                step.remove("instances", terminate)
            step.remove("bucket", lambda: storage.delete_bucket(self.clients.s3, self.bucket))

            def delete_identity() -> list[str]:
                return [r for spec in self._roles() for r in identity.delete_identity(self.clients.iam, spec)]

            step.remove("IAM roles and instance profiles", delete_identity)
            step.remove("VPC peering", lambda: peering.delete_peerings(ec2, names, t))
            step.remove("security group", lambda: delete_security_groups(ec2, names, t))
            step.remove("S3 endpoint", lambda: gateways.delete_s3_endpoints(ec2, names))
            step.remove(
                "private route table", lambda: network.delete_route_tables(ec2, names, N.PRIVATE_ROUTE_TABLE)
            )

            def nat_gateway() -> list[str]:
                nats = gateways.delete_nats(ec2, names, t)  # gone before their addresses can be released
                return [*nats, *gateways.release_eips(ec2, names, t)]

            step.remove("NAT gateway", nat_gateway)
            step.remove(
                "public route table", lambda: network.delete_route_tables(ec2, names, N.PUBLIC_ROUTE_TABLE)
            )
            step.remove("subnets", lambda: network.delete_subnets(ec2, names, t))
            step.remove("internet gateway", lambda: network.delete_internet_gateways(ec2, names, t))
            step.remove("VPC", lambda: network.delete_vpcs(ec2, names, t))
        return step.removed

    def cluster_names(self) -> set[str]:
        found = workspace_instances(self._ec2, self.workspace_name)
        return {tag_dict(i.get("Tags")).get(T.CLUSTER, "") for i in found} - {""}

    # -- status and info ----------------------------------------------------------------------------

    def status(self) -> list[ResourceStatus]:
        from .status import workspace_status

        with aws_errors(f"reading workspace {self.workspace_name!r}"):
            return workspace_status(self)

    def info(self) -> dict[str, str]:
        with aws_errors(f"reading workspace {self.workspace_name!r}"):
            out = {"provider": "aws", "region": self.clients.region}
            group = find_security_group(self._ec2, self.names)
            if group is not None:
                out["networking"] = tag_dict(group.get("Tags")).get(N.NETWORKING, "")
                out["vpc"] = group["VpcId"]
                out["security_group"] = group["GroupId"]
            subnets = network.find_subnets(self._ec2, self.names)
            if N.PUBLIC_SUBNET in subnets:
                out["public_subnet"] = subnets[N.PUBLIC_SUBNET].id
            private = [subnets[r].id for r in N.PRIVATE_SUBNETS if r in subnets]
            if private:
                out["private_subnets"] = ",".join(private)
            out["head_instance_profile"] = self.names.head_profile
            out["worker_instance_profile"] = self.names.worker_profile
            out["bucket"] = self.bucket
            pcx = peering.find_peering(self._ec2, self.names)
            if pcx is not None:
                out["peering_connection"] = pcx["VpcPeeringConnectionId"]
            clusters = sorted(self.cluster_names())
            out["clusters"] = ",".join(clusters) if clusters else "-"
            return out
