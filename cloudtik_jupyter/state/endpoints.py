"""Where a cluster's Redis servers listen, saved as JSON so every client on the head can find them.

The JSON holds addresses and the *path* of the password file, never the password itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import CloudtikError
from ..paths import write_private

# Agents on workers get the password through this variable (or a 0600 file), never argv.
PASSWORD_ENV = "CLOUDTIK_REDIS_PASSWORD"
DEFAULT_PRIMARY_PORT = 6789


@dataclass(frozen=True)
class RedisAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class RedisEndpoints:
    """A primary (events, sequence ids, pub/sub) and the shards the node tables are spread over.

    With no shards, the primary holds the node tables too.
    """

    primary: RedisAddress
    shards: tuple[RedisAddress, ...]
    password_file: Path | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "primary": {"host": self.primary.host, "port": self.primary.port},
                "shards": [{"host": s.host, "port": s.port} for s in self.shards],
                "password_file": str(self.password_file) if self.password_file else None,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> RedisEndpoints:
        data = json.loads(text)
        pw = data.get("password_file")
        return cls(
            primary=RedisAddress(data["primary"]["host"], int(data["primary"]["port"])),
            shards=tuple(RedisAddress(s["host"], int(s["port"])) for s in data.get("shards", [])),
            password_file=Path(pw) if pw else None,
        )

    def save(self, path: Path) -> None:
        # 0600 like the password: addresses are not secret, but nobody else needs them.
        write_private(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> RedisEndpoints:
        try:
            return cls.from_json(path.read_text())
        except FileNotFoundError:
            raise CloudtikError(
                f"no Redis endpoints file at {path}: is the head's state store running?"
            ) from None

    def read_password(self, password_file: Path | None = None) -> str:
        """The password from `$CLOUDTIK_REDIS_PASSWORD`, else `password_file`, else this cluster's file."""
        env = os.environ.get(PASSWORD_ENV)
        if env:
            return env
        path = password_file or self.password_file
        if path is None:
            raise CloudtikError(f"no Redis password: set {PASSWORD_ENV} or give a password file")
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            raise CloudtikError(f"Redis password file {path} is missing") from None
