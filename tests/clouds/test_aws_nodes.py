"""AWS NodeProvider against moto: placement, identity, tags, batches, spot, and termination."""

from __future__ import annotations

import base64

import pytest
from botocore.exceptions import ClientError
from conftest import MotoAws

from cloudtik_jupyter.config.schema import ClusterConfig
from cloudtik_jupyter.errors import CloudtikError, ConfigError, ProviderError
from cloudtik_jupyter.providers import node_provider
from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.aws.clients import AwsClients
from cloudtik_jupyter.providers.aws.node_provider import LAUNCH_BATCH, AwsNodeProvider
from cloudtik_jupyter.providers.base import NodeProvider, NodeSpec

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1YGvqRMcJYb2OS7rGxVOkHnDv2VaO4sdkUwlYpbUEm cloudtik-etl"


def _image(c: AwsClients) -> str:
    return str(c.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"])


def _instance(c: AwsClients, node_id: str) -> dict:
    return c.ec2.describe_instances(InstanceIds=[node_id])["Reservations"][0]["Instances"][0]


def _spec(c: AwsClients, node_type: str = "worker") -> NodeSpec:
    return NodeSpec(node_type, {"ImageId": _image(c), "InstanceType": "m5.xlarge"}, "spark", KEY)


@pytest.fixture
def workspace(aws: MotoAws) -> dict[str, str]:
    ws = aws.workspace("ws", clients=aws.clients())
    ws.create()
    return ws.info()


def test_head_and_workers_land_in_the_right_subnets_with_the_right_identity(
    aws: MotoAws, workspace: dict[str, str]
) -> None:
    c = aws.clients()
    nodes = AwsNodeProvider(aws.provider_config(use_spot=True), "etl", workspace_name="ws", clients=c)
    assert isinstance(nodes, NodeProvider)

    (head,) = nodes.create_nodes(_spec(c, "head"), {T.NODE_KIND: T.KIND_HEAD, T.NODE_STATUS: "pending"}, 1)
    sent: list[dict] = []
    c.ec2.meta.events.register(
        "before-parameter-build.ec2.RunInstances", lambda params, **_: sent.append(params)
    )
    workers = nodes.create_nodes(_spec(c), {T.NODE_KIND: T.KIND_WORKER}, 7)

    h = _instance(c, head)
    assert h["SubnetId"] == workspace["public_subnet"]
    assert h.get("PublicIpAddress")  # reachable by the client (never connected to here: it's moto's)
    assert [g["GroupId"] for g in h["NetworkInterfaces"][0]["Groups"]] == [workspace["security_group"]]
    assert h["IamInstanceProfile"]["Arn"].endswith(f"instance-profile/{workspace['head_instance_profile']}")
    assert h.get("InstanceLifecycle") != "spot"  # the head is never on spot
    assert h["InstanceType"] == "m5.xlarge"
    tags = nodes.node_tags(head)
    assert tags[T.CLUSTER] == "etl" and tags[T.WORKSPACE] == "ws"
    assert (
        tags[T.NODE_KIND] == T.KIND_HEAD and tags[T.NODE_TYPE] == "head" and tags[T.NODE_STATUS] == "pending"
    )
    user_data = c.ec2.describe_instance_attribute(InstanceId=head, Attribute="userData")["UserData"]["Value"]
    cloud_config = base64.b64decode(user_data).decode()
    assert cloud_config.startswith("#cloud-config") and KEY in cloud_config and "name: spark" in cloud_config

    private = set(workspace["private_subnets"].split(","))
    described = [_instance(c, w) for w in workers]
    assert {w["SubnetId"] for w in described} == private  # both zones used
    assert all(not w.get("PublicIpAddress") for w in described)
    assert all(g["GroupId"] == workspace["security_group"] for w in described for g in w["SecurityGroups"])
    # What was asked of EC2 (moto shows a profile only on the first instance of each RunInstances).
    assert [p["IamInstanceProfile"] for p in sent] == [{"Name": workspace["worker_instance_profile"]}] * 2
    with_profile = [w for w in described if "IamInstanceProfile" in w]
    assert with_profile and all(
        w["IamInstanceProfile"]["Arn"].endswith(workspace["worker_instance_profile"]) for w in with_profile
    )
    assert all(w["InstanceLifecycle"] == "spot" for w in described)
    reservations = {
        w["InstanceId"]: r["ReservationId"]
        for r in c.ec2.describe_instances(InstanceIds=workers)["Reservations"]
        for w in r["Instances"]
    }
    batch_sizes = sorted(list(reservations.values()).count(r) for r in set(reservations.values()))
    assert batch_sizes == [7 - LAUNCH_BATCH, LAUNCH_BATCH]  # two RunInstances calls

    address = nodes.address(head)
    assert address.internal_ip == h["PrivateIpAddress"] and address.external_ip == h["PublicIpAddress"]
    assert nodes.address(workers[0]).external_ip is None


def test_listing_tagging_and_terminating(aws: MotoAws, workspace: dict[str, str]) -> None:
    c = aws.clients()
    etl = AwsNodeProvider(aws.provider_config(), "etl", workspace_name="ws", clients=c)
    other = AwsNodeProvider(aws.provider_config(), "other", workspace_name="ws", clients=c)
    (head,) = etl.create_nodes(_spec(c, "head"), {T.NODE_KIND: T.KIND_HEAD}, 1)
    workers = etl.create_nodes(_spec(c), {T.NODE_KIND: T.KIND_WORKER}, 3)
    theirs = other.create_nodes(_spec(c), {T.NODE_KIND: T.KIND_WORKER}, 2)

    assert sorted(etl.non_terminated_nodes({})) == sorted([head, *workers])
    assert etl.non_terminated_nodes({T.NODE_KIND: T.KIND_HEAD}) == [head]
    assert sorted(other.non_terminated_nodes({})) == sorted(theirs)

    etl.set_node_tags(workers[0], {T.NODE_STATUS: "up-to-date", T.NODE_SEQ: "2"})
    assert etl.node_tags(workers[0])[T.NODE_STATUS] == "up-to-date"
    fresh = AwsNodeProvider(aws.provider_config(), "etl", workspace_name="ws", clients=c)  # no cache
    assert fresh.node_tags(workers[0])[T.NODE_SEQ] == "2"
    assert fresh.non_terminated_nodes({T.NODE_STATUS: "up-to-date"}) == [workers[0]]

    etl.terminate_nodes(etl.non_terminated_nodes({}))
    etl.terminate_nodes([head])  # idempotent

    assert etl.non_terminated_nodes({}) == []
    assert sorted(other.non_terminated_nodes({})) == sorted(theirs)  # another cluster is untouched
    assert {_instance(c, i)["State"]["Name"] for i in [head, *workers]} == {"terminated"}


def test_private_modes_put_the_head_in_a_private_subnet(aws: MotoAws) -> None:
    c = aws.clients()
    client_vpc = c.ec2.create_vpc(CidrBlock="192.168.0.0/16")["Vpc"]["VpcId"]
    ws = aws.workspace("ws", clients=c, mode="peering", peer_vpc_id=client_vpc)
    ws.create()
    nodes = AwsNodeProvider(aws.provider_config(), "etl", workspace_name="ws", clients=c)
    (head,) = nodes.create_nodes(_spec(c, "head"), {T.NODE_KIND: T.KIND_HEAD}, 1)
    h = _instance(c, head)
    assert h["SubnetId"] in ws.info()["private_subnets"].split(",")
    assert not h.get("PublicIpAddress")
    assert nodes.address(head).external_ip is None


def test_registry_builds_it_from_a_cluster_config(aws: MotoAws, workspace: dict[str, str]) -> None:
    c = aws.clients()
    config = ClusterConfig.model_validate(
        {
            "cluster_name": "etl",
            "workspace_name": "ws",
            "provider": {"type": "aws", "endpoint_url": aws.endpoint},
            "head_node_type": "head",
            "available_node_types": {"head": {"node_config": {"ImageId": _image(c)}}},
        }
    )
    nodes = node_provider(config)
    assert isinstance(nodes, AwsNodeProvider) and nodes.workspace_name == "ws"
    (head,) = nodes.create_nodes(
        NodeSpec("head", config.available_node_types["head"].node_config), {T.NODE_KIND: T.KIND_HEAD}, 1
    )
    assert _instance(c, head)["SubnetId"] == workspace["public_subnet"]
    nodes.terminate_nodes([head])


def test_clear_errors(aws: MotoAws) -> None:
    c = aws.clients()
    nodes = AwsNodeProvider(aws.provider_config(), "etl", workspace_name="nowhere", clients=c)
    with pytest.raises(ProviderError, match="workspace 'nowhere' is missing"):
        nodes.create_nodes(_spec(c), {}, 1)
    aws.workspace("ws", clients=c).create()
    nodes = AwsNodeProvider(aws.provider_config(), "etl", workspace_name="ws", clients=c)
    with pytest.raises(ConfigError) as err:
        nodes.create_nodes(NodeSpec("big", {"InstanceType": "m5.large"}), {}, 1)
    assert err.value.path == "available_node_types.big.node_config.ImageId"
    assert nodes.non_terminated_nodes({}) == []


class FailFirst:
    """The first RunInstances calls answer with an AWS error (a full zone, IAM not yet consistent)."""

    def __init__(self, c: AwsClients, code: str, message: str, times: int = 1) -> None:
        self.left, self.code, self.message = times, code, message
        self.subnets: list[str] = []
        c.ec2.meta.events.register("before-parameter-build.ec2.RunInstances", self._maybe_fail)

    def _maybe_fail(self, params: dict, **_: object) -> None:
        self.subnets.append(params.get("SubnetId", ""))
        if self.left:
            self.left -= 1
            raise ClientError({"Error": {"Code": self.code, "Message": self.message}}, "RunInstances")


def test_a_full_zone_falls_through_to_the_other_private_subnet(
    aws: MotoAws, workspace: dict[str, str]
) -> None:
    c = aws.clients()
    nodes = AwsNodeProvider(aws.provider_config(), "etl", workspace_name="ws", clients=c)
    full = FailFirst(c, "InsufficientInstanceCapacity", "no m5.xlarge capacity in us-east-1a")
    (worker,) = nodes.create_nodes(_spec(c), {T.NODE_KIND: T.KIND_WORKER}, 1)
    first, second = full.subnets
    assert first != second and {first, second} == set(workspace["private_subnets"].split(","))
    assert _instance(c, worker)["SubnetId"] == second


def test_launch_waits_for_a_new_instance_profile_to_propagate(
    aws: MotoAws, workspace: dict[str, str]
) -> None:
    c = aws.clients()
    nodes = AwsNodeProvider(aws.provider_config(), "etl", workspace_name="ws", clients=c)
    FailFirst(
        c,
        "InvalidParameterValue",
        "Value (cloudtik-ws-worker) for parameter iamInstanceProfile.name is "
        "invalid. Invalid IAM Instance Profile name",
        times=2,
    )
    assert len(nodes.create_nodes(_spec(c), {T.NODE_KIND: T.KIND_WORKER}, 1)) == 1
    nodes.profile_propagation_timeout = 0.0
    FailFirst(c, "InvalidParameterValue", "Invalid IAM Instance Profile name", times=100)
    with pytest.raises(CloudtikError, match="instance profile to propagate"):
        nodes.create_nodes(_spec(c), {T.NODE_KIND: T.KIND_WORKER}, 1)
