"""The agent's control channel: newline-delimited JSON over a Unix socket (``<run_dir>/agent.sock``).

Request:  ``{"op": "status" | "start" | "stop" | "restart" | "add" | "remove" | "shutdown",
             "name": "<service>", "spec": {<ServiceSpec>}}``   (name for start/stop/restart/remove,
             spec for add: add-or-replace, then start)
Reply:    ``{"ok": true, "services": [<ProcessRecord as a list>...]}`` or ``{"ok": false, "error": "..."}``

One request per line; a connection may carry many. The socket is 0600 inside the 0700 run dir, so
only the node's user can drive it. The client takes any (reader, writer) pair, so the controller
can reach a worker's agent over its existing SSH connection (asyncssh's
``conn.open_unix_connection(path)``) without starting a process on the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import CloudtikError
from ..state.records import ProcessRecord
from .config import ServiceSpec

OPS = ("status", "start", "stop", "restart", "add", "remove", "shutdown")


@dataclass(frozen=True)
class ControlRequest:
    op: str
    name: str | None = None
    spec: ServiceSpec | None = None

    def to_line(self) -> bytes:
        obj: dict[str, Any] = {"op": self.op}
        if self.name is not None:
            obj["name"] = self.name
        if self.spec is not None:
            obj["spec"] = self.spec.model_dump(mode="json")
        return json.dumps(obj).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> ControlRequest:
        obj = json.loads(line)
        op = obj.get("op")
        if op not in OPS:
            raise ValueError(f"unknown op {op!r} (known: {', '.join(OPS)})")
        spec = ServiceSpec.model_validate(obj["spec"]) if obj.get("spec") is not None else None
        return cls(op, obj.get("name"), spec)


@dataclass(frozen=True)
class ControlReply:
    ok: bool
    error: str = ""
    services: tuple[ProcessRecord, ...] = field(default_factory=tuple)

    def to_line(self) -> bytes:
        obj: dict[str, Any] = {"ok": self.ok, "services": [s.to_obj() for s in self.services]}
        if self.error:
            obj["error"] = self.error
        return json.dumps(obj).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> ControlReply:
        obj = json.loads(line)
        services = tuple(ProcessRecord.from_obj(s) for s in obj.get("services", []))
        return cls(bool(obj["ok"]), obj.get("error", ""), services)


Handler = Callable[[ControlRequest], Awaitable[ControlReply]]


async def serve(path: Path, handler: Handler) -> asyncio.AbstractServer:
    """Listen on `path` (replacing a stale socket) and answer requests with `handler`."""

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    reply = await handler(ControlRequest.from_line(line))
                except (ValueError, KeyError) as e:
                    reply = ControlReply(False, f"bad request: {e}")
                except CloudtikError as e:
                    reply = ControlReply(False, str(e))
                writer.write(reply.to_line())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    path.unlink(missing_ok=True)
    server = await asyncio.start_unix_server(on_client, path=str(path))
    os.chmod(path, 0o600)
    return server


class LineReader(Protocol):
    async def readline(self) -> bytes: ...


class LineWriter(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...


Connector = Callable[[], Awaitable[tuple[LineReader, LineWriter]]]


class AgentClient:
    """Talks to one agent. `AgentClient.unix(path)` locally; any `Connector` (e.g. over SSH) remotely."""

    def __init__(self, connect: Connector, *, timeout: float = 30.0) -> None:
        self._connect = connect
        self._timeout = timeout

    @classmethod
    def unix(cls, path: Path, *, timeout: float = 30.0) -> AgentClient:
        async def connect() -> tuple[LineReader, LineWriter]:
            return await asyncio.open_unix_connection(str(path))

        return cls(connect, timeout=timeout)

    async def request(self, request: ControlRequest) -> ControlReply:
        reader, writer = await self._connect()
        try:
            writer.write(request.to_line())
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), self._timeout)
        finally:
            writer.close()
        if not line:
            raise CloudtikError(f"node agent closed the control connection during {request.op!r}")
        return ControlReply.from_line(line)

    async def _call(self, request: ControlRequest) -> list[ProcessRecord]:
        reply = await self.request(request)
        if not reply.ok:
            raise CloudtikError(f"node agent refused {request.op!r}: {reply.error}")
        return list(reply.services)

    async def status(self) -> list[ProcessRecord]:
        return await self._call(ControlRequest("status"))

    async def start(self, name: str) -> list[ProcessRecord]:
        return await self._call(ControlRequest("start", name))

    async def stop(self, name: str) -> list[ProcessRecord]:
        return await self._call(ControlRequest("stop", name))

    async def restart(self, name: str) -> list[ProcessRecord]:
        return await self._call(ControlRequest("restart", name))

    async def add(self, spec: ServiceSpec) -> list[ProcessRecord]:
        """Add (or replace) a service and start it; returns once it is healthy or has failed."""
        return await self._call(ControlRequest("add", spec=spec))

    async def remove(self, name: str) -> list[ProcessRecord]:
        return await self._call(ControlRequest("remove", name))

    async def shutdown(self) -> None:
        """Stop every service, then the agent exits (as on SIGTERM)."""
        await self._call(ControlRequest("shutdown"))
