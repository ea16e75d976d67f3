"""Provider tag keys: the node state that survives the client (and the controller) restarting."""

from __future__ import annotations

# Node kinds and setup statuses, the values of NODE_KIND and NODE_STATUS:
from ..records.node import KIND_HEAD as KIND_HEAD
from ..records.node import KIND_WORKER as KIND_WORKER
from ..records.node import NodeStatus as NodeStatus

CLUSTER = "cloudtik-cluster"
NODE_KIND = "cloudtik-node-kind"  # head | worker
NODE_TYPE = "cloudtik-node-type"
NODE_STATUS = "cloudtik-node-status"
NODE_NAME = "cloudtik-node-name"
LAUNCH_HASH = "cloudtik-launch-hash"  # hash of what setup installed; a change re-runs setup
NODE_SEQ = "cloudtik-node-seq"
CONFIG_DIGEST = "cloudtik-config-digest"  # head: digest of the cluster config its controller was given
WORKSPACE = "cloudtik-workspace"

# The head's identity, kept where a new head finds it after a head crash (head/identity.py):
HEAD_ID = "cloudtik-head-id"  # on a worker: the head whose controller set it up (its agent reports there)
SEQ_HWM = "cloudtik-seq-hwm"  # the highest sequence id handed out when this tag was written
DESIRED = "cloudtik-desired"  # on a worker: "<count>v<version>", the desired count of its type
