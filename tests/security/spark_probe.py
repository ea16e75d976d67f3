"""Speak Spark's RPC wire format (network-common) just enough to ask a daemon something without being
authenticated: one RpcRequest frame, and its answer."""

from __future__ import annotations

import socket
import struct

RPC_REQUEST, RPC_RESPONSE, RPC_FAILURE = 3, 4, 5


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed by the daemon")
        data += chunk
    return data


def unauthenticated_rpc(
    host: str, port: int, body: bytes = b"\x00not-a-sasl-message", timeout: float = 10
) -> str:
    """Send one RpcRequest; returns the daemon's RpcFailure text (raises if it answers anything else)."""
    request_id = 7
    header = struct.pack(">BqI", RPC_REQUEST, request_id, len(body))
    frame = struct.pack(">q", 8 + len(header) + len(body)) + header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(frame)
        (length,) = struct.unpack(">q", _read_exactly(sock, 8))
        payload = _read_exactly(sock, length - 8)
    kind, answered = struct.unpack(">Bq", payload[:9])
    assert answered == request_id, f"answer to request {answered}, not {request_id}"
    if kind != RPC_FAILURE:
        raise AssertionError(f"the daemon answered message type {kind}, not a failure")
    (size,) = struct.unpack(">i", payload[9:13])
    return payload[13 : 13 + size].decode(errors="replace")
