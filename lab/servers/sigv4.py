"""SigV4 for the emulated service: check what a client signed, and presign WebSocket URLs.

Both directions use botocore's signer (`SigV4Auth`, `SigV4QueryAuth`), the code boto3
signs with. To check a request, the server rebuilds what the client signed from what
arrived (method, path, query, the headers named in SignedHeaders, the body), lets botocore
compute the signature with the run's access key, and compares the two in constant time.
So a request passes exactly when an SDK holding the run's key could have made it.

A refusal is HTTP 403 with the errors AWS's front end gives (they are in no service
model; these are the ones SDK users quote): `InvalidSignatureException` for a signature
made with another secret, a clock more than 5 minutes off, or a presigned URL past its
X-Amz-Expires; `UnrecognizedClientException` for an access key the run did not issue (or
a session token, which the run never issues); `MissingAuthenticationTokenException` for
no signature at all; `IncompleteSignatureException` for a malformed one.

botocore is imported on first use: it takes about 0.2 s, which the lab overlaps with the
servers' start (`preload`).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from lab.servers.credentials import AccessKey

if TYPE_CHECKING:
    from botocore.auth import SigV4Auth  # lazy: botocore, see the module docstring
    from botocore.awsrequest import AWSRequest  # lazy: botocore, see the module docstring

SERVICE = "kinesisvideo"  # the signing name of both the control plane and signaling
ALGORITHM = "AWS4-HMAC-SHA256"
TIMESTAMP = "%Y%m%dT%H%M%SZ"  # X-Amz-Date
MAX_SKEW = timedelta(minutes=5)
PRESIGN_EXPIRES_S = 299  # what the KVS SDKs put in a signaling URL's X-Amz-Expires
MAX_PRESIGN_EXPIRES_S = 7 * 24 * 3600  # SigV4's limit
# x-amzn-ErrorType of the front end's errors; botocore keeps what precedes the colon.
FRONT_END_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.coral.service/"
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."
QUERY_PARAMETERS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)


class SignatureRefused(Exception):
    """A request the service refuses for its signature: HTTP 403, an error type, a message."""

    status = 403

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message

    @property
    def error_header(self) -> str:
        """The x-amzn-ErrorType header's value."""
        return f"{self.error_type}:{FRONT_END_NAMESPACE}"


def _invalid(message: str) -> SignatureRefused:
    return SignatureRefused("InvalidSignatureException", message)


def _incomplete(message: str) -> SignatureRefused:
    return SignatureRefused("IncompleteSignatureException", message)


@dataclass(frozen=True)
class ReceivedRequest:
    """An HTTP request as it arrived: the raw request target and header lines, the body."""

    method: str
    target: str  # path and query, not decoded
    headers: Sequence[tuple[str, str]]
    body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        """A header's value (repeated headers joined with commas), None if absent."""
        values = [v.strip() for k, v in self.headers if k.lower() == name.lower()]
        return ",".join(values) if values else None


@dataclass(frozen=True)
class _Claim:
    """What a request says about its own signature."""

    credential: str  # key id/date/region/service/aws4_request
    signed_headers: tuple[str, ...]
    signature: str
    timestamp: str
    expires_s: int | None  # presigned URLs only
    security_token: str | None


def verify(
    request: ReceivedRequest, key: AccessKey, region: str, now: datetime | None = None
) -> None:
    """Return if `request` is signed with `key` for `region` and is current; else raise
    SignatureRefused. A signature in the query (a presigned URL) or in Authorization."""
    params = parse_qs(request.query, keep_blank_values=True)
    if any(name in params for name in QUERY_PARAMETERS):
        claim = _query_claim(params)
    elif request.header("authorization") is not None:
        claim = _header_claim(request)
    else:
        raise SignatureRefused(
            "MissingAuthenticationTokenException", "Missing Authentication Token"
        )
    _check(request, claim, key, region, now or datetime.now(UTC))


def _header_claim(request: ReceivedRequest) -> _Claim:
    authorization = request.header("authorization") or ""
    algorithm, _, rest = authorization.partition(" ")
    if algorithm != ALGORITHM:
        raise _incomplete(f"Unsupported authorization algorithm '{algorithm}'; use {ALGORITHM}.")
    fields = {}
    for part in rest.split(","):
        name, equals, value = part.strip().partition("=")
        if equals:
            fields[name] = value
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if n not in fields]
    if missing:
        raise _incomplete(
            " ".join(f"Authorization header requires '{n}' parameter." for n in missing)
        )
    timestamp = request.header("x-amz-date")
    if timestamp is None:
        raise _incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    return _Claim(
        credential=fields["Credential"],
        signed_headers=tuple(fields["SignedHeaders"].split(";")),
        signature=fields["Signature"],
        timestamp=timestamp,
        expires_s=None,
        security_token=request.header("x-amz-security-token"),
    )


def _query_claim(params: dict[str, list[str]]) -> _Claim:
    missing = [n for n in QUERY_PARAMETERS if len(params.get(n, [])) != 1]
    if missing:
        raise _incomplete(
            "A presigned URL needs each of "
            + ", ".join(QUERY_PARAMETERS)
            + " exactly once; missing or repeated: "
            + ", ".join(missing)
            + "."
        )
    value = {name: params[name][0] for name in QUERY_PARAMETERS}
    if value["X-Amz-Algorithm"] != ALGORITHM:
        raise _incomplete(f"X-Amz-Algorithm must be {ALGORITHM}.")
    expires = value["X-Amz-Expires"]
    if not expires.isdigit() or not 1 <= int(expires) <= MAX_PRESIGN_EXPIRES_S:
        raise _incomplete(
            f"X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGN_EXPIRES_S}."
        )
    token = params.get("X-Amz-Security-Token")
    return _Claim(
        credential=value["X-Amz-Credential"],
        signed_headers=tuple(value["X-Amz-SignedHeaders"].split(";")),
        signature=value["X-Amz-Signature"],
        timestamp=value["X-Amz-Date"],
        expires_s=int(expires),
        security_token=token[0] if token else None,
    )


def _check(
    request: ReceivedRequest, claim: _Claim, key: AccessKey, region: str, now: datetime
) -> None:
    """The service's checks in its order: scope and key, time, then the signature itself."""
    scope = claim.credential.split("/")
    if len(scope) != 5:
        raise _incomplete(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{claim.credential}'"
        )
    key_id, date, scope_region, service, terminator = scope
    if key_id != key.access_key_id or claim.security_token is not None:
        raise SignatureRefused("UnrecognizedClientException", INVALID_TOKEN)
    signed_at = _parse_timestamp(claim.timestamp)
    if date != claim.timestamp[:8]:
        raise _invalid(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{claim.timestamp[:8]}', from '{claim.timestamp}'."
        )
    if scope_region != region:
        raise _invalid(f"Credential should be scoped to a valid region, not '{scope_region}'. ")
    if service != SERVICE:
        raise _invalid(f"Credential should be scoped to correct service: '{SERVICE}'. ")
    if terminator != "aws4_request":
        raise _invalid(
            f"Credential should be scoped with a valid terminator: 'aws4_request', "
            f"not '{terminator}'. "
        )
    if "host" not in claim.signed_headers:
        raise _invalid("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    _check_time(claim, signed_at, now)
    _check_body_hash(request, claim)
    expected = _expected_signature(request, claim, key, region)
    if not hmac.compare_digest(expected.encode(), claim.signature.encode()):
        raise _invalid(SIGNATURE_MISMATCH)


def _parse_timestamp(timestamp: str) -> datetime:
    try:
        return datetime.strptime(timestamp, TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        raise _incomplete(
            f"Date must be in ISO-8601 'basic format'. Got '{timestamp}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIMESTAMP)


def _check_time(claim: _Claim, signed_at: datetime, now: datetime) -> None:
    """A request must be signed within 5 minutes of the server's clock; a presigned URL is
    good from its X-Amz-Date (give or take the same 5 minutes) for X-Amz-Expires seconds."""
    if signed_at > now + MAX_SKEW:
        raise _invalid(
            f"Signature not yet current: {claim.timestamp} is still later than "
            f"{_stamp(now + MAX_SKEW)} ({_stamp(now)} + 5 min.)"
        )
    if claim.expires_s is None:
        if signed_at < now - MAX_SKEW:
            raise _invalid(
                f"Signature expired: {claim.timestamp} is now earlier than "
                f"{_stamp(now - MAX_SKEW)} ({_stamp(now)} - 5 min.)"
            )
    elif signed_at + timedelta(seconds=claim.expires_s) < now:
        raise _invalid(
            f"Signature expired: {claim.timestamp} is now earlier than "
            f"{_stamp(now - timedelta(seconds=claim.expires_s))} "
            f"({_stamp(now)} - {claim.expires_s} sec.)"
        )


def _check_body_hash(request: ReceivedRequest, claim: _Claim) -> None:
    """botocore signs a client's X-Amz-Content-SHA256 as given: it must be the body's hash."""
    declared = request.header("x-amz-content-sha256")
    signed = "x-amz-content-sha256" in claim.signed_headers and declared is not None
    if signed and declared != hashlib.sha256(request.body).hexdigest():
        raise _invalid(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        )


def _expected_signature(
    request: ReceivedRequest, claim: _Claim, key: AccessKey, region: str
) -> str:
    """The signature botocore computes over the request as the client must have signed it."""
    from botocore.awsrequest import AWSRequest  # lazy: botocore, see the module docstring

    query = request.query
    if claim.expires_s is not None:  # a presigned URL is signed without its signature
        query = "&".join(
            pair for pair in query.split("&") if pair.partition("=")[0] != "X-Amz-Signature"
        )
    # The URL's host is never used: Host is always a signed header, taken from the request.
    url = f"https://signed.invalid{request.path}" + (f"?{query}" if query else "")
    headers = {name: request.header(name) or "" for name in claim.signed_headers}
    signed = AWSRequest(method=request.method, url=url, headers=headers, data=request.body)
    signed.context["timestamp"] = claim.timestamp
    signer = _signer(key, region)
    canonical = signer.canonical_request(signed)
    return signer.signature(signer.string_to_sign(signed, canonical), signed)


def _signer(key: AccessKey, region: str, presign_expires_s: int | None = None) -> SigV4Auth:
    from botocore.auth import SigV4Auth, SigV4QueryAuth  # lazy: botocore, see the module docstring
    from botocore.credentials import Credentials  # lazy: botocore, see the module docstring

    credentials = Credentials(key.access_key_id, key.secret_access_key)
    if presign_expires_s is None:
        return SigV4Auth(credentials, SERVICE, region)
    return SigV4QueryAuth(credentials, SERVICE, region, expires=presign_expires_s)


def _sign_at(signer: SigV4Auth, request: AWSRequest, when: datetime) -> None:
    """botocore's `add_auth`, step for step, with the signing time given instead of read from
    the clock, so a URL or request can be signed in the past (an expired presign, a skewed
    client): the lab's tests and hands-on examples need that, SDKs never do."""
    request.context["timestamp"] = _stamp(when)
    signer._modify_request_before_signing(request)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    signer._inject_signature_to_request(request, signature)


def presign_url(
    url: str,
    key: AccessKey,
    region: str,
    *,
    expires_s: int = PRESIGN_EXPIRES_S,
    when: datetime | None = None,
) -> str:
    """`url` (wss://, or https://) with SigV4 query authentication, as the KVS SDKs connect
    to signaling; `when` signs at another time than now."""
    from botocore.awsrequest import AWSRequest  # lazy: botocore, see the module docstring

    scheme, _, rest = url.partition("://")
    # botocore leaves the port in the signed Host of a scheme it does not know
    # ("wss://h:443" signs "h:443"), but a WebSocket client sends "Host: h" for the
    # default port: sign the URL as its https twin, as the SDKs do.
    twin = {"wss": "https", "ws": "http"}.get(scheme, scheme)
    request = AWSRequest(method="GET", url=f"{twin}://{rest}")
    _sign_at(_signer(key, region, expires_s), request, when or datetime.now(UTC))
    return f"{scheme}://{request.url.partition('://')[2]}"


def sign_request(
    method: str,
    url: str,
    key: AccessKey,
    region: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    when: datetime | None = None,
) -> dict[str, str]:
    """The headers of a request signed like boto3's (Authorization, X-Amz-Date and the
    given ones), for clients that are not boto3; `when` signs at another time than now."""
    from botocore.awsrequest import AWSRequest  # lazy: botocore, see the module docstring

    request = AWSRequest(method=method, url=url, headers=headers or {}, data=body)
    _sign_at(_signer(key, region), request, when or datetime.now(UTC))
    return dict(request.headers.items())


#: botocore's signer: about 0.3 s of CPU to import.
SIGNER_MODULES = ("botocore.auth", "botocore.awsrequest", "botocore.credentials")


def preload() -> None:
    """Import botocore's signer now, e.g. while the servers start."""
    for name in SIGNER_MODULES:
        importlib.import_module(name)
