"""The hypervisor's wire protocol: one JSON line in, one JSON line out, per Unix-socket connection.

Request:  ``{"token": ..., "op": "create" | "terminate" | "ping" | "shutdown", "args": {...}}``
Response: ``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": "message"}``
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_LINE = 1 << 20

OP_CREATE = "create"
OP_TERMINATE = "terminate"
OP_PING = "ping"
OP_SHUTDOWN = "shutdown"
OPS = (OP_CREATE, OP_TERMINATE, OP_PING, OP_SHUTDOWN)


class ProtocolError(ValueError):
    """A malformed request or response."""


def _str_map(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ProtocolError(f"{what} must be a mapping of strings")
    return dict(value)


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"{what} must be a string")
    return value


@dataclass(frozen=True)
class CreateRequest:
    cluster: str
    workspace: str
    tags: dict[str, str]
    ssh_user: str
    ssh_public_key: str
    count: int
    address_block: str

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> CreateRequest:
        count = args.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1000:
            raise ProtocolError("count must be an integer in 1..1000")
        return cls(
            cluster=_str(args.get("cluster"), "cluster"),
            workspace=_str(args.get("workspace"), "workspace"),
            tags=_str_map(args.get("tags"), "tags"),
            ssh_user=_str(args.get("ssh_user"), "ssh_user"),
            ssh_public_key=_str(args.get("ssh_public_key"), "ssh_public_key"),
            count=count,
            address_block=_str(args.get("address_block"), "address_block"),
        )


@dataclass(frozen=True)
class TerminateRequest:
    ids: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> TerminateRequest:
        ids = args.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ProtocolError("ids must be a list of strings")
        return cls(ids=list(ids))


@dataclass(frozen=True)
class HypervisorInfo:
    pid: int
    create_time: float
    live_nodes: int

    @classmethod
    def from_result(cls, result: dict[str, Any]) -> HypervisorInfo:
        return cls(int(result["pid"]), float(result["create_time"]), int(result["live_nodes"]))


@dataclass(frozen=True)
class Request:
    op: str
    token: str
    args: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        return json.dumps({"op": self.op, "token": self.token, "args": self.args}).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> Request:
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise ProtocolError(f"request is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ProtocolError("request must be a JSON object")
        op = _str(data.get("op"), "op")
        if op not in OPS:
            raise ProtocolError(f"unknown op {op!r}")
        args = data.get("args") or {}
        if not isinstance(args, dict):
            raise ProtocolError("args must be an object")
        return cls(op=op, token=_str(data.get("token"), "token"), args=args)


def args_of(obj: CreateRequest | TerminateRequest) -> dict[str, Any]:
    return asdict(obj)


def encode_response(result: dict[str, Any] | None = None, error: str | None = None) -> bytes:
    body: dict[str, Any] = (
        {"ok": False, "error": error} if error is not None else {"ok": True, "result": result or {}}
    )
    return json.dumps(body).encode() + b"\n"


def decode_response(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """(result, None) on success, (None, error message) on a refused request."""
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"response is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("response must be a JSON object")
    if data.get("ok"):
        result = data.get("result") or {}
        if not isinstance(result, dict):
            raise ProtocolError("result must be an object")
        return result, None
    return None, str(data.get("error", "unknown error"))
