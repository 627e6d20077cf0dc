"""CORS on the emulated service's HTTPS APIs, as AWS's front end answers browsers.

A browser page (the KVS JavaScript SDK's sample, the kvs-js agent) calls the control
plane and GetIceServerConfig from another origin, with SigV4 headers, so the browser
first sends an unsigned OPTIONS preflight. The service answers it before any SigV4 check,
allowing any origin and a fixed list of request headers (the SigV4 ones and the AWS SDK
v3's retry headers, amz-sdk-invocation-id and amz-sdk-request, which the service did not
allow before 2021: aws-sdk-js-v3 issue 1962), and lets the page read the headers an SDK
needs from every answer (x-amzn-ErrorType for errors, Date for clock-skew correction).
A header outside the list fails the preflight, as it would against the service.
"""

from __future__ import annotations

ALLOWED_HEADERS = (
    "Content-Type",
    "X-Amz-Date",
    "Authorization",
    "X-Api-Key",
    "X-Amz-Security-Token",
    "X-Amz-Content-Sha256",
    "X-Amz-User-Agent",
    "amz-sdk-invocation-id",
    "amz-sdk-request",
)
EXPOSED_HEADERS = ("x-amzn-RequestId", "x-amzn-ErrorType", "x-amzn-ErrorMessage", "Date")
ALLOWED_METHODS = ("POST",)  # every operation of both APIs is a POST
MAX_AGE_S = 172800


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    values = [v for k, v in headers if k.lower() == name]
    return values[-1] if values else None


def is_preflight(method: str, headers: list[tuple[str, str]]) -> bool:
    """An OPTIONS request a browser sends before a cross-origin call (it carries no SigV4)."""
    return method == "OPTIONS" and _header(headers, "access-control-request-method") is not None


def preflight_headers() -> list[tuple[str, str]]:
    """A preflight's answer (200, no body): what the page may send; the browser checks it."""
    return [
        ("Access-Control-Allow-Methods", ",".join(ALLOWED_METHODS)),
        ("Access-Control-Allow-Headers", ",".join(ALLOWED_HEADERS)),
        ("Access-Control-Max-Age", str(MAX_AGE_S)),
    ]


def response_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """What every answer to a page (a request with an Origin) adds so the page may read it;
    nothing for an SDK outside a browser."""
    if _header(headers, "origin") is None:
        return []
    return [
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Expose-Headers", ",".join(EXPOSED_HEADERS)),
    ]
