"""Long-term credentials (RFC 8489 section 9.2) with static users or TURN REST passwords.

The TURN REST password is computed exactly as the lab hands it to peers
(`lab.servers.credentials.rest_password`), so a peer's credentials work against the
mock just as against coturn with `use-auth-secret`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from aioice import stun

from lab.servers.credentials import rest_password

from .config import Auth

NONCE_LIFETIME_S = 600


def long_term_key(username: str, realm: str, password: str) -> bytes:
    """MESSAGE-INTEGRITY key: MD5(username:realm:password)."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).digest()


def rest_expiry(username: str) -> int | None:
    """The expiry epoch of a TURN REST username `<expiry>:<id>`, None if malformed."""
    head = username.split(":", 1)[0]
    return int(head) if head.isdigit() else None


@dataclass(frozen=True)
class Lookup:
    """A user's password, or why there is none (`unknown`, `expired`)."""

    password: str | None
    problem: str | None = None


def password_for(auth: Auth, username: str, now: float) -> Lookup:
    """The password `username` must have used, as the server knows it at `now`."""
    if auth.mode == "static":
        password = auth.users.get(username)
        return Lookup(password, None if password is not None else "unknown")
    if auth.mode == "rest":
        assert auth.secret is not None
        expiry = rest_expiry(username)
        if expiry is None:
            return Lookup(None, "unknown")
        if expiry < now:
            return Lookup(None, "expired")
        return Lookup(rest_password(auth.secret, username))
    return Lookup(None, "unknown")


class Nonces:
    """Stateless nonces: `<expiry hex>` + HMAC of it with a per-process key.

    Stale nonces get 438 so clients retry with a fresh one (RFC 8489 section 9.2.4).
    """

    def __init__(self, lifetime_s: int = NONCE_LIFETIME_S) -> None:
        self._key = secrets.token_bytes(16)
        self._lifetime_s = lifetime_s

    def issue(self, now: float) -> bytes:
        expiry = f"{int(now) + self._lifetime_s:08x}"
        return (expiry + self._mac(expiry)).encode()

    def check(self, nonce: bytes, now: float) -> str:
        """'ok', 'stale' (ours, expired) or 'invalid' (not ours)."""
        text = nonce.decode(errors="replace")
        expiry, mac = text[:8], text[8:]
        if len(text) != 24 or not hmac.compare_digest(mac, self._mac(expiry)):
            return "invalid"
        return "ok" if int(expiry, 16) >= now else "stale"

    def _mac(self, expiry: str) -> str:
        return hmac.new(self._key, expiry.encode(), hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class AuthResult:
    """Outcome of checking a request: a key to sign the answer with, or an error.

    `challenge` errors (401/438) carry REALM and NONCE and are not signed.
    """

    username: str | None = None
    key: bytes | None = None
    error: int | None = None
    reason: str | None = None
    fault: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def authenticate(
    request: stun.Message,
    auth: Auth,
    credentials_fault: str,
    realm: str,
    nonces: Nonces,
    now: float,
) -> AuthResult:
    """Check a TURN request's long-term credentials (RFC 8489 section 9.2.4).

    With auth mode 'none' and no credentials fault every request passes unsigned;
    a 'wrong' or 'expired' credentials fault answers 401 to every authenticated try.
    """
    if auth.mode == "none" and credentials_fault == "valid":
        return AuthResult()
    attrs = request.attributes
    if "MESSAGE-INTEGRITY" not in attrs:
        return AuthResult(error=401)
    if not all(name in attrs for name in ("USERNAME", "REALM", "NONCE")):
        return AuthResult(error=400, reason="Missing USERNAME, REALM or NONCE")
    if nonces.check(attrs["NONCE"], now) != "ok":
        return AuthResult(error=438)
    if credentials_fault != "valid":
        return AuthResult(error=401, fault="credentials")
    username = attrs["USERNAME"]
    lookup = password_for(auth, username, now)
    if lookup.password is None:
        reason = "Expired credentials" if lookup.problem == "expired" else None
        return AuthResult(username=username, error=401, reason=reason)
    key = long_term_key(username, realm, lookup.password)
    if not request.check_message_integrity(key):
        return AuthResult(username=username, error=401)
    return AuthResult(username=username, key=key)
