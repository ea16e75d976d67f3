"""Provider tag keys: the node state that survives the client (and the controller) restarting."""

from __future__ import annotations

from enum import Enum

CLUSTER = "cloudtik-cluster"
NODE_KIND = "cloudtik-node-kind"  # head | worker
NODE_TYPE = "cloudtik-node-type"
NODE_STATUS = "cloudtik-node-status"
NODE_NAME = "cloudtik-node-name"
LAUNCH_HASH = "cloudtik-launch-hash"  # hash of what setup installed; a change re-runs setup
NODE_SEQ = "cloudtik-node-seq"
CONFIG_DIGEST = "cloudtik-config-digest"  # head: digest of the cluster config its controller was given
WORKSPACE = "cloudtik-workspace"

KIND_HEAD = "head"
KIND_WORKER = "worker"


class NodeStatus(str, Enum):
    PENDING = "pending"
    WAITING_FOR_SSH = "waiting-for-ssh"
    SETTING_UP = "setting-up"
    UP_TO_DATE = "up-to-date"
    UPDATE_FAILED = "update-failed"


# The head's identity, kept where a new head finds it after a head crash (head/identity.py):
HEAD_ID = "cloudtik-head-id"  # on a worker: the head whose controller set it up (its agent reports there)
SEQ_HWM = "cloudtik-seq-hwm"  # the highest sequence id handed out when this tag was written
DESIRED = "cloudtik-desired"  # on a worker: "<count>v<version>", the desired count of its type
