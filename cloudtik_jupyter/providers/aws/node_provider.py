"""AWS NodeProvider: a cluster's instances, launched into its workspace's subnets, firewall and roles.

The head goes to the public subnet with a public IP (private subnet in the peering and shared-vpc modes),
workers to the private subnets, spread across zones batch by batch. The cluster's SSH key reaches the
node through cloud-init user data (a public key, not a secret), so no EC2 key pair is left to clean up.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from .. import tags as T
from ..base import ListedNode, NodeAddress, NodeId, NodeSpec
from ..common.bootstrap import cloud_init
from ..common.node_config import parse_node_config
from .clients import AwsClients, aws_errors, error_code, is_client_error, make_clients
from .lookup import LIVE_STATES, WorkspaceNetwork, live_instances, resolve_network, tag_filters
from .naming import WorkspaceNames, tag_dict
from .polling import poll

if TYPE_CHECKING:
    from ...config.schema import AwsProviderConfig

LAUNCH_BATCH = 5  # instances per RunInstances call
_CAPACITY_CODES = ("InsufficientInstanceCapacity", "InsufficientCapacity", "Unsupported")


class AwsNodeConfig(BaseModel):
    """``node_config`` of an AWS node type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ImageId: str
    InstanceType: str = "m5.large"


def _node_config(spec: NodeSpec) -> AwsNodeConfig:
    return parse_node_config(AwsNodeConfig, spec)


class AwsNodeProvider:
    """Cloud API channel for one cluster in one workspace. Every method is safe to retry."""

    def __init__(
        self,
        provider_config: AwsProviderConfig,
        cluster_name: str,
        *,
        workspace_name: str = "default",
        clients: AwsClients | None = None,
    ) -> None:
        self.provider_config = provider_config
        self.cluster_name = cluster_name
        self.workspace_name = workspace_name
        self._clients = clients
        self._network: WorkspaceNetwork | None = None
        self._lock = threading.Lock()  # callers run provider methods in threads
        self._cache: dict[NodeId, Any] = {}  # last description seen of each instance
        self.profile_propagation_timeout = 60.0  # IAM is eventually consistent: seconds, on AWS

    @property
    def clients(self) -> AwsClients:
        if self._clients is None:
            self._clients = make_clients(self.provider_config.region, self.provider_config.endpoint_url)
        return self._clients

    @property
    def network(self) -> WorkspaceNetwork:
        if self._network is None:
            with aws_errors(f"looking up workspace {self.workspace_name!r}"):
                self._network = resolve_network(self.clients.ec2, WorkspaceNames(self.workspace_name))
        return self._network

    def _remember(self, instances: Sequence[Any]) -> None:
        with self._lock:
            for i in instances:
                self._cache[i["InstanceId"]] = i

    def _describe(self, node_id: NodeId) -> Any:
        with aws_errors(f"describing {node_id}"):
            found = self.clients.ec2.describe_instances(InstanceIds=[node_id])["Reservations"]
        instance = found[0]["Instances"][0]
        self._remember([instance])
        return instance

    # -- listing ----------------------------------------------------------------------------------

    def list_nodes(self, tags: Mapping[str, str]) -> list[ListedNode]:
        """One DescribeInstances (filtered by tag and state server-side, paginated past 1000 nodes)."""
        wanted = {**tags, T.CLUSTER: self.cluster_name, T.WORKSPACE: self.workspace_name}
        with aws_errors(f"listing nodes of cluster {self.cluster_name!r}"):
            instances = live_instances(self.clients.ec2, wanted)
        self._remember(instances)
        return [ListedNode(i["InstanceId"], tag_dict(i.get("Tags")), _address(i)) for i in instances]

    def non_terminated_nodes(self, tags: Mapping[str, str]) -> list[NodeId]:
        return [n.node_id for n in self.list_nodes(tags)]

    # -- launching --------------------------------------------------------------------------------

    def _launch_params(self, spec: NodeSpec, tags: Mapping[str, str], kind: str) -> dict[str, Any]:
        node = _node_config(spec)
        net = self.network
        head = kind == T.KIND_HEAD
        params: dict[str, Any] = {
            "ImageId": node.ImageId,
            "InstanceType": node.InstanceType,
            "IamInstanceProfile": {"Name": net.head_profile if head else net.worker_profile},
            "TagSpecifications": [
                {"ResourceType": rt, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
                for rt in ("instance", "volume")
            ],
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},  # IMDSv2 only
        }
        user_data = cloud_init(spec.ssh_user, spec.ssh_public_key)
        if user_data:
            params["UserData"] = user_data
        if self.provider_config.use_spot and not head:  # a reclaimed head would take the cluster with it
            params["InstanceMarketOptions"] = {
                "MarketType": "spot",
                "SpotOptions": {"SpotInstanceType": "one-time", "InstanceInterruptionBehavior": "terminate"},
            }
        return params

    def _placement(self, subnet: str, public: bool) -> dict[str, Any]:
        sg = self.network.security_group
        if public:
            iface = {"DeviceIndex": 0, "SubnetId": subnet, "Groups": [sg], "AssociatePublicIpAddress": True}
            return {"NetworkInterfaces": [{**iface, "DeleteOnTermination": True}]}
        return {"SubnetId": subnet, "SecurityGroupIds": [sg]}

    def create_nodes(self, spec: NodeSpec, tags: Mapping[str, str], count: int) -> list[NodeId]:
        kind = tags.get(T.NODE_KIND, T.KIND_WORKER)
        all_tags = {
            "Name": f"cloudtik-{self.cluster_name}-{kind}",
            **tags,
            T.CLUSTER: self.cluster_name,
            T.WORKSPACE: self.workspace_name,
            T.NODE_KIND: kind,
            T.NODE_TYPE: spec.node_type,
        }
        params = self._launch_params(spec, all_tags, kind)
        net = self.network
        public = kind == T.KIND_HEAD and net.mode == "public"
        subnets = [net.public_subnet] if public else list(net.private_subnets)
        launched: list[NodeId] = []
        batch_no = 0
        with aws_errors(f"launching {count} {kind} node(s) of cluster {self.cluster_name!r}"):
            while len(launched) < count:
                n = min(LAUNCH_BATCH, count - len(launched))
                instances = self._run(params, subnets, batch_no, n, public)
                self._remember(instances)
                launched.extend(i["InstanceId"] for i in instances)
                batch_no += 1
        return launched

    def _run(
        self, params: dict[str, Any], subnets: Sequence[str], batch_no: int, n: int, public: bool
    ) -> list[Any]:
        """One batch, in the next subnet round-robin; a zone out of capacity falls through to the next."""
        for attempt in range(len(subnets)):
            subnet = subnets[(batch_no + attempt) % len(subnets)]
            request = {**params, **self._placement(subnet, public), "MinCount": n, "MaxCount": n}
            try:
                return self._run_instances(request)
            except Exception as exc:
                if (
                    not (is_client_error(exc) and error_code(exc) in _CAPACITY_CODES)
                    or attempt == len(subnets) - 1
                ):
                    raise
        raise AssertionError("unreachable")

    def _run_instances(self, request: dict[str, Any]) -> list[Any]:
        """RunInstances, waiting out IAM's propagation delay for a just-created instance profile."""
        outcome: list[Any] = []

        def attempt() -> bool:
            try:
                outcome.extend(self.clients.ec2.run_instances(**request)["Instances"])
            except Exception as exc:
                message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", ""))
                if error_code(exc) == "InvalidParameterValue" and "instance profile" in message.lower():
                    return False
                raise
            return True

        poll(
            attempt, timeout=self.profile_propagation_timeout, what="the instance profile to propagate in IAM"
        )
        return outcome

    # -- terminating and tags -----------------------------------------------------------------------

    def terminate_nodes(self, ids: Sequence[NodeId]) -> None:
        """Terminate those of `ids` still alive and of this cluster (a repeated call is a no-op)."""
        ec2 = self.clients.ec2
        with aws_errors(f"terminating nodes of cluster {self.cluster_name!r}"):
            for start in range(0, len(ids), 200):  # filter values per call are limited
                chunk = list(ids[start : start + 200])
                ours = {T.CLUSTER: self.cluster_name, T.WORKSPACE: self.workspace_name}
                filters = [
                    {"Name": "instance-id", "Values": chunk},
                    {"Name": "instance-state-name", "Values": LIVE_STATES},
                    *tag_filters(ours),  # never another cluster's instances
                ]
                pages = ec2.get_paginator("describe_instances").paginate(Filters=filters)
                live = [
                    i["InstanceId"]
                    for page in pages
                    for r in page["Reservations"]
                    for i in r["Instances"]
                    if ours.items() <= tag_dict(i.get("Tags")).items()
                ]
                if live:
                    ec2.terminate_instances(InstanceIds=live)
        with self._lock:
            for node_id in ids:
                self._cache.pop(node_id, None)

    def node_tags(self, node_id: NodeId) -> dict[str, str]:
        with self._lock:
            cached = self._cache.get(node_id)
        return tag_dict((cached or self._describe(node_id)).get("Tags"))

    def set_node_tags(self, node_id: NodeId, tags: Mapping[str, str]) -> None:
        with aws_errors(f"tagging {node_id}"):
            self.clients.ec2.create_tags(
                Resources=[node_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
            )
        with self._lock:
            cached = self._cache.get(node_id)
            if cached is not None:
                merged = {**tag_dict(cached.get("Tags")), **tags}
                cached["Tags"] = [{"Key": k, "Value": v} for k, v in merged.items()]

    def address(self, node_id: NodeId) -> NodeAddress:
        with self._lock:
            cached = self._cache.get(node_id)
        # A pending instance may not have its addresses yet: describe again until it does.
        if cached is None or not cached.get("PrivateIpAddress") or cached["State"]["Name"] == "pending":
            cached = self._describe(node_id)
        return _address(cached)


def _address(instance: Any) -> NodeAddress:
    """What a description says (a pending instance may have no public address yet: the next listing will)."""
    return NodeAddress(
        internal_ip=instance.get("PrivateIpAddress", ""), external_ip=instance.get("PublicIpAddress")
    )
