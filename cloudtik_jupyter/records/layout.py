"""Where things live in a node's state directory (``~/.cloudtik/node``), named once for the client that
uploads them, the node that reads them and the head's controller that copies them to workers."""

from __future__ import annotations

NODE_STATE = "~/.cloudtik/node"  # the node's state directory as seen over SSH (paths.node_state_dir())

CONFIG_FILE = "cluster.yaml"  # the cluster config (also the name in the client's local record)
AGENT_CONFIG_FILE = "agent.json"
AGENT_DIR = "agent"  # the agent's run dir: pid file, control socket, service logs
RUNTIME_DIR = "runtime"  # the runtimes' work dirs
REDIS_DIR = "redis"  # the state store's endpoints and password (on workers: the worker's own user's)
REDIS_ENDPOINTS_FILE = "endpoints.json"
REDIS_PASSWORD_FILE = "password"
CLIENT_KEY_FILE = "client_key.pub"  # the user's public key, accepted by workers the controller launches
HEAD_KEY_FILE = (
    "head_key"  # the head's key for the workers; kept by the client too, so a new head is accepted
)
SECRET_FILE = "runtime_secret"  # the runtimes' key (Spark authentication); also in the local record
IDENTITY_FILE = "identity.json"  # what the client remembers of the head's identity (head/identity.py)
