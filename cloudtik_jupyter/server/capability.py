"""Signed, expiring service addresses: how a sandboxed service page is authorised without Jupyter's cookies.

A proxied page is served with ``Content-Security-Policy: sandbox`` (no ``allow-same-origin``): it runs in an
opaque origin, so it can neither read Jupyter's cookies nor call Jupyter's API as the user. The flip side is
that the browser does not send Jupyter's login cookie with the page's own requests (styles, scripts, XHR,
WebSockets). So the page lives under ``/cloudtik/svc/CLUSTER/NODE/PORT/EXPIRY.SIGNATURE/``: the entry URL
(``/cloudtik/proxy/...``, Jupyter-authenticated) redirects there, and everything below it is authorised by
the HMAC in the path (a key per server process), for one service only, until it expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

LIFETIME_SECONDS = 12 * 3600.0
SIGNATURE_CHARS = 24


@dataclass(frozen=True)
class ServiceRef:
    cluster: str
    node: str  # links.HEAD or a worker's sequence id
    port: int

    def prefix(self) -> str:
        """The stable part of the service's address (service cookies are scoped to it)."""
        return f"cloudtik/svc/{self.cluster}/{self.node}/{self.port}/"


class Invalid(Exception):
    """A forged, altered or foreign signature."""


class Expired(Exception):
    """A genuine address past its lifetime: the entry URL issues a fresh one."""


class Signer:
    def __init__(
        self,
        key: bytes | None = None,
        *,
        lifetime: float = LIFETIME_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key or secrets.token_bytes(32)
        self._lifetime = lifetime
        self._clock = clock

    def _signature(self, ref: ServiceRef, expiry: int) -> str:
        message = f"{ref.cluster}/{ref.node}/{ref.port}/{expiry}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()[:SIGNATURE_CHARS]

    def issue(self, ref: ServiceRef) -> str:
        """``PREFIX/EXPIRY.SIGNATURE/``: the service's address under the server's base URL."""
        expiry = int(self._clock() + self._lifetime)
        return f"{ref.prefix()}{expiry}.{self._signature(ref, expiry)}/"

    def check(self, ref: ServiceRef, grant: str) -> None:
        """Raises `Invalid` or `Expired` unless `grant` (``EXPIRY.SIGNATURE``) was issued for `ref`."""
        expiry_text, _, signature = grant.partition(".")
        if not expiry_text.isdigit() or len(expiry_text) > 12:
            raise Invalid("malformed")
        expiry = int(expiry_text)
        if not hmac.compare_digest(signature, self._signature(ref, expiry)):
            raise Invalid("bad signature")
        if expiry < self._clock():
            raise Expired()
