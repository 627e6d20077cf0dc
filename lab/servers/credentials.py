"""The run's secrets: TURN REST credentials, and the access key the emulated service checks.

TURN: the username is `<expiry-epoch>:<id>` and the password is
base64(HMAC-SHA1(shared secret, username)); coturn checks them with
`use-auth-secret`, and so does the lab's mock server. GetIceServerConfig hands them out
with the id the service uses, base64 of `v1:<channel ARN>`.

Access key: what SDKs sign their requests with (SigV4); random per run, shaped like an
AWS key so that tools which check the shape accept it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
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


def ice_server_credentials(
    secret: str, channel_arn: str, ttl_s: int = 300, now: float | None = None
) -> TurnCredentials:
    """GetIceServerConfig's credentials: the username's id is base64 of `v1:<channel ARN>`."""
    user_id = base64.b64encode(f"v1:{channel_arn}".encode()).decode()
    return rest_credentials(secret, user_id, ttl_s=ttl_s, now=now)


@dataclass(frozen=True)
class AccessKey:
    """An access key id and its secret, as an AWS SDK takes them."""

    access_key_id: str
    secret_access_key: str


# AWS key ids are AKIA + 16 characters of base32's alphabet; secrets 40 of base64's.
_KEY_ID_ALPHABET = string.ascii_uppercase + "234567"


def new_access_key() -> AccessKey:
    """A fresh access key for one run's emulated service."""
    key_id = "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))
    return AccessKey(key_id, base64.b64encode(secrets.token_bytes(30)).decode())
