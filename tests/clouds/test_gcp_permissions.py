"""The GCP head's role holds exactly what the node provider does, on the workspace's own instances only
(IAM Condition on the name prefix), and the user's role exactly what create/delete/up/down do.

Every request the node provider makes, as the head's controller would, is turned into GCP's permission
checks and evaluated against the head service account's bindings as the fake's IAM holds them,
conditions included; a new request without its permission fails here, so does a permission nothing
uses, and so does any instance outside the prefix.
"""

from __future__ import annotations

from fakes.envs import GcpEnv, gcp_fixture  # noqa: F401
from gcp_permissions import Check, Grants, permissions_of, requests_since

from cloudtik_jupyter.providers import tags as T
from cloudtik_jupyter.providers.base import NodeSpec
from cloudtik_jupyter.providers.common.lock import LockRecord
from cloudtik_jupyter.providers.gcp.naming import GcpNames
from cloudtik_jupyter.providers.gcp.node_provider import GcpNodeProvider
from cloudtik_jupyter.providers.gcp.roles import HEAD_PERMISSIONS, USER_PERMISSIONS

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1YGvqRMcJYb2OS7rGxVOkHnDv2VaO4sdkUwlYpbUEm cloudtik-etl"
PUBLIC = "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts"


def _checks(gcp: GcpEnv, mark: int) -> list[Check]:
    return [c for r in requests_since(gcp.fake, mark) for c in permissions_of(gcp.project, r)]


def _head_operations(gcp: GcpEnv, workspace: str = "ws") -> list[Check]:
    """What the head's controller does through the node provider: workers only."""
    mark = len(gcp.fake.server.requests)
    own_image = f"projects/{gcp.project}/global/images/spark-base"  # a custom image of the project
    for preemptible, image in ((False, PUBLIC), (True, own_image)):
        nodes = GcpNodeProvider(
            gcp.provider_config(use_preemptible=preemptible),
            "etl",
            workspace_name=workspace,
            clients=gcp.clients(),
        )
        workers = nodes.create_nodes(
            NodeSpec("w", {"sourceImage": image}, "u", KEY), {T.NODE_KIND: T.KIND_WORKER}, 2
        )
        fresh = GcpNodeProvider(gcp.provider_config(), "etl", workspace_name=workspace, clients=gcp.clients())
        assert sorted(fresh.non_terminated_nodes({T.NODE_KIND: T.KIND_WORKER})) == sorted(workers)
        fresh.set_node_tags(workers[0], {T.NODE_STATUS: "up-to-date"})
        assert fresh.node_tags(workers[0])[T.NODE_STATUS] == "up-to-date"
        assert fresh.address(workers[1]).internal_ip
        fresh.terminate_nodes(workers)
    return _checks(gcp, mark)


def test_the_head_holds_exactly_what_the_node_provider_does_on_its_instances_only(gcp: GcpEnv) -> None:
    gcp.workspace("ws").create()
    names = GcpNames("ws", gcp.project)
    head = Grants(gcp.fake, f"serviceAccount:{names.email('head')}")

    checks = _head_operations(gcp)

    assert {c.permission for c in checks} >= {
        "compute.instances.create",
        "compute.instances.delete",
        "iam.serviceAccounts.actAs",
    }
    assert head.denied(checks) == []
    assert set(HEAD_PERMISSIONS) - {c.permission for c in checks} == set()  # nothing nobody uses

    # The same role, on another VM of the project or as another account: no.
    zone = f"projects/{gcp.project}/zones/us-central1-a"
    outside = [
        Check("compute.instances.delete", f"{zone}/instances/prod-db-1", "compute.googleapis.com/Instance"),
        Check(
            "compute.instances.setMetadata", f"{zone}/instances/prod-db-1", "compute.googleapis.com/Instance"
        ),
        Check("compute.disks.create", f"{zone}/disks/prod-db-2", "compute.googleapis.com/Disk"),
        Check(
            "compute.instances.create",
            f"{zone}/instances/{GcpNames('other', gcp.project).instance_prefix}etl-worker-1",
            "compute.googleapis.com/Instance",
        ),
        Check(
            "iam.serviceAccounts.actAs",
            f"projects/{gcp.project}/serviceAccounts/{names.email('head')}",
            "iam.googleapis.com/ServiceAccount",
        ),
    ]
    assert len(head.denied(outside)) == len(outside)
    ours = Check(
        "compute.instances.delete",
        f"{zone}/instances/{names.instance_prefix}etl-worker-1",
        "compute.googleapis.com/Instance",
    )
    assert head.denied([ours]) == []


def test_node_names_carry_the_prefix_and_fit_gcp(gcp: GcpEnv) -> None:
    names = GcpNames("a" * 40, gcp.project)
    name = names.instance_name("b" * 40, "worker", "0123abcd")
    assert name.startswith(names.instance_prefix) and len(name) <= 63 and name.endswith("-worker-0123abcd")
    assert GcpNames("ws", gcp.project).instance_prefix != GcpNames("ws-2", gcp.project).instance_prefix


def test_the_users_role_holds_exactly_what_create_delete_up_and_down_do(gcp: GcpEnv) -> None:
    gcp.fake.add_network("client", {"client-subnet": "192.168.0.0/24"})
    gcp.fake.add_network("shared", {"shared-subnet": "10.1.0.0/24"})
    mark = len(gcp.fake.server.requests)
    modes: dict[str, dict[str, str]] = {
        "a": {},
        "b": {"mode": "peering", "peer_vpc_id": "client", "vpc_cidr": "10.9.0.0/16"},
        "c": {"mode": "shared-vpc", "vpc_id": "shared"},
    }
    for name, networking in modes.items():
        ws = gcp.workspace(name, **networking)
        with ws.lock(LockRecord.new("create")):
            ws.create()
        if name == "a":  # update: narrowed SSH sources, and hand edits converged back
            names = GcpNames(name, gcp.project)
            gcp.fake.iam.buckets[names.bucket]["labels"] = {}
            (router,) = [r for (_, n), r in gcp.fake.compute.routers.items() if n == names.router]
            router["nats"] = []
            narrowed = gcp.workspace(name, allowed_ssh_cidrs=["203.0.113.7/32"])
            with narrowed.lock(LockRecord.new("create")):
                narrowed.create()
        nodes = GcpNodeProvider(gcp.provider_config(), "etl", workspace_name=name, clients=gcp.clients())
        (head,) = nodes.create_nodes(
            NodeSpec("h", {"sourceImage": PUBLIC}, "u", KEY), {T.NODE_KIND: T.KIND_HEAD}, 1
        )
        nodes.set_node_tags(head, {T.NODE_STATUS: "up-to-date"})
        nodes.address(head)
        if name == "c":  # delete --force: instances deleted, the bucket emptied
            gcp.fake.put_object(GcpNames(name, gcp.project).bucket, "data/part-0")
            with ws.lock(LockRecord.new("delete")):
                ws.delete(force=True)
            continue
        nodes.terminate_nodes(nodes.non_terminated_nodes({}))
        with ws.lock(LockRecord.new("delete")):
            ws.delete()
    again = gcp.workspace("a")  # its head role is only soft-deleted: undeleted and converged
    for operation in ("create", "delete"):
        with again.lock(LockRecord.new(operation)):
            again.create() if operation == "create" else again.delete()

    used = {c.permission for c in _checks(gcp, mark)}
    assert used - set(USER_PERMISSIONS) == set()  # every check passes with the user's role
    assert set(USER_PERMISSIONS) - used == set()  # and it holds nothing more
