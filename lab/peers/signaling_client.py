"""The peers' side of the KVS-like signaling: connect, send SDP and candidates, receive."""

from __future__ import annotations

import base64
import itertools
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect

_correlation = itertools.count(1)


def encode_payload(obj: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def decode_payload(text: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(text))


def channel_url(endpoint: str, channel_arn: str, client_id: str | None) -> str:
    """The WebSocket URL: the master's carries only the channel ARN; a viewer adds its id."""
    query = {"X-Amz-ChannelARN": channel_arn}
    if client_id is not None:
        query["X-Amz-ClientId"] = client_id
    return f"{endpoint}/?{urlencode(query)}"


@dataclass(frozen=True)
class SignalingMessage:
    message_type: str
    sender_client_id: str | None
    payload: dict[str, Any] | None
    status: dict[str, Any] | None


class SignalingClient:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    @classmethod
    async def connect(cls, url: str, *, ca_file: str | None, timeout: float) -> SignalingClient:
        context = ssl.create_default_context(cafile=ca_file)
        connection = await connect(url, ssl=context, open_timeout=timeout)
        return cls(connection)

    async def _send(self, action: str, payload: dict[str, Any], recipient: str | None) -> None:
        message: dict[str, Any] = {
            "action": action,
            "messagePayload": encode_payload(payload),
            "correlationId": str(next(_correlation)),
        }
        if recipient is not None:
            message["recipientClientId"] = recipient
        await self.connection.send(json.dumps(message))

    async def send_sdp(self, description: dict[str, str], recipient: str | None) -> None:
        action = "SDP_OFFER" if description["type"] == "offer" else "SDP_ANSWER"
        await self._send(action, description, recipient)

    async def send_candidate(self, candidate: dict[str, Any], recipient: str | None) -> None:
        await self._send("ICE_CANDIDATE", candidate, recipient)

    async def receive(self) -> SignalingMessage:
        document = json.loads(await self.connection.recv())
        payload = document.get("messagePayload")
        return SignalingMessage(
            message_type=document.get("messageType", ""),
            sender_client_id=document.get("senderClientId"),
            payload=decode_payload(payload) if payload else None,
            status=document.get("statusResponse"),
        )

    async def close(self) -> None:
        await self.connection.close()
