"""A small viewer application, written as a customer would write one against the real
service: boto3 for the control plane, SigV4-presigned WebSocket signaling, aiortc for
WebRTC. It knows nothing of the lab: it reads the standard AWS variables (endpoint,
region, credentials, CA bundle) and the channel's ARN, as it would in production.

    sudo .venv/bin/lab run home-nat-both \
        --viewer-command ".venv/bin/python examples/kvs_viewer_app.py"

It fetches the signaling endpoints and the ICE servers (GetSignalingChannelEndpoint,
GetIceServerConfig), connects to signaling, offers, and exits 0 once a message sent over
the data channel comes back from the master (the lab's peers echo "ice-lab ping").
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import sys
import uuid

import boto3
import websockets
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest

PING = "ice-lab ping"
DONE = "ice-lab done"


def endpoints(kinesisvideo, channel_arn: str) -> dict[str, str]:
    answer = kinesisvideo.get_signaling_channel_endpoint(
        ChannelARN=channel_arn,
        SingleMasterChannelEndpointConfiguration={"Protocols": ["WSS", "HTTPS"], "Role": "VIEWER"},
    )
    return {e["Protocol"]: e["ResourceEndpoint"] for e in answer["ResourceEndpointList"]}


def ice_servers(session, https: str, channel_arn: str, client_id: str, region: str) -> list:
    signaling = session.client("kinesis-video-signaling", endpoint_url=https)
    answer = signaling.get_ice_server_config(ChannelARN=channel_arn, ClientId=client_id)
    servers = [RTCIceServer(urls=f"stun:stun.kinesisvideo.{region}.amazonaws.com:443")]
    for entry in answer["IceServerList"]:
        servers.append(
            RTCIceServer(
                urls=entry["Uris"], username=entry["Username"], credential=entry["Password"]
            )
        )
    return servers


def presigned(session, wss: str, channel_arn: str, client_id: str, region: str) -> str:
    """The WebSocket URL with SigV4 query authentication, signed as its https twin."""
    query = f"X-Amz-ChannelARN={channel_arn}&X-Amz-ClientId={client_id}"
    request = AWSRequest(method="GET", url=f"https://{wss.removeprefix('wss://')}/?{query}")
    credentials = session.get_credentials().get_frozen_credentials()
    SigV4QueryAuth(credentials, "kinesisvideo", region, expires=300).add_auth(request)
    return "wss://" + request.url.removeprefix("https://")


def message(action: str, payload: dict) -> str:
    encoded = base64.b64encode(json.dumps(payload).encode()).decode()
    return json.dumps({"action": action, "messagePayload": encoded})


async def call(url: str, servers: list, ca_bundle: str | None) -> None:
    context = ssl.create_default_context(cafile=ca_bundle)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
    channel = pc.createDataChannel("app")
    echoed = asyncio.Event()
    channel.on("open", lambda: channel.send(PING))
    channel.on("message", lambda text: echoed.set() if text == PING else None)
    async with websockets.connect(url, ssl=context) as socket:
        await pc.setLocalDescription(await pc.createOffer())
        offer = {"type": "offer", "sdp": pc.localDescription.sdp}
        await socket.send(message("SDP_OFFER", offer))
        print("offer sent", flush=True)
        reader = asyncio.create_task(receive(socket, pc))
        await echoed.wait()
        print("connected: the master echoed the data channel message", flush=True)
        channel.send(DONE)
        await asyncio.sleep(0.2)
        reader.cancel()
    await pc.close()


async def receive(socket, pc: RTCPeerConnection) -> None:
    async for text in socket:
        event = json.loads(text)
        if not event.get("messagePayload"):
            continue
        payload = json.loads(base64.b64decode(event["messagePayload"]))
        if event.get("messageType") == "SDP_ANSWER":
            await pc.setRemoteDescription(RTCSessionDescription(payload["sdp"], "answer"))
            print("answer received", flush=True)
        elif event.get("messageType") == "ICE_CANDIDATE" and payload.get("candidate"):
            candidate = candidate_from_sdp(payload["candidate"].removeprefix("candidate:"))
            candidate.sdpMid, candidate.sdpMLineIndex = payload.get("sdpMid"), 0
            if not candidate.ip.endswith(".local"):  # a browser's mDNS names do not cross NATs
                await pc.addIceCandidate(candidate)


def main() -> int:
    channel_arn = os.environ["ICE_LAB_CHANNEL_ARN"]  # in production: your channel's ARN
    region = os.environ["AWS_REGION"]
    client_id = f"app-{uuid.uuid4().hex[:8]}"
    session = boto3.Session()
    found = endpoints(session.client("kinesisvideo"), channel_arn)
    print(f"endpoints: {found}", flush=True)
    servers = ice_servers(session, found["HTTPS"], channel_arn, client_id, region)
    print(f"{len(servers)} ICE servers", flush=True)
    url = presigned(session, found["WSS"], channel_arn, client_id, region)
    deadline = float(os.environ.get("ICELAB_DEADLINE_S", "30")) - 1
    try:
        asyncio.run(asyncio.wait_for(call(url, servers, os.environ.get("AWS_CA_BUNDLE")), deadline))
    except TimeoutError:
        print("no echo before the deadline", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
