"""Who may do what in the cluster's Redis.

- ``default``: the admin, with the cluster's password. The head (controller, its agent) and clients use it.
- ``node-<id>``: one restricted user per worker, with its own password, given to that worker only. It may
  write its own node record, its own metrics ring (append and trim) and the shared heartbeat, process,
  health and metrics tables, append to the event log and publish change notices: no reads of anything
  else, no deletes, no other trimming, no CONFIG, FLUSHALL, KEYS, EVAL, DEBUG or ACL. A worker that is taken over can then neither take over the head
  (``CONFIG SET dir`` + ``SAVE`` writes files there) nor wipe or forge another node's record.

  Redis grants per key, not per hash field: a worker can still write another node's *field* in the shared
  heartbeat/metrics tables (making a lost node look alive for a while). Closing that needs per-node
  heartbeat keys, which the controller's one-read-per-shard tick does not use today.

The users live in ``users.acl`` beside the servers' configs (0600, the ``aclfile`` of every server), so a
restarted server keeps them; a change is applied with ``ACL LOAD`` on every server.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CloudtikError
from ..paths import ensure_private_dir, write_private

if TYPE_CHECKING:
    from .store import StateStore

log = logging.getLogger("cloudtik.acl")

ACL_FILE = "users.acl"
NODE_PASSWORDS = "nodes"  # <redis dir>/nodes/<node id>.password, one per worker
_NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

# What a worker's agent sends (see StateStore.register_node, heartbeat, add_event): nothing more.
WORKER_COMMANDS = ("ping", "multi", "exec", "discard", "hset", "hsetnx", "sadd", "zadd", "rpush", "publish")
WORKER_SHARED_KEYS = (
    "cloudtik:nodes",
    "cloudtik:heartbeats",
    "cloudtik:processes",
    "cloudtik:health",
    "cloudtik:metrics",
    "cloudtik:events",
)
CHANNEL = "cloudtik:changes"


def node_user(node_id: str) -> str:
    if not _NODE_ID.match(node_id):
        raise CloudtikError(f"cannot make a Redis user for node id {node_id!r}")
    return f"node-{node_id}"


def _digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def admin_rule(password: str) -> str:
    return f"user default on #{_digest(password)} ~* &* +@all"


def worker_rule(node_id: str, password: str) -> str:
    from .store import history_key, node_key

    keys = " ".join(f"~{k}" for k in (node_key(node_id), *WORKER_SHARED_KEYS))
    commands = " ".join(f"+{c}" for c in WORKER_COMMANDS)
    # A selector: trimming is allowed on the node's own metrics ring only (never on the event log).
    ring = f"(~{history_key(node_id)} +rpush +ltrim)"
    return (
        f"user {node_user(node_id)} on #{_digest(password)} resetkeys resetchannels -@all "
        f"{commands} {keys} &{CHANNEL} {ring}"
    )


@contextlib.contextmanager
def _locked(redis_dir: Path) -> Iterator[Path]:
    """The ACL file, locked against the head's other writers (node start, the controller)."""
    ensure_private_dir(redis_dir)
    fd = os.open(redis_dir / f"{ACL_FILE}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield redis_dir / ACL_FILE
    finally:
        os.close(fd)


def _rules(path: Path) -> dict[str, str]:
    """User name -> its rule line, in file order."""
    rules: dict[str, str] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "user":
                rules[words[1]] = line.strip()
    return rules


def _save(path: Path, rules: dict[str, str]) -> None:
    write_private(path, "".join(f"{line}\n" for line in rules.values()))


def write_admin(redis_dir: Path, password: str) -> Path:
    """(Re)write the admin user, keeping every worker's: called whenever the servers are (re)configured."""
    with _locked(redis_dir) as path:
        rules = _rules(path)
        rules["default"] = admin_rule(password)
        _save(path, {"default": rules.pop("default"), **rules})
        return path


def node_password_file(redis_dir: Path, node_id: str) -> Path:
    node_user(node_id)  # the id is checked before it names a file
    return redis_dir / NODE_PASSWORDS / f"{node_id}.password"


async def grant_node(store: StateStore, redis_dir: Path, node_id: str) -> Path:
    """The worker's restricted user, made (or kept, with its password) and live on every server; returns
    the 0600 file holding its password, to be copied to that worker only."""
    password_file = node_password_file(redis_dir, node_id)
    with _locked(redis_dir) as path:
        if password_file.exists():
            password = password_file.read_text().strip()
        else:
            password = secrets.token_urlsafe(32)
            ensure_private_dir(password_file.parent)
            write_private(password_file, password)
        rules = _rules(path)
        rules[node_user(node_id)] = worker_rule(node_id, password)
        _save(path, rules)
    from redis.exceptions import RedisError  # loaded with `store`; the rest of this module needs no client

    try:
        await store.reload_acl()
    except RedisError as exc:
        raise CloudtikError(f"cannot apply the Redis user of {node_id}: {exc}") from None
    return password_file


async def revoke_node(store: StateStore, redis_dir: Path, node_id: str) -> None:
    """Remove a gone worker's user (and its password file); harmless if it had none."""
    if not _NODE_ID.match(node_id):
        return
    with _locked(redis_dir) as path:
        rules = _rules(path)
        if rules.pop(node_user(node_id), None) is None:
            return
        _save(path, rules)
        node_password_file(redis_dir, node_id).unlink(missing_ok=True)
    from redis.exceptions import RedisError

    try:
        await store.reload_acl()
    except RedisError as exc:  # the file no longer has the user: a restarted server won't either
        log.warning("could not apply the removal of %s's Redis user yet: %s", node_id, exc)
