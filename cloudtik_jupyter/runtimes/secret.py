"""The cluster's runtime secret: made on the client at the first `up`, copied (0600) to the head and by
the head's controller to each worker, never on a command line. Runtimes derive their own keys from it
(Spark's ``spark.authenticate.secret``), so one file serves every runtime and none reuses another's key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from ..errors import CloudtikError
from ..paths import write_private
from ..records.layout import SECRET_FILE as SECRET_FILE


def ensure_secret(path: Path) -> Path:
    """`path` holding a fresh random secret (made once; kept afterwards)."""
    if not path.exists():
        write_private(path, secrets.token_hex(32) + "\n")
    return path


def derive(path: Path, purpose: str) -> str:
    """The key for `purpose` (a runtime's name), from the secret in `path`."""
    try:
        secret = path.read_text().strip()
    except OSError as exc:
        raise CloudtikError(
            f"the cluster's runtime secret is missing ({path}: {exc.strerror}); run `cloudtik up` again"
        ) from None
    if len(secret) < 32:
        raise CloudtikError(f"the cluster's runtime secret in {path} is too short; run `cloudtik up` again")
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()
