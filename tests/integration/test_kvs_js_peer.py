"""Issue 12, item 4 on real networks: the KVS JavaScript SDK (the npm package, in the
Chromium peer) calls the emulated service as its sample does, signs its WebSocket URL,
and connects to the lab's aiortc peers, as viewer and as master (root)."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lab.core.documents import schema_errors
from lab.peers.kvs_js_peer import PAGE_DIR, missing_assets

from .helpers import lab, run_scenario

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(bool(missing_assets()), reason="make setup installs the KVS JS SDK"),
]
SDK_CALLS = ["DescribeSignalingChannel", "GetSignalingChannelEndpoint", "GetIceServerConfig"]


def pinned(package: str) -> str:
    """The version lab/peers/page/package.json pins."""
    return json.loads((PAGE_DIR / "package.json").read_text())["dependencies"][package]


def kept_run(tmp_path: Path, name: str, *args: str) -> tuple[dict[str, Any], str, Path | None]:
    """`lab run NAME --keep ARGS`: the result, the output and the kept run directory."""
    result_path = tmp_path / f"{name}.json"
    completed = lab("run", name, "--keep", "--json", str(result_path), *args)
    output = completed.stdout + completed.stderr
    kept = next(
        (line.split(": ", 1)[1] for line in output.splitlines() if "directory kept" in line), None
    )
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    return result, output, Path(kept) if kept else None


def channel_of_turn_user(user: str | None) -> str | None:
    """The channel ARN in a GetIceServerConfig TURN username (`<expiry>:<b64 v1:ARN>`)."""
    if not user or ":" not in user:
        return None
    try:
        decoded = base64.b64decode(user.split(":", 1)[1], validate=True).decode()
    except ValueError:
        return None
    return decoded.removeprefix("v1:") if decoded.startswith("v1:") else None


def test_the_sdk_viewer_calls_the_service_signs_and_connects_to_aiortc(tmp_path: Path) -> None:
    result, output, kept = kept_run(tmp_path, "home-nat-both", "--viewer", "kvs-js")
    try:
        assert result.get("outcome") == "connected", output
        assert schema_errors(result, "result") == []
        viewer = result["peers"]["viewer"]
        assert viewer["agent"] == "kvs-js"
        assert viewer["software"]["name"] == "amazon-kinesis-video-streams-webrtc"
        assert viewer["software"]["version"] == pinned("amazon-kinesis-video-streams-webrtc")
        assert viewer["software"]["browser"]["name"] == "chromium"
        assert result["echo"] and viewer["connected_s"] > 0
        assert result["selected"]["viewer"]["local"]["type"] in {"srflx", "prflx"}
        sdk = viewer["kvs_sdk"]
        assert [c["operation"] for c in sdk["calls"]] == SDK_CALLS
        assert all(c["ok"] for c in sdk["calls"]), sdk["calls"]
        assert sdk["endpoints"]["WSS"].startswith("wss://")
        assert sdk["ice_server_uris"], sdk
        # The service's own log: each call passed SigV4 with the run's key and was answered,
        # and the SDK's presigned WebSocket joined as the viewer; nothing was refused.
        assert kept is not None, output
        service = json.loads((kept / "signaling-service.json").read_text())
        assert service["access_key"] is not None  # SigV4 is checked on every request
        events = [json.loads(line) for line in (kept / "signaling.jsonl").read_text().splitlines()]
        api = [(e["operation"], e["status"]) for e in events if e["event"] == "api"]
        assert api == [(operation, 200) for operation in SDK_CALLS]
        assert {e["role"] for e in events if e["event"] == "connect"} == {"master", "viewer"}
        # Nothing refused but, at times, candidates over the service's 20 per second: the
        # SDK trickles each one (up to 36 here) as Chromium gathers them.
        refused = [e for e in events if e["event"] == "error"]
        assert not [e for e in refused if e.get("action") != "ICE_CANDIDATE"], refused
        assert all("ICE_CANDIDATE sends in a second" in e["error"] for e in refused), refused
        # Its relays were allocated with the credentials GetIceServerConfig gave for the
        # channel (the aiortc master's are the scenario's own).
        allocations = [
            channel_of_turn_user(r["user"])
            for r in result["servers"]["turn"]["requests"]
            if r["method"] == "allocate" and r["outcome"] == "success"
        ]
        assert sdk["channel_arn"] in allocations
    finally:
        if kept is not None:
            shutil.rmtree(kept, ignore_errors=True)


def test_the_sdk_master_answers_an_aiortc_viewer_through_a_relay(tmp_path: Path) -> None:
    status, result, output = run_scenario(tmp_path, "symmetric-both", "--master", "kvs-js")
    assert status == 0 and result["outcome"] == "connected", output
    master = result["peers"]["master"]
    assert master["agent"] == "kvs-js"
    assert [c["operation"] for c in master["kvs_sdk"]["calls"]] == SDK_CALLS
    selected = result["selected"]["master"]
    assert "relay" in {selected["local"]["type"], selected["remote"]["type"]}
