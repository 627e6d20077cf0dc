"""The emulated service's HTTP APIs: the calls answered in the models' shapes (pure), and
the real server on loopback driven end to end by boto3 and by WebSocket clients with
presigned URLs, SigV4 checked with the run's key (no root needed)."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from lab.peers.signaling_client import SignalingClient, SignalingRejected
from lab.peers.signaling_url import channel_url
from lab.servers.certificates import ServerCertificate, issue_server_certificate, make_ca
from lab.servers.channels import ChannelRegistry
from lab.servers.control_plane import (
    Endpoints,
    ServiceApi,
    TurnServers,
    read_service_config,
    service_config,
)
from lab.servers.credentials import AccessKey, new_access_key, rest_password
from lab.servers.https_front import BadRequest, body_length, keeps_alive, parse_head
from lab.servers.signaling import HandshakeRejected, Identity, parse_identity
from lab.servers.sigv4 import presign_url, sign_request

REGION = "us-west-2"
RUN_ARN = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/ice-lab-demo/1"
TURN = TurnServers(("203.0.113.10", "203.0.113.11"), "turn-secret")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make_api() -> tuple[ServiceApi, ChannelRegistry, Clock]:
    clock = Clock()
    registry = ChannelRegistry(REGION, clock=clock)
    registry.add(RUN_ARN)
    return ServiceApi(registry, Endpoints("203.0.113.20"), TURN, clock=clock), registry, clock


def call(api: ServiceApi, path: str, body: dict[str, Any] | bytes) -> tuple[int, dict, str | None]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    _, response = api.answer("POST", path, raw)
    return response.status, response.document, response.error_type


def error(api: ServiceApi, path: str, body: dict[str, Any] | bytes) -> str | None:
    """The error type of a call's answer (None if it succeeded)."""
    return call(api, path, body)[2]


# --- the calls, pure --------------------------------------------------------------------


def test_create_describe_list_delete() -> None:
    api, registry, clock = make_api()
    status, created, _ = call(api, "/createSignalingChannel", {"ChannelName": "cam-1"})
    assert status == 200
    assert created == {
        "ChannelARN": "arn:aws:kinesisvideo:us-west-2:123456789012:channel/cam-1/1800000000000"
    }
    arn = created["ChannelARN"]
    _, described, _ = call(api, "/describeSignalingChannel", {"ChannelName": "cam-1"})
    info = described["ChannelInfo"]
    assert info | {"Version": "v"} == {
        "ChannelName": "cam-1",
        "ChannelARN": arn,
        "ChannelType": "SINGLE_MASTER",
        "ChannelStatus": "ACTIVE",
        "CreationTime": clock.now,
        "SingleMasterConfiguration": {"MessageTtlSeconds": 60},
        "Version": "v",
    }
    assert call(api, "/describeSignalingChannel", {"ChannelARN": arn})[1] == described
    _, listed, _ = call(api, "/listSignalingChannels", {})
    assert [c["ChannelName"] for c in listed["ChannelInfoList"]] == ["cam-1", "ice-lab-demo"]
    assert call(api, "/deleteSignalingChannel", {"ChannelARN": arn})[:2] == (200, {})
    assert arn not in registry
    assert error(api, "/describeSignalingChannel", {"ChannelARN": arn}) == (
        "ResourceNotFoundException"
    )


def test_names_are_unique_and_validated_as_the_model_says() -> None:
    api, _, _ = make_api()
    call(api, "/createSignalingChannel", {"ChannelName": "cam"})
    assert error(api, "/createSignalingChannel", {"ChannelName": "cam"}) == "ResourceInUseException"
    status, document, kind = call(api, "/createSignalingChannel", {"ChannelName": "a b"})
    assert (status, kind) == (400, "InvalidArgumentException")
    assert document == {
        "Message": "1 validation error detected: Value 'a b' at 'channelName' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
    }
    _, document, _ = call(
        api,
        "/createSignalingChannel",
        {"ChannelName": "x" * 257, "SingleMasterConfiguration": {"MessageTtlSeconds": 121}},
    )
    assert document["Message"].startswith("2 validation errors detected: ")
    too_long = "at 'channelName' failed to satisfy constraint: Member must have length less than"
    assert f"{too_long} or equal to 256" in document["Message"]
    assert "at 'singleMasterConfiguration.messageTtlSeconds'" in document["Message"]
    _, document, _ = call(api, "/createSignalingChannel", {})
    null = "Value null at 'channelName' failed to satisfy constraint: Member must not be null"
    assert null in document["Message"]
    full_mesh = {"ChannelName": "m", "ChannelType": "FULL_MESH"}
    assert error(api, "/createSignalingChannel", full_mesh) == "InvalidArgumentException"


def test_arns_and_message_ttl_are_checked() -> None:
    api, _, _ = make_api()
    _, document, kind = call(api, "/describeSignalingChannel", {"ChannelARN": "arn:nope"})
    assert kind == "InvalidArgumentException" and "at 'channelARN'" in document["Message"]
    ttl = {"ChannelName": "t", "SingleMasterConfiguration": {"MessageTtlSeconds": 4}}
    _, document, _ = call(api, "/createSignalingChannel", ttl)
    assert "Member must have value greater than or equal to 5" in document["Message"]
    ok = {"ChannelName": "t", "SingleMasterConfiguration": {"MessageTtlSeconds": 5}}
    assert call(api, "/createSignalingChannel", ok)[0] == 200


def test_bad_bodies_and_unknown_operations() -> None:
    api, _, _ = make_api()
    assert call(api, "/createSignalingChannel", b"{not json")[0] == 400
    assert error(api, "/createSignalingChannel", b"{not json") == "SerializationException"
    assert error(api, "/createSignalingChannel", {"ChannelName": 5}) == "SerializationException"
    operation, response = api.answer("POST", "/nowhere", b"{}")
    assert (operation, response.status, response.error_type) == (
        None,
        404,
        "UnknownOperationException",
    )
    operation, response = api.answer("POST", "/createStream", b"{}")
    assert operation == "CreateStream" and response.error_type == "UnknownOperationException"


def test_error_headers_are_the_services() -> None:
    api, _, _ = make_api()
    _, response = api.answer("POST", "/createSignalingChannel", b'{"ChannelName": "a b"}')
    headers = dict(response.headers())
    assert headers["x-amzn-ErrorType"] == (
        "InvalidArgumentException:https://kinesisvideo.amazonaws.com/doc/2017-09-30/"
    )
    assert headers["Content-Type"] == "application/json" and headers["x-amzn-RequestId"]


def test_list_pages_and_filters_by_prefix() -> None:
    api, _, _ = make_api()
    for name in ("cam-a", "cam-b", "cam-c", "door"):
        call(api, "/createSignalingChannel", {"ChannelName": name})
    names, token = [], None
    while True:
        request = {"MaxResults": 2, "ChannelNameCondition": {"ComparisonValue": "cam-"}}
        _, page, _ = call(
            api, "/listSignalingChannels", request | ({"NextToken": token} if token else {})
        )
        names += [c["ChannelName"] for c in page["ChannelInfoList"]]
        token = page.get("NextToken")
        if token is None:
            break
    assert names == ["cam-a", "cam-b", "cam-c"]
    assert error(api, "/listSignalingChannels", {"NextToken": "%%%"}) == "InvalidArgumentException"


def test_delete_checks_the_version() -> None:
    api, registry, _ = make_api()
    version = registry.find(arn=RUN_ARN).version
    request = {"ChannelARN": RUN_ARN, "CurrentVersion": "0123"}
    assert error(api, "/deleteSignalingChannel", request) == "VersionMismatchException"
    request["CurrentVersion"] = version
    assert call(api, "/deleteSignalingChannel", request)[0] == 200


def test_endpoints_per_protocol() -> None:
    api, _, _ = make_api()
    request = {
        "ChannelARN": RUN_ARN,
        "SingleMasterChannelEndpointConfiguration": {
            "Protocols": ["WSS", "HTTPS"],
            "Role": "VIEWER",
        },
    }
    _, document, _ = call(api, "/getSignalingChannelEndpoint", request)
    assert document == {
        "ResourceEndpointList": [
            {"Protocol": "WSS", "ResourceEndpoint": "wss://203.0.113.20"},
            {"Protocol": "HTTPS", "ResourceEndpoint": "https://203.0.113.20"},
        ]
    }
    assert Endpoints("203.0.113.20", 8443).url("wss") == "wss://203.0.113.20:8443"
    request["SingleMasterChannelEndpointConfiguration"]["Protocols"] = ["WEBRTC"]
    assert error(api, "/getSignalingChannelEndpoint", request) == "InvalidArgumentException"
    request["SingleMasterChannelEndpointConfiguration"]["Protocols"] = ["SIP"]
    assert error(api, "/getSignalingChannelEndpoint", request) == "InvalidArgumentException"
    missing = {"ChannelARN": RUN_ARN.replace("/1", "/2")}
    status, _, kind = call(api, "/getSignalingChannelEndpoint", missing)
    assert (status, kind) == (404, "ResourceNotFoundException")


def test_ice_servers_are_the_turn_sets_with_time_limited_credentials() -> None:
    api, _, clock = make_api()
    request = {"ChannelARN": RUN_ARN, "ClientId": "viewer-1", "Service": "TURN"}
    status, document, _ = call(api, "/v1/get-ice-server-config", request)
    assert status == 200
    servers = document["IceServerList"]
    assert [s["Uris"] for s in servers] == [
        [
            f"turn:{h}:443?transport=udp",
            f"turns:{h}:443?transport=udp",
            f"turns:{h}:443?transport=tcp",
        ]
        for h in ("203.0.113.10", "203.0.113.11")
    ]
    for server in servers:
        expiry, user = server["Username"].split(":", 1)
        assert int(expiry) == int(clock.now) + 300 and server["Ttl"] == 300
        assert base64.b64decode(user).decode() == f"v1:{RUN_ARN}"
        assert server["Password"] == rest_password("turn-secret", server["Username"])
    for bad in (
        {"ChannelARN": RUN_ARN, "ClientId": "AWS_x"},
        {"ChannelARN": RUN_ARN, "Service": "STUN"},
    ):
        assert error(api, "/v1/get-ice-server-config", bad) == "InvalidArgumentException"
    assert error(api, "/v1/get-ice-server-config", {}) == "InvalidArgumentException"
    no_turn = ServiceApi(ChannelRegistry(REGION), Endpoints("h"))
    no_turn.channels.add(RUN_ARN)
    assert call(no_turn, "/v1/get-ice-server-config", {"ChannelARN": RUN_ARN})[1] == {
        "IceServerList": []
    }


def test_the_websocket_side_knows_the_registrys_channels() -> None:
    registry = ChannelRegistry(REGION)
    created = registry.create("cam")
    assert parse_identity(f"/?X-Amz-ChannelARN={created.arn}", registry) == Identity("master")
    with pytest.raises(HandshakeRejected) as refused:
        parse_identity(f"/?X-Amz-ChannelARN={RUN_ARN}", registry)
    assert refused.value.status == 403
    deleted = []
    registry.on_delete = deleted.append
    registry.delete(created.arn)
    assert deleted == [created]


def test_the_service_config_round_trips() -> None:
    key = new_access_key()
    document = json.loads(json.dumps(service_config(key, TURN)))
    assert read_service_config(document) == (key, TURN)
    assert read_service_config(service_config(None, None)) == (None, None)


def test_the_fronts_request_reading() -> None:
    method, target, version, headers = parse_head(
        b"POST /createSignalingChannel HTTP/1.1\r\nHost: h\r\nContent-Length: 12"
    )
    assert (method, target, version) == ("POST", "/createSignalingChannel", "HTTP/1.1")
    assert body_length(headers) == 12 and keeps_alive(version, headers)
    assert not keeps_alive("HTTP/1.1", [("Connection", "close")])
    assert not keeps_alive("HTTP/1.0", [])
    for head, status in [(b"GARBAGE", 400), (b"GET / SPDY/3", 505)]:
        with pytest.raises(BadRequest) as refused:
            parse_head(head)
        assert refused.value.status == status
    with pytest.raises(BadRequest) as chunked:
        body_length([("Transfer-Encoding", "chunked")])
    assert chunked.value.status == 501


# --- the real server, on loopback, driven by boto3 ---------------------------------------


@dataclass
class Service:
    url: str
    ca: str
    key: AccessKey
    log: Path

    def client(self, name: str = "kinesisvideo", **overrides: Any) -> Any:
        settings = {
            "region_name": REGION,
            "endpoint_url": self.url,
            "verify": self.ca,
            "aws_access_key_id": self.key.access_key_id,
            "aws_secret_access_key": self.key.secret_access_key,
            "config": Config(retries={"max_attempts": 1}),
        } | overrides
        return boto3.client(name, **settings)

    def wss(self, arn: str, client_id: str | None, **presign: Any) -> str:
        url = channel_url(self.url.replace("https://", "wss://"), arn, client_id)
        return presign_url(url, presign.pop("key", self.key), REGION, **presign)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificate:
    directory = tmp_path_factory.mktemp("service-tls")
    return issue_server_certificate(directory, "signaling", ["127.0.0.1"], make_ca(directory))


@pytest.fixture(scope="module")
def service(certificate: ServerCertificate) -> Iterator[Service]:
    """The signaling server with a run key and TURN servers, on a free loopback port."""
    directory = certificate.cert.parent
    key = new_access_key()
    config = directory / "service.json"
    config.write_text(json.dumps(service_config(key, TURN)))
    log = directory / "signaling.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lab.servers.signaling",
            "--listen",
            "127.0.0.1",
            "--port",
            "0",
            "--cert",
            str(certificate.cert),
            "--key",
            str(certificate.key),
            "--channel-arn",
            RUN_ARN,
            "--service-config",
            str(config),
            "--log",
            str(log),
        ],  # fmt: skip
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    ready = process.stdout.readline().decode()
    assert ready.startswith("READY 127.0.0.1:"), ready
    try:
        yield Service(f"https://{ready.split()[1]}", str(certificate.ca), key, log)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0


def client_error(call_it: Any) -> dict[str, Any]:
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        call_it()
    response = refused.value.response
    return {"status": response["ResponseMetadata"]["HTTPStatusCode"], **response["Error"]}


def test_boto3_creates_a_channel_gets_its_endpoints_and_ice_servers(service: Service) -> None:
    video = service.client()
    arn = video.create_signaling_channel(
        ChannelName="boto3-demo", SingleMasterConfiguration={"MessageTtlSeconds": 30}
    )["ChannelARN"]
    info = video.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]
    assert (info["ChannelName"], info["ChannelStatus"]) == ("boto3-demo", "ACTIVE")
    assert info["SingleMasterConfiguration"] == {"MessageTtlSeconds": 30}
    assert isinstance(info["CreationTime"], datetime)
    names = [c["ChannelName"] for c in video.list_signaling_channels()["ChannelInfoList"]]
    assert {"boto3-demo", "ice-lab-demo"} <= set(names)
    endpoints = {
        e["Protocol"]: e["ResourceEndpoint"]
        for e in video.get_signaling_channel_endpoint(
            ChannelARN=arn,
            SingleMasterChannelEndpointConfiguration={
                "Protocols": ["WSS", "HTTPS"],
                "Role": "VIEWER",
            },
        )["ResourceEndpointList"]
    }
    assert endpoints == {"WSS": service.url.replace("https", "wss"), "HTTPS": service.url}
    signaling = service.client("kinesis-video-signaling", endpoint_url=endpoints["HTTPS"])
    ice = signaling.get_ice_server_config(ChannelARN=arn, ClientId="viewer-1")["IceServerList"]
    assert len(ice) == 2 and all(s["Ttl"] == 300 and len(s["Uris"]) == 3 for s in ice)
    video.delete_signaling_channel(ChannelARN=arn)
    error = client_error(lambda: video.describe_signaling_channel(ChannelARN=arn))
    assert (error["status"], error["Code"]) == (404, "ResourceNotFoundException")
    assert any(e.get("operation") == "GetIceServerConfig" for e in service.events())


def test_boto3_sees_the_services_errors(service: Service) -> None:
    video = service.client()
    error = client_error(lambda: video.create_signaling_channel(ChannelName="bad name"))
    assert (error["status"], error["Code"]) == (400, "InvalidArgumentException")
    assert "regular expression pattern" in error["Message"]
    wrong_secret = service.client(aws_secret_access_key=new_access_key().secret_access_key)
    error = client_error(wrong_secret.list_signaling_channels)
    assert (error["status"], error["Code"]) == (403, "InvalidSignatureException")
    assert error["Message"].startswith("The request signature we calculated does not match")
    unknown_key = service.client(aws_access_key_id=new_access_key().access_key_id)
    assert (
        client_error(unknown_key.list_signaling_channels)["Code"] == "UnrecognizedClientException"
    )
    other_region = service.client(region_name="eu-west-1")
    assert client_error(other_region.list_signaling_channels)["Code"] == "InvalidSignatureException"


def test_a_skewed_clock_is_refused(service: Service) -> None:
    """A client whose clock is 10 minutes slow: what urllib gets back is the service's 403."""
    import ssl
    import urllib.error
    import urllib.request

    url = f"{service.url}/listSignalingChannels"
    when = datetime.now(UTC) - timedelta(minutes=10)
    headers = sign_request("POST", url, service.key, REGION, body=b"{}", when=when)
    request = urllib.request.Request(url, data=b"{}", headers=headers, method="POST")
    context = ssl.create_default_context(cafile=service.ca)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, context=context, timeout=5)
    assert refused.value.code == 403
    assert refused.value.headers["x-amzn-ErrorType"].startswith("InvalidSignatureException:")
    assert json.loads(refused.value.read())["message"].startswith("Signature expired: ")


async def connect(url: str, ca: str) -> SignalingClient:
    return await SignalingClient.connect(url, ca_file=ca, timeout=3.0)


def test_presigned_websockets_connect_to_a_created_channel(service: Service) -> None:
    arn = service.client().create_signaling_channel(ChannelName="ws-demo")["ChannelARN"]

    async def scenario() -> None:
        master_url, viewer_url = service.wss(arn, None), service.wss(arn, "viewer-1")
        async with (
            await connect(master_url, service.ca) as master,
            await connect(viewer_url, service.ca) as viewer,
        ):
            await viewer.send_sdp({"type": "offer", "sdp": "v=0\r\n"}, recipient=None)
            offer = await asyncio.wait_for(master.receive(), 3.0)
            assert (offer.message_type, offer.sender_client_id) == ("SDP_OFFER", "viewer-1")
            # Deleting the channel tells its clients to go away.
            service.client().delete_signaling_channel(ChannelARN=arn)
            going = await asyncio.wait_for(viewer.receive(), 3.0)
            assert going.message_type == "GO_AWAY"

    asyncio.run(asyncio.wait_for(scenario(), 10.0))


@pytest.mark.parametrize(
    ("presign", "reason"),
    [
        ({"when": datetime.now(UTC) - timedelta(seconds=300)}, "Signature expired"),
        ({"key": AccessKey("AKIAOTHERKEY23456789", "x" * 40)}, "UnrecognizedClientException"),
        ({"expires_s": 1, "when": datetime.now(UTC) - timedelta(seconds=2)}, "Signature expired"),
    ],
)
def test_a_viewer_with_an_expired_or_foreign_presign_cannot_connect(
    service: Service, presign: dict[str, Any], reason: str
) -> None:
    async def scenario() -> SignalingRejected:
        with pytest.raises(SignalingRejected) as refused:
            await connect(service.wss(RUN_ARN, "viewer-1", **presign), service.ca)
        return refused.value

    refused = asyncio.run(scenario())
    assert refused.status == 403 and reason in refused.reason


def test_an_unsigned_websocket_is_refused(service: Service) -> None:
    url = channel_url(service.url.replace("https://", "wss://"), RUN_ARN, "viewer-1")

    async def scenario() -> SignalingRejected:
        with pytest.raises(SignalingRejected) as refused:
            await connect(url, service.ca)
        return refused.value

    refused = asyncio.run(scenario())
    assert refused.status == 403 and "MissingAuthenticationTokenException" in refused.reason
