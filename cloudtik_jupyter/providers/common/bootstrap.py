"""What a new node needs to let the cluster in: its SSH user and the cluster's public keys."""

from __future__ import annotations

from typing import Any

DEFAULT_USER = "cloudtik"


def public_keys(authorized: str) -> list[str]:
    """The authorized_keys lines of a NodeSpec (the cluster's key, plus e.g. the client's on the head)."""
    return [line.strip() for line in authorized.splitlines() if line.strip() and not line.startswith("#")]


def cloud_init(ssh_user: str, public_key: str) -> str:
    """User data authorising the cluster's key(s) for `ssh_user` (or the image's default user)."""
    import yaml

    keys = public_keys(public_key)
    if not keys:
        return ""
    if ssh_user:
        users: list[Any] = [
            "default",
            {
                "name": ssh_user,
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "shell": "/bin/bash",
                "ssh_authorized_keys": keys,
            },
        ]
        doc: dict[str, Any] = {"users": users}
    else:
        doc = {"ssh_authorized_keys": keys}
    return "#cloud-config\n" + yaml.safe_dump(doc, sort_keys=False, width=1 << 16)  # keys stay on one line
