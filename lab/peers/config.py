"""What the runner tells a peer process: its role, signaling, ICE servers and timing."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.core.documents import JsonObject


@dataclass
class IceServerConfig:
    urls: list[str]
    username: str | None = None
    password: str | None = None


@dataclass
class PeerConfig:
    role: str  # viewer | master
    host: str
    mode: str
    signaling_url: str
    client_id: str  # the viewer's X-Amz-ClientId; the master answers this viewer
    ca_file: str
    ice_servers: list[IceServerConfig]
    timing: JsonObject
    result_path: str
    kvs_log: bool = False
    agent: str = "aiortc"  # lab/peers/agents.py
    other_agent: str | None = None  # the other peer's agent
    reveal_host_addresses: bool = False  # browsers: real host addresses instead of mDNS names
    # The emulated service, for peers that call it themselves (endpoint_url, region,
    # channel_arn, access_key_id, secret_access_key: RunningServers.service_access).
    service: dict[str, str] | None = None
    # The proxy this peer must use to reach anything (`http://10.1.0.1:3128`,
    # `socks5://10.1.0.1:1080`): lab/servers/proxy.py, Chromium's --proxy-server.
    proxy_server: str | None = None
    # The node's resolv.conf and hosts (lab/network/resolver.py), bound over the machine's
    # in the peer's own mount namespace before it starts: it resolves through the lab's DNS.
    resolver_dir: str | None = None
    # An ongoing call after connecting (duration_s, messages_per_s, message_bytes):
    # lab/scenario/call_events.py, lab/peers/call_traffic.py.
    call: JsonObject | None = None
    extra: JsonObject = field(default_factory=dict)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def read(cls, path: Path) -> PeerConfig:
        document = json.loads(path.read_text())
        document["ice_servers"] = [IceServerConfig(**s) for s in document["ice_servers"]]
        return cls(**document)
