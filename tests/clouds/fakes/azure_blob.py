"""The Blob service of the fake's storage accounts, path-style as Azurite serves it:
``<fake url>/<account>/<container>/<blob>``.

What azure-storage-blob calls for a registry: create a container (``?restype=container``), put a block
blob, get one (ranged, as the SDK downloads), delete one, list a container (``?comp=list``, XML, paged
with ``marker``). Containers are the ARM resources ``.../blobServices/default/containers/<name>``, so
both planes see the same ones. Like a workspace's account (no shared keys), only bearer tokens are taken.
Errors are XML with ``x-ms-error-code``, as the service answers.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from . import azure_types as AT
from .azure_arm import Arm, Resource, parse
from .http import Request, Response

CONTAINER_RE = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
DATE = "Mon, 01 Dec 2026 00:00:00 GMT"


def _error(status: int, code: str, message: str) -> Response:
    body = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>'
    return Response(status, body.encode(), {"Content-Type": "application/xml", "x-ms-error-code": code})


@dataclass
class Blob:
    data: bytes
    content_type: str
    etag: str


@dataclass
class BlobApi:
    arm: Arm
    blobs: dict[str, dict[str, Blob]] = field(default_factory=dict)  # container resource id -> name -> blob

    def handle(self, r: Request) -> Response:
        if not r.headers.get("authorization", "").startswith("Bearer "):
            return _error(403, "KeyBasedAuthenticationNotPermitted", "Key based authentication is not permitted on this storage account.")
        if "x-ms-version" not in r.headers:
            return _error(400, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is not specified.")
        account_name, _, rest = r.path.lstrip("/").partition("/")
        account = next((a for a in self.arm.of_type(AT.STORAGE) if a.name == account_name), None)
        if account is None:
            return _error(404, "ResourceNotFound", "The specified resource does not exist.")
        container_name, _, blob = rest.partition("/")
        if not CONTAINER_RE.match(container_name):
            return _error(400, "InvalidResourceName", "The specifed resource name contains invalid characters.")
        container_id = f"{account.id}/blobServices/default/containers/{container_name}"
        container = self.arm.get(container_id)
        if container is None:
            self.blobs.pop(container_id.lower(), None)  # deleted through ARM: its blobs went with it
        if not blob:
            return self._container(r, account, container_id, container)
        if container is None:
            return _error(404, "ContainerNotFound", "The specified container does not exist.")
        return self._blob(r, self.blobs.setdefault(container_id.lower(), {}), blob)

    def _container(self, r: Request, account: Resource, ident: str, found: Resource | None) -> Response:
        if r.query.get("restype") == "container" and r.method == "PUT":
            if found is not None:
                return _error(409, "ContainerAlreadyExists", "The specified container already exists.")
            self.arm.resources[ident.lower()] = Resource(ident, AT.CONTAINER, parse(ident).parent, {"properties": {}})
            return Response(201, b"", {"ETag": '"0x1"', "Last-Modified": DATE})
        if r.query.get("comp") == "list" and r.method == "GET":
            if found is None:
                return _error(404, "ContainerNotFound", "The specified container does not exist.")
            return self._list(r, self.blobs.get(ident.lower(), {}))
        return _error(400, "UnsupportedHttpVerb", f"{r.method} is not supported here by this fake")

    def _list(self, r: Request, blobs: dict[str, Blob]) -> Response:
        prefix, marker = r.query.get("prefix", ""), r.query.get("marker", "")
        limit = int(r.query.get("maxresults") or 5000)
        names = sorted(n for n in blobs if n.startswith(prefix) and n > marker)
        page = names[:limit]
        items = "".join(
            f"<Blob><Name>{escape(n)}</Name><Properties><Last-Modified>{DATE}</Last-Modified>"
            f"<Etag>{blobs[n].etag}</Etag><Content-Length>{len(blobs[n].data)}</Content-Length>"
            f"<Content-Type>{escape(blobs[n].content_type)}</Content-Type><BlobType>BlockBlob</BlobType>"
            "</Properties></Blob>"
            for n in page
        )
        next_marker = page[-1] if len(names) > limit else ""
        body = (
            '<?xml version="1.0" encoding="utf-8"?><EnumerationResults>'
            f"<Prefix>{escape(prefix)}</Prefix><MaxResults>{limit}</MaxResults><Blobs>{items}</Blobs>"
            f"<NextMarker>{escape(next_marker)}</NextMarker></EnumerationResults>"
        )
        return Response(200, body.encode(), {"Content-Type": "application/xml"})

    def _blob(self, r: Request, blobs: dict[str, Blob], name: str) -> Response:
        if r.method == "PUT":
            if r.headers.get("x-ms-blob-type") != "BlockBlob":
                return _error(400, "MissingRequiredHeader", "x-ms-blob-type: this fake takes block blobs")
            etag = f'"0x{hashlib.sha256(r.raw).hexdigest()[:16].upper()}"'
            content_type = r.headers.get("x-ms-blob-content-type", "application/octet-stream")
            blobs[name] = Blob(r.raw, content_type, etag)
            return Response(201, b"", {"ETag": etag, "Last-Modified": DATE, "x-ms-request-server-encrypted": "true"})
        found = blobs.get(name)
        if found is None:
            return _error(404, "BlobNotFound", "The specified blob does not exist.")
        if r.method == "DELETE":
            del blobs[name]
            return Response(202, b"")
        if r.method != "GET":
            return _error(400, "UnsupportedHttpVerb", f"{r.method} is not supported here by this fake")
        size, headers = len(found.data), {
            "Content-Type": found.content_type,
            "ETag": found.etag,
            "Last-Modified": DATE,
            "x-ms-blob-type": "BlockBlob",
            "x-ms-creation-time": DATE,
            "Date": email.utils.formatdate(usegmt=True),
        }
        wanted = r.headers.get("x-ms-range") or r.headers.get("range")
        if not wanted:
            return Response(200, found.data, headers)
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted)
        if match is None or int(match.group(1)) >= max(size, 1):
            return _error(416, "InvalidRange", "The range specified is invalid for the current size of the resource.")
        start = int(match.group(1))
        end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return Response(206, found.data[start : end + 1], headers)
