"""The signaling channel's URL for a peer, and its SigV4 presign: what a KVS client builds
before it opens the WebSocket (no WebSocket library here: the lab process needs only the
URL)."""

from __future__ import annotations

from urllib.parse import urlencode

from lab.servers.credentials import AccessKey
from lab.servers.sigv4 import presign_url  # botocore only when it signs (the zygote has it)


def channel_url(endpoint: str, channel_arn: str, client_id: str | None) -> str:
    """The WebSocket URL: the master's carries only the channel ARN; a viewer adds its id."""
    query = {"X-Amz-ChannelARN": channel_arn}
    if client_id is not None:
        query["X-Amz-ClientId"] = client_id
    return f"{endpoint.rstrip('/')}/?{urlencode(query)}"


def presigned(url: str, service: dict[str, str] | None) -> str:
    """`url` presigned with the run's access key (SigV4 query parameters, valid 299 s, as
    the KVS SDKs sign it), so any WebSocket client can connect with it; as is where the
    service takes no signature. The peer signs it when it starts, as a client would."""
    if service is None:
        return url
    key = AccessKey(service["access_key_id"], service["secret_access_key"])
    return presign_url(url, key, service["region"])
