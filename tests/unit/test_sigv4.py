"""SigV4 as the emulated service checks it: requests and presigned URLs signed by botocore
with the run's key pass; another secret, another key, a skewed clock, an expired presign,
a changed request or a malformed signature are refused with the service's errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lab.servers.credentials import AccessKey, new_access_key
from lab.servers.sigv4 import (
    SIGNATURE_MISMATCH,
    ReceivedRequest,
    SignatureRefused,
    presign_url,
    sign_request,
    verify,
)

KEY = AccessKey("AKIAEXAMPLE234567ABC", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
REGION = "us-west-2"
NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
ARN = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/ice-lab/1"
CHANNEL_URL = f"wss://203.0.113.20:443/?X-Amz-ChannelARN={ARN}&X-Amz-ClientId=viewer-1"
API_URL = "https://203.0.113.20/createSignalingChannel"
BODY = b'{"ChannelName":"demo"}'


def connect_request(url: str, host: str = "203.0.113.20") -> ReceivedRequest:
    """The WebSocket handshake a client makes for `url` (it sends Host without port 443)."""
    parts = urlsplit(url)
    return ReceivedRequest("GET", f"{parts.path}?{parts.query}", [("Host", host)])


def api_request(headers: dict[str, str], body: bytes = BODY) -> ReceivedRequest:
    return ReceivedRequest(
        "POST", "/createSignalingChannel", [("Host", "203.0.113.20"), *headers.items()], body
    )


def refusal(
    request: ReceivedRequest, key: AccessKey = KEY, now: datetime = NOW
) -> SignatureRefused:
    with pytest.raises(SignatureRefused) as refused:
        verify(request, key, REGION, now)
    assert refused.value.status == 403
    return refused.value


def signed_headers(when: datetime = NOW, key: AccessKey = KEY, **kwargs: str) -> dict[str, str]:
    return sign_request(
        "POST", API_URL, key, kwargs.get("region", REGION), body=BODY,
        headers={"Content-Type": "application/x-amz-json-1.1"}, when=when,
    )  # fmt: skip


# --- what passes -----------------------------------------------------------------------


def test_a_presigned_url_keeps_its_query_and_passes() -> None:
    url = presign_url(CHANNEL_URL, KEY, REGION, when=NOW)
    assert url.startswith("wss://203.0.113.20:443/?")
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-ChannelARN"] == [ARN] and query["X-Amz-ClientId"] == ["viewer-1"]
    assert query["X-Amz-Credential"] == [
        f"{KEY.access_key_id}/20261126/{REGION}/kinesisvideo/aws4_request"
    ]
    assert query["X-Amz-Expires"] == ["299"] and query["X-Amz-SignedHeaders"] == ["host"]
    verify(connect_request(url), KEY, REGION, NOW)


def test_a_request_signed_by_botocore_itself_passes() -> None:
    """What boto3 sends (botocore's own add_auth, reading its own clock) is accepted."""
    request = AWSRequest(method="POST", url=API_URL, data=BODY, headers={"Content-Type": "x"})
    SigV4Auth(
        Credentials(KEY.access_key_id, KEY.secret_access_key), "kinesisvideo", REGION
    ).add_auth(request)
    verify(api_request(dict(request.headers.items())), KEY, REGION)


def test_a_request_signed_within_five_minutes_passes() -> None:
    verify(api_request(signed_headers(NOW - timedelta(minutes=4, seconds=59))), KEY, REGION, NOW)
    verify(api_request(signed_headers(NOW + timedelta(minutes=4, seconds=59))), KEY, REGION, NOW)


def test_a_presign_is_good_until_it_expires() -> None:
    url = presign_url(CHANNEL_URL, KEY, REGION, when=NOW - timedelta(seconds=299))
    verify(connect_request(url), KEY, REGION, NOW)


# --- what is refused, and how ----------------------------------------------------------


def test_another_secret_is_a_signature_mismatch() -> None:
    other = AccessKey(KEY.access_key_id, new_access_key().secret_access_key)
    refused = refusal(api_request(signed_headers(key=other)))
    assert (refused.error_type, refused.message) == (
        "InvalidSignatureException",
        SIGNATURE_MISMATCH,
    )
    assert refused.error_header.startswith("InvalidSignatureException:")
    url = presign_url(CHANNEL_URL, other, REGION, when=NOW)
    assert refusal(connect_request(url)).error_type == "InvalidSignatureException"


def test_a_key_the_run_did_not_issue_is_unrecognized() -> None:
    refused = refusal(api_request(signed_headers(key=new_access_key())))
    assert refused.error_type == "UnrecognizedClientException"
    assert refused.message == "The security token included in the request is invalid."


def test_a_clock_more_than_five_minutes_behind_is_refused() -> None:
    refused = refusal(api_request(signed_headers(NOW - timedelta(minutes=6))))
    assert refused.error_type == "InvalidSignatureException"
    assert refused.message == (
        "Signature expired: 20261126T115400Z is now earlier than 20261126T115500Z "
        "(20261126T120000Z - 5 min.)"
    )


def test_a_clock_more_than_five_minutes_ahead_is_refused() -> None:
    refused = refusal(api_request(signed_headers(NOW + timedelta(minutes=6))))
    assert refused.message.startswith("Signature not yet current: 20261126T120600Z is still later")


def test_an_expired_presign_is_refused() -> None:
    url = presign_url(CHANNEL_URL, KEY, REGION, when=NOW - timedelta(seconds=300))
    refused = refusal(connect_request(url))
    assert refused.error_type == "InvalidSignatureException"
    assert refused.message == (
        "Signature expired: 20261126T115500Z is now earlier than 20261126T115501Z "
        "(20261126T120000Z - 299 sec.)"
    )


def test_a_changed_request_no_longer_matches() -> None:
    refused = refusal(api_request(signed_headers(), body=b'{"ChannelName":"other"}'))
    assert refused.message == SIGNATURE_MISMATCH
    url = presign_url(CHANNEL_URL, KEY, REGION, when=NOW).replace("viewer-1", "viewer-2")
    assert refusal(connect_request(url)).message == SIGNATURE_MISMATCH
    presigned = presign_url(CHANNEL_URL, KEY, REGION, when=NOW)
    assert refusal(connect_request(presigned, host="203.0.113.21")).message == SIGNATURE_MISMATCH


def test_another_region_is_refused() -> None:
    refused = refusal(api_request(signed_headers(region="eu-west-1")))
    assert refused.error_type == "InvalidSignatureException"
    assert "scoped to a valid region, not 'eu-west-1'" in refused.message


def test_another_service_is_refused() -> None:
    request = AWSRequest(method="POST", url=API_URL, data=BODY)
    SigV4Auth(Credentials(KEY.access_key_id, KEY.secret_access_key), "s3", REGION).add_auth(request)
    refused = refusal(api_request(dict(request.headers.items())), now=datetime.now(UTC))
    assert "scoped to correct service: 'kinesisvideo'" in refused.message


def test_no_signature_is_a_missing_token() -> None:
    refused = refusal(api_request({}))
    assert (refused.error_type, refused.message) == (
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )
    assert refusal(connect_request(CHANNEL_URL)).error_type == "MissingAuthenticationTokenException"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda h: {**h, "Authorization": h["Authorization"].split(", Signature=")[0]},
        lambda h: {**h, "Authorization": "AWS4-HMAC-SHA1 " + h["Authorization"].split(" ", 1)[1]},
        lambda h: {k: v for k, v in h.items() if k != "X-Amz-Date"},
        lambda h: {**h, "X-Amz-Date": "yesterday"},
        lambda h: {**h, "Authorization": h["Authorization"].replace("/aws4_request", "")},
    ],
)
def test_a_malformed_signature_is_incomplete(mangle) -> None:  # type: ignore[no-untyped-def]
    assert (
        refusal(api_request(mangle(signed_headers()))).error_type == "IncompleteSignatureException"
    )


def test_a_presign_missing_a_parameter_or_valid_for_over_a_week_is_incomplete() -> None:
    url = presign_url(CHANNEL_URL, KEY, REGION, when=NOW)
    without_date = "&".join(p for p in url.split("&") if not p.startswith("X-Amz-Date="))
    assert refusal(connect_request(without_date)).error_type == "IncompleteSignatureException"
    too_long = presign_url(CHANNEL_URL, KEY, REGION, when=NOW, expires_s=604801)
    assert "X-Amz-Expires" in refusal(connect_request(too_long)).message


def test_host_must_be_signed_and_session_tokens_are_not_issued() -> None:
    headers = signed_headers()
    unsigned_host = headers["Authorization"].replace("content-type;host;x-amz-date", "x-amz-date")
    refused = refusal(api_request({**headers, "Authorization": unsigned_host}))
    assert "'Host' or ':authority' must be a 'SignedHeader'" in refused.message
    token = refusal(api_request({**headers, "X-Amz-Security-Token": "token"}))
    assert token.error_type == "UnrecognizedClientException"


def test_a_signed_body_hash_must_be_the_bodys() -> None:
    headers = sign_request(
        "POST", API_URL, KEY, REGION, body=BODY,
        headers={"X-Amz-Content-SHA256": "0" * 64}, when=NOW,
    )  # fmt: skip
    assert "x-amz-content-sha256" in refusal(api_request(headers)).message
