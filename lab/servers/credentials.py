"""Time-limited TURN credentials in the TURN REST style the service hands out.

The username is `<expiry-epoch>:<id>` and the password is
base64(HMAC-SHA1(shared secret, username)); coturn checks them with
`use-auth-secret`, and so does the lab's mock server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class TurnCredentials:
    username: str
    password: str
    expires_at: int


def new_secret() -> str:
    """A shared secret for one run's TURN server."""
    return secrets.token_hex(16)


def rest_password(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def rest_credentials(
    secret: str, user_id: str, ttl_s: int = 300, now: float | None = None
) -> TurnCredentials:
    """Credentials valid for `ttl_s` seconds (the service's Ttl is 300 s)."""
    expires_at = int(now if now is not None else time.time()) + ttl_s
    username = f"{expires_at}:{user_id}"
    return TurnCredentials(username, rest_password(secret, username), expires_at)
