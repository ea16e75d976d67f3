"""The one edge to AWS: a factory for boto3 clients, and the mapping of AWS errors to ours.

Tests point the same code at a moto server by passing `endpoint_url`; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ...errors import ProviderError
from ..common import cancel


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never print the secret
        return f"AwsCredentials(access_key_id={self.access_key_id!r}, secret_access_key=***)"


@dataclass(frozen=True)
class AwsClients:
    """The boto3 clients a provider uses, made once. Typed `Any`: boto3 clients are generated at run time."""

    region: str
    ec2: Any
    iam: Any
    s3: Any
    sts: Any


def make_clients(
    region: str, endpoint_url: str | None = None, credentials: AwsCredentials | None = None
) -> AwsClients:
    """boto3 clients for `region`; no `credentials` means boto3's usual chain (env, profile, role)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=credentials.access_key_id if credentials else None,
        aws_secret_access_key=credentials.secret_access_key if credentials else None,
        aws_session_token=credentials.session_token if credentials else None,
        region_name=region,
    )
    # Standard retries cover throttling; our own steps are idempotent, so a re-run converges anyway.
    config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=60)

    def client(service: str) -> Any:
        made = session.client(service, endpoint_url=endpoint_url, config=config)
        made.meta.events.register("before-call", _check_cancel)  # a cancel stops before the next call
        return made

    return AwsClients(region=region, ec2=client("ec2"), iam=client("iam"), s3=client("s3"), sts=client("sts"))


def _check_cancel(**kwargs: Any) -> None:
    cancel.check()


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def is_client_error(exc: BaseException) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError)


_HINTS = {
    "AuthFailure": " (check the credentials: they are not valid for this account or region)",
    "UnauthorizedOperation": " (the credentials lack this permission: see the README's workspace policy)",
    "AccessDenied": " (the credentials lack this permission: see the README's workspace policy)",
}


@contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """Turn botocore failures into one `ProviderError` line that says what we were doing."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        err = exc.response.get("Error", {})
        op = getattr(exc, "operation_name", "")
        code = str(err.get("Code", ""))
        hint = _HINTS.get(code, "")
        raise ProviderError(f"aws: {what}: {op} failed: {code}: {err.get('Message', '')}{hint}") from exc
    except BotoCoreError as exc:
        raise ProviderError(f"aws: {what}: {exc}") from exc
