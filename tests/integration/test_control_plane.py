"""The emulated service from inside the network (root): with `lab up home-nat-both`, boto3
in the viewer host creates a channel, gets its endpoints and ICE servers, and is refused
with the service's errors; a presigned WebSocket connects until the presign expires;
the TURN credentials GetIceServerConfig hands out allocate a relay. And the lab's own
peers sign their signaling URLs and pass."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.run.hands_on.processes import daemon_alive
from lab.run.hands_on.state import read_state
from lab.run.hands_on.teardown import purge, wait_no_leftovers
from lab.scenario.dns import ServiceNames

from .helpers import LAB, lab

pytestmark = pytest.mark.root
NAMES = ServiceNames.for_region("us-west-2")

# Runs in the viewer host, configured only by the environment of kvs.env, as a user's
# script would be.
CLIENT = textwrap.dedent(
    """
    import asyncio, json, os
    from datetime import UTC, datetime, timedelta

    import boto3
    import botocore.exceptions
    from aioice.turn import create_turn_endpoint

    from lab.peers.signaling_client import SignalingClient, SignalingRejected
    from lab.peers.signaling_url import channel_url
    from lab.servers.credentials import AccessKey
    from lab.servers.sigv4 import presign_url

    def refusal(call):
        try:
            call()
        except botocore.exceptions.ClientError as error:
            response = error.response
            return [response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]]
        return None

    async def connect(url):
        try:
            client = await SignalingClient.connect(
                url, ca_file=os.environ["AWS_CA_BUNDLE"], timeout=5
            )
        except SignalingRejected as refused:
            return [refused.status, refused.reason]
        await client.close()
        return "connected"

    async def allocate(server):
        host = server["Uris"][0].split(":")[1]
        transport, _ = await create_turn_endpoint(
            asyncio.DatagramProtocol, (host, 443), server["Username"], server["Password"]
        )
        relayed = transport.get_extra_info("sockname")
        transport.close()
        return list(relayed)

    results = {}
    video = boto3.client("kinesisvideo")
    arn = video.create_signaling_channel(ChannelName="hands-on-camera")["ChannelARN"]
    results["arn"] = arn
    results["channels"] = sorted(
        c["ChannelName"] for c in video.list_signaling_channels()["ChannelInfoList"]
    )
    configuration = {"Protocols": ["WSS", "HTTPS"], "Role": "VIEWER"}
    endpoints = {
        e["Protocol"]: e["ResourceEndpoint"]
        for e in video.get_signaling_channel_endpoint(
            ChannelARN=arn, SingleMasterChannelEndpointConfiguration=configuration
        )["ResourceEndpointList"]
    }
    results["endpoints"] = endpoints
    signaling = boto3.client("kinesis-video-signaling", endpoint_url=endpoints["HTTPS"])
    ice = signaling.get_ice_server_config(ChannelARN=arn, ClientId="viewer-1")["IceServerList"]
    results["ice"] = ice
    wrong_secret = boto3.client(
        "kinesisvideo",
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key="x" * 40,
    )
    results["wrong_secret"] = refusal(wrong_secret.list_signaling_channels)
    results["bad_name"] = refusal(lambda: video.create_signaling_channel(ChannelName="a b"))

    key = AccessKey(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    region = os.environ["AWS_REGION"]
    url = channel_url(endpoints["WSS"], arn, "viewer-1")
    results["fresh"] = asyncio.run(connect(presign_url(url, key, region)))
    expired = presign_url(url, key, region, when=datetime.now(UTC) - timedelta(seconds=300))
    results["expired"] = asyncio.run(connect(expired))
    results["relayed"] = asyncio.run(asyncio.wait_for(allocate(ice[0]), 5))
    video.delete_signaling_channel(ChannelARN=arn)
    print(json.dumps(results))
    """
)


def take_down() -> None:
    """Leave nothing up, even if `lab down` is broken."""
    state = read_state()
    lab("down", timeout=60)
    if state is not None:
        purge(state)
        if daemon_alive(state):
            os.kill(state["pid"], signal.SIGKILL)
        wait_no_leftovers(state)


@pytest.fixture(scope="module", params=["coturn", "mock"])
def up(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The network up, with either TURN server: both must take GetIceServerConfig's
    credentials (their usernames carry base64, with its `/`, `+` and `=`)."""
    if read_state() is not None:
        pytest.skip("a `lab up` network is already up on this machine (not the tests')")
    try:
        started = lab("up", "home-nat-both", "--servers", request.param, timeout=90)
        assert started.returncode == 0, started.stdout + started.stderr
        state = read_state()
        assert state is not None
        yield state
    finally:
        take_down()


def client_environment(state: dict[str, Any]) -> dict[str, str]:
    """kvs.env of the network that is up: what a user exports before calling the service."""
    env_file = Path(state["run_directory"]) / "kvs.env"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    return dict(line.split("=", 1) for line in env_file.read_text().splitlines())


def test_boto3_in_the_viewer_host_uses_the_service(up: dict[str, Any], tmp_path: Path) -> None:
    environment = client_environment(up)
    assert environment["AWS_ENDPOINT_URL_KINESIS_VIDEO"] == f"https://{NAMES.control_plane}"
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    completed = subprocess.run(
        [*LAB, "exec", "viewer", "--", sys.executable, str(script)],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    assert results["arn"].startswith(
        "arn:aws:kinesisvideo:us-west-2:123456789012:channel/hands-on-camera/"
    )
    assert results["channels"] == ["hands-on-camera", "ice-lab-home-nat-both"]
    # Names, resolved in the viewer host through the lab's DNS (TLS verified by name).
    assert results["endpoints"] == {"WSS": f"wss://{NAMES.wss}", "HTTPS": f"https://{NAMES.https}"}
    assert [s["Uris"][0] for s in results["ice"]] == [
        f"turn:{NAMES.turn('203.0.113.10')}:443?transport=udp",
        f"turn:{NAMES.turn('203.0.113.11')}:443?transport=udp",
    ]
    assert results["wrong_secret"] == [403, "InvalidSignatureException"]
    assert results["bad_name"] == [400, "InvalidArgumentException"]
    assert results["fresh"] == "connected"
    status, reason = results["expired"]
    assert status == 403 and "Signature expired" in reason
    assert results["relayed"][0] == "203.0.113.10"  # the TURN server took the credentials


def test_the_labs_own_peers_sign_and_pass(tmp_path: Path) -> None:
    result_path = tmp_path / "result.json"
    completed = lab("run", "home-nat-both", "--keep", "--json", str(result_path), "--quiet")
    output = completed.stdout + completed.stderr
    kept = next(
        (line.split(": ", 1)[1] for line in output.splitlines() if "directory kept" in line), None
    )
    try:
        assert completed.returncode == 0, output
        assert json.loads(result_path.read_text())["outcome"] == "connected"
        assert kept is not None, output
        for role in ("viewer", "master"):
            config = json.loads((Path(kept) / f"{role}.config.json").read_text())
            # Each peer signs its URL itself with the run's access key, as a KVS client
            # does; the server refuses unsigned ones, so both connections below passed.
            assert "X-Amz-Signature" not in config["signaling_url"]
            assert config["service"]["endpoint_url"] == f"https://{NAMES.control_plane}"
            assert config["service"]["access_key_id"]
        events = [
            json.loads(line) for line in (Path(kept) / "signaling.jsonl").read_text().splitlines()
        ]
        assert sorted(e["role"] for e in events if e["event"] == "connect") == ["master", "viewer"]
        assert not [e for e in events if e["event"] == "error"]
    finally:
        if kept is not None:
            shutil.rmtree(kept, ignore_errors=True)
