"""The environment a node's setup and start commands run with: who the node is, where its head is."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CLUSTER = "CLOUDTIK_CLUSTER"
NODE_ID = "CLOUDTIK_NODE_ID"
NODE_KIND = "CLOUDTIK_NODE_KIND"
NODE_TYPE = "CLOUDTIK_NODE_TYPE"
NODE_IP = "CLOUDTIK_NODE_IP"
HEAD_IP = "CLOUDTIK_HEAD_IP"
NODE_SEQ = "CLOUDTIK_NODE_SEQ"
WORKSPACE = "CLOUDTIK_WORKSPACE"  # set where a process acts for a workspace (not part of a node's identity)
# A short private directory for what needs short paths (Unix sockets: Ray's sessions) and goes with the
# node: on `virtual` one per node, removed with it; elsewhere the machine's temp dir, which dies with it.
SCRATCH = "CLOUDTIK_NODE_SCRATCH"


def scratch_dir(env: Mapping[str, str] | None = None) -> Path:
    """This node's scratch directory (see SCRATCH); the caller creates what it needs inside."""
    env = os.environ if env is None else env
    return Path(env.get(SCRATCH) or Path(tempfile.gettempdir()) / f"cloudtik-{os.getuid()}")


class NotOnANode(Exception):
    """A variable of the node environment is missing: the command runs somewhere else."""


def here(env: Mapping[str, str] | None = None) -> NodeIdentity | None:
    """The node this process runs on (its setup and start commands, its services), or None elsewhere."""
    try:
        return NodeIdentity.from_env(env)
    except NotOnANode:
        return None


@dataclass(frozen=True)
class NodeIdentity:
    cluster: str
    node_id: str
    kind: str
    node_type: str
    ip: str
    head_ip: str
    seq: int | None

    def to_env(self) -> dict[str, str]:
        return {
            CLUSTER: self.cluster,
            NODE_ID: self.node_id,
            NODE_KIND: self.kind,
            NODE_TYPE: self.node_type,
            NODE_IP: self.ip,
            HEAD_IP: self.head_ip,
            NODE_SEQ: "" if self.seq is None else str(self.seq),
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NodeIdentity:
        env = os.environ if env is None else env
        try:
            seq = env.get(NODE_SEQ)
            return cls(
                cluster=env[CLUSTER],
                node_id=env[NODE_ID],
                kind=env[NODE_KIND],
                node_type=env.get(NODE_TYPE, ""),
                ip=env[NODE_IP],
                head_ip=env[HEAD_IP],
                seq=int(seq) if seq else None,
            )
        except KeyError as missing:
            raise NotOnANode(
                f"{missing} is not set: run this on a cluster node, through the updater"
            ) from None
