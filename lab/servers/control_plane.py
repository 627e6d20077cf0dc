"""The service's HTTP API calls, answered as the service answers them: the control plane's
signaling-channel calls and, on the signaling HTTPS endpoint, GetIceServerConfig.

`ServiceApi.answer` takes a request that passed SigV4 and returns the status, JSON body
and x-amzn-ErrorType the service would send. Inputs are validated against botocore's
models (`service_model.py`); channels live in a `ChannelRegistry` shared with the
WebSocket side, so a channel created here can be connected to at once.

Endpoints: the service gives each channel WSS and HTTPS endpoints on other hosts than the
control plane; the lab serves all three from the signaling node on one port, so
GetSignalingChannelEndpoint names that node (an address until the lab has DNS names).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from lab.core.documents import JsonObject
from lab.servers.channels import DEFAULT_MESSAGE_TTL_S, ChannelRegistry, valid_client_id
from lab.servers.credentials import AccessKey, ice_server_credentials
from lab.servers.service_model import (
    ServiceError,
    error_document,
    error_header,
    error_status,
    operation_for,
    parse_input,
)

DEFAULT_LIST_MAX_RESULTS = 500  # ListSignalingChannels' documented default
DEFAULT_PROTOCOLS = ("WSS", "HTTPS")
ICE_SERVER_TTL_S = 300
SCHEMES = {"WSS": "wss", "HTTPS": "https"}


@dataclass(frozen=True)
class Endpoints:
    """Where GetSignalingChannelEndpoint sends clients: this server's host and port."""

    host: str  # the WSS endpoint's name (m-<8hex>.kinesisvideo...: lab/servers/dns.py)
    port: int = 443
    https_host: str | None = None  # the HTTPS endpoint's (r-<8hex>...), if not `host`

    def url(self, scheme: str) -> str:
        """`wss://host` or `https://host`, with the port only if it is not 443."""
        host = self.https_host if scheme == "https" and self.https_host else self.host
        return f"{scheme}://{host}" + ("" if self.port == 443 else f":{self.port}")


def kvs_turn_uris(host: str) -> list[str]:
    """One TURN set's URIs as the service hands them out (the scenario's `kvs` shape)."""
    return [
        f"turn:{host}:443?transport=udp",
        f"turns:{host}:443?transport=udp",
        f"turns:{host}:443?transport=tcp",
    ]


@dataclass(frozen=True)
class TurnServers:
    """The run's TURN server, as GetIceServerConfig describes it: `sets` sets, set i on
    address i (the service's sets name different hosts), TURN REST credentials."""

    addresses: tuple[str, ...]
    secret: str
    sets: int = 2
    ttl_s: int = ICE_SERVER_TTL_S

    def ice_server_list(self, channel_arn: str, now: float) -> list[JsonObject]:
        servers = []
        for index in range(self.sets):
            credentials = ice_server_credentials(self.secret, channel_arn, self.ttl_s, now)
            servers.append(
                {
                    "Uris": kvs_turn_uris(self.addresses[index % len(self.addresses)]),
                    "Username": credentials.username,
                    "Password": credentials.password,
                    "Ttl": self.ttl_s,
                }
            )
        return servers


def service_config(key: AccessKey | None, turn: TurnServers | None) -> JsonObject:
    """The signaling server's `--service-config` document: the run's access key (SigV4 is
    checked when there is one) and the TURN server GetIceServerConfig hands out. A file,
    not arguments, so that the secrets stay out of the process list."""
    return {
        "access_key": None if key is None else vars(key),
        "turn": None if turn is None else {**vars(turn), "addresses": list(turn.addresses)},
    }


def read_service_config(document: JsonObject) -> tuple[AccessKey | None, TurnServers | None]:
    """The access key and TURN servers of a `service_config` document."""
    key = document.get("access_key")
    turn = document.get("turn")
    return (
        AccessKey(**key) if key else None,
        TurnServers(**{**turn, "addresses": tuple(turn["addresses"])}) if turn else None,
    )


@dataclass(frozen=True)
class ApiResponse:
    """What the service answers: a status, a JSON document and, for an error, its type."""

    status: int
    document: JsonObject
    error_header: str | None = None  # x-amzn-ErrorType

    @property
    def error_type(self) -> str | None:
        return self.error_header.split(":", 1)[0] if self.error_header else None

    def headers(self) -> list[tuple[str, str]]:
        headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", str(uuid.uuid4()))]
        if self.error_header is not None:
            headers.append(("x-amzn-ErrorType", self.error_header))
        return headers

    def body(self) -> bytes:
        return json.dumps(self.document, separators=(",", ":")).encode()


def error_response(error_type: str, message: str, api_version: str = "2017-09-30") -> ApiResponse:
    return ApiResponse(
        error_status(error_type),
        error_document(error_type, message),
        error_header(error_type, api_version),
    )


class ServiceApi:
    """The emulated calls, by operation name; anything else is an unknown operation."""

    def __init__(
        self,
        channels: ChannelRegistry,
        endpoints: Endpoints,
        turn: TurnServers | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.channels = channels
        self.endpoints = endpoints
        self.turn = turn
        self.clock = clock
        self._handlers: dict[str, Callable[[JsonObject], JsonObject]] = {
            "CreateSignalingChannel": self.create_signaling_channel,
            "DescribeSignalingChannel": self.describe_signaling_channel,
            "ListSignalingChannels": self.list_signaling_channels,
            "DeleteSignalingChannel": self.delete_signaling_channel,
            "GetSignalingChannelEndpoint": self.get_signaling_channel_endpoint,
            "GetIceServerConfig": self.get_ice_server_config,
        }

    def answer(self, method: str, path: str, body: bytes) -> tuple[str | None, ApiResponse]:
        """The operation's name (None if unknown) and the service's answer."""
        operation = operation_for(method, path)
        if operation is None:
            return None, error_response(
                "UnknownOperationException", f"No operation of the service is {method} {path}."
            )
        handler = self._handlers.get(operation.name)
        if handler is None:
            return operation.name, error_response(
                "UnknownOperationException",
                f"{operation.name} is an operation of the service the lab does not emulate.",
            )
        try:
            return operation.name, ApiResponse(200, handler(parse_input(operation, body)))
        except ServiceError as exc:
            return operation.name, error_response(
                exc.error_type, exc.message, operation.api_version
            )

    def create_signaling_channel(self, request: JsonObject) -> JsonObject:
        if request.get("ChannelType", "SINGLE_MASTER") != "SINGLE_MASTER":
            raise ServiceError(
                "InvalidArgumentException", "SINGLE_MASTER is the only supported channel type."
            )
        configuration = request.get("SingleMasterConfiguration") or {}
        record = self.channels.create(
            request["ChannelName"],
            configuration.get("MessageTtlSeconds", DEFAULT_MESSAGE_TTL_S),
            {tag["Key"]: tag["Value"] for tag in request.get("Tags", [])},
        )
        return {"ChannelARN": record.arn}

    def describe_signaling_channel(self, request: JsonObject) -> JsonObject:
        name, arn = request.get("ChannelName"), request.get("ChannelARN")
        if name is None and arn is None:
            raise ServiceError(
                "InvalidArgumentException", "Either ChannelName or ChannelARN must be specified."
            )
        return {"ChannelInfo": self.channels.find(name=name, arn=arn).info()}

    def list_signaling_channels(self, request: JsonObject) -> JsonObject:
        condition = request.get("ChannelNameCondition") or {}
        if condition and "ComparisonValue" not in condition:
            raise ServiceError(
                "InvalidArgumentException", "ChannelNameCondition needs a ComparisonValue."
            )
        records = self.channels.listing(condition.get("ComparisonValue", ""))
        start = _page_start(request.get("NextToken"), [r.name for r in records])
        end = start + request.get("MaxResults", DEFAULT_LIST_MAX_RESULTS)
        response: JsonObject = {"ChannelInfoList": [r.info() for r in records[start:end]]}
        if end < len(records):
            response["NextToken"] = base64.b64encode(records[end].name.encode()).decode()
        return response

    def delete_signaling_channel(self, request: JsonObject) -> JsonObject:
        self.channels.delete(request["ChannelARN"], request.get("CurrentVersion"))
        return {}

    def get_signaling_channel_endpoint(self, request: JsonObject) -> JsonObject:
        self.channels.find(arn=request["ChannelARN"])
        configuration = request.get("SingleMasterChannelEndpointConfiguration") or {}
        protocols = configuration.get("Protocols") or list(DEFAULT_PROTOCOLS)
        if "WEBRTC" in protocols:
            raise ServiceError(
                "InvalidArgumentException",
                "The channel is not configured for ingestion, so it has no WEBRTC endpoint.",
            )
        # MASTER and VIEWER get the same endpoints here: one server serves both roles.
        return {
            "ResourceEndpointList": [
                {"Protocol": p, "ResourceEndpoint": self.endpoints.url(SCHEMES[p])}
                for p in dict.fromkeys(protocols)
            ]
        }

    def get_ice_server_config(self, request: JsonObject) -> JsonObject:
        record = self.channels.find(arn=request["ChannelARN"])
        client_id = request.get("ClientId")
        if client_id is not None and not valid_client_id(client_id):
            raise ServiceError(
                "InvalidArgumentException",
                "ClientId must be 1-256 characters of [a-zA-Z0-9_.-], not starting with AWS_.",
            )
        if self.turn is None:  # a scenario without a STUN/TURN server
            return {"IceServerList": []}
        return {"IceServerList": self.turn.ice_server_list(record.arn, self.clock())}


def _page_start(token: str | None, names: list[str]) -> int:
    """Where a NextToken (base64 of the first name of the page) resumes the listing."""
    if token is None:
        return 0
    try:
        name = base64.b64decode(token, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ServiceError("InvalidArgumentException", "The NextToken is not valid.") from None
    return next((index for index, n in enumerate(names) if n >= name), len(names))
