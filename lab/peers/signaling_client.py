"""The peers' side of the KVS-like signaling: connect, send SDP and candidates, receive.

Every send carries a correlationId, because the service (and the lab's server) only
reports a refused send as a STATUS_RESPONSE when it has one.
"""

from __future__ import annotations

import base64
import itertools
import json
import ssl
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from lab.core.documents import JsonObject

MAX_FRAME_BYTES = 256 * 1024


class SignalingRejected(Exception):
    """The server refused the WebSocket handshake; carries its HTTP status and reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"signaling server refused the connection: HTTP {status}: {reason}")
        self.status = status
        self.reason = reason


def encode_payload(obj: JsonObject) -> str:
    """messagePayload as the SDKs send it: base64 of compact JSON."""
    return base64.b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def decode_payload(text: str) -> JsonObject:
    """The JSON object inside a messagePayload; ValueError if it is not one."""
    decoded = json.loads(base64.b64decode(text, validate=True))
    if not isinstance(decoded, dict):
        raise ValueError("messagePayload is not a JSON object")
    return decoded


@dataclass(frozen=True)
class SignalingMessage:
    """One server message; sender_client_id is None for the master's messages."""

    message_type: str
    sender_client_id: str | None
    payload: JsonObject | None
    status: JsonObject | None


def parse_server_message(text: str | bytes) -> SignalingMessage:
    """A server message as a SignalingMessage, with the payload decoded."""
    document = json.loads(text)
    payload = document.get("messagePayload")
    return SignalingMessage(
        message_type=document.get("messageType", ""),
        sender_client_id=document.get("senderClientId") or None,
        payload=decode_payload(payload) if payload else None,
        status=document.get("statusResponse"),
    )


class SignalingClient:
    """One signaling WebSocket: a master's, or a viewer's (whose recipient is always the master)."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._correlation = itertools.count(1)

    @classmethod
    async def connect(cls, url: str, *, ca_file: str | None, timeout: float) -> SignalingClient:
        """Open the WebSocket, verifying a wss server against `ca_file` (None: system CAs).

        Raises SignalingRejected with the server's reason if the handshake is refused.
        """
        context = ssl.create_default_context(cafile=ca_file)
        tls = context if urlsplit(url).scheme == "wss" else None
        try:
            connection = await connect(url, ssl=tls, open_timeout=timeout, max_size=MAX_FRAME_BYTES)
        except InvalidStatus as exc:
            response = exc.response
            reason = response.body.decode(errors="replace").strip() if response.body else ""
            raise SignalingRejected(response.status_code, reason) from exc
        return cls(connection)

    async def _send(self, action: str, payload: JsonObject, recipient: str | None) -> str:
        correlation_id = str(next(self._correlation))
        message: JsonObject = {
            "action": action,
            "messagePayload": encode_payload(payload),
            "correlationId": correlation_id,
        }
        if recipient is not None:
            message["recipientClientId"] = recipient
        await self.connection.send(json.dumps(message))
        return correlation_id

    async def send_sdp(self, description: dict[str, str], recipient: str | None) -> str:
        """Send an offer or answer (action from its type); returns the correlationId."""
        actions = {"offer": "SDP_OFFER", "answer": "SDP_ANSWER"}
        if description.get("type") not in actions:
            raise ValueError(f"not an offer or answer: {description.get('type')!r}")
        return await self._send(actions[description["type"]], description, recipient)

    async def send_candidate(self, candidate: JsonObject, recipient: str | None) -> str:
        """Send one ICE candidate; returns the correlationId."""
        return await self._send("ICE_CANDIDATE", candidate, recipient)

    async def receive(self) -> SignalingMessage:
        """The next server message, whatever its type (GO_AWAY and STATUS_RESPONSE included)."""
        return parse_server_message(await self.connection.recv())

    async def close(self) -> None:
        await self.connection.close()

    async def __aenter__(self) -> SignalingClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
