"""Start the run's servers in their hosts and wait until each is ready.

coturn (or the lab's mock STUN/TURN server) and the KVS-like signaling server
start in parallel; a server that is not ready in time stops the run with the
tail of its log.

The signaling server is also the emulated service's HTTPS API (control plane and
GetIceServerConfig) on the same address and port. It checks SigV4 with an access key
made for the run; `kvs.env` in the run directory holds what an AWS SDK needs to call it
(key, region, endpoint, CA bundle), for the lab's tools and for hands-on use.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.core.documents import JsonObject
from lab.core.errors import LabRunError
from lab.core.slowdown import scaled
from lab.network.build import LabNetwork, terminate_processes
from lab.scenario.scenario import Scenario
from lab.servers.certificates import ServerCertificate, issue_server_certificate, make_ca
from lab.servers.control_plane import Endpoints, TurnServers, service_config
from lab.servers.coturn import CoturnSetup, coturn_args, log_path, ready_markers
from lab.servers.credentials import AccessKey, new_access_key, new_secret
from lab.servers.dns import start_run_dns
from lab.servers.mock import mock_config
from lab.servers.proxy import start_proxies

SIGNALING_PORT = 443
READY_TIMEOUT_S = 10.0
REGION = "us-west-2"
ICE_SERVER_SETS = 2  # GetIceServerConfig's TURN sets, as the service typically gives


@dataclass
class RunningServers:
    ca_file: Path
    turn_secret: str
    signaling_url: str
    channel_arn: str
    region: str = REGION
    access_key: AccessKey | None = None  # SigV4 for the service's APIs and WebSocket
    service_url: str = ""  # the service's HTTPS APIs (control plane and signaling)
    env_file: Path | None = None  # kvs.env: what an AWS SDK needs to call the service
    logs: dict[str, Path] = field(default_factory=dict)
    #: Stop the STUN/TURN server and start it again, as a deploy or a crash would (its
    #: allocations die with it); returns once it listens again. A call's event uses it.
    restart_turn: Callable[[], None] | None = None

    def service_access(self) -> dict[str, str] | None:
        """How a client calls the service itself: endpoint, region, channel, access key."""
        if self.access_key is None:
            return None
        return {
            "endpoint_url": self.service_url,
            "region": self.region,
            "channel_arn": self.channel_arn,
            "access_key_id": self.access_key.access_key_id,
            "secret_access_key": self.access_key.secret_access_key,
        }


def channel_arn(scenario: Scenario) -> str:
    return f"arn:aws:kinesisvideo:{scenario.region}:123456789012:channel/ice-lab-{scenario.name}/1"


def client_environment(servers: RunningServers) -> dict[str, str]:
    """The environment with which boto3 (or the AWS CLI) calls the run's service: its
    variables name the kinesisvideo endpoint (botocore's service id "Kinesis Video"), the
    run's access key, region and CA; ICE_LAB_CHANNEL_ARN is the run's own channel."""
    assert servers.access_key is not None
    return {
        "AWS_ACCESS_KEY_ID": servers.access_key.access_key_id,
        "AWS_SECRET_ACCESS_KEY": servers.access_key.secret_access_key,
        "AWS_REGION": servers.region,
        "AWS_DEFAULT_REGION": servers.region,
        "AWS_ENDPOINT_URL_KINESIS_VIDEO": servers.service_url,
        "AWS_CA_BUNDLE": str(servers.ca_file),
        "ICE_LAB_CHANNEL_ARN": servers.channel_arn,
    }


def _write_secret(path: Path, text: str) -> Path:
    path.touch(mode=0o600)
    path.write_text(text)
    return path


def start_servers(
    network: LabNetwork, scenario: Scenario, workdir: Path, software: str
) -> RunningServers:
    """Start every server the scenario names; return how peers reach them.

    Clients reach the service by its names (lab/servers/dns.py), which the run's DNS
    servers answer and the certificates carry."""
    dns_wait = start_run_dns(network, scenario, workdir)  # first: every node's resolver
    ca = make_ca(workdir)
    secret = new_secret()
    names = scenario.service_names
    signaling_node = scenario.topology.node(scenario.signaling_host)
    signaling_cert = issue_server_certificate(
        workdir,
        "signaling",
        [signaling_node.primary_address],
        ca,
        dns_names=[names.control_plane, names.wss, names.https],
    )
    servers = RunningServers(
        ca_file=ca[0],
        turn_secret=secret,
        signaling_url=Endpoints(names.wss, SIGNALING_PORT).url("wss"),
        channel_arn=channel_arn(scenario),
        region=scenario.region,
        access_key=new_access_key(),
        service_url=Endpoints(names.control_plane, SIGNALING_PORT).url("https"),
    )
    servers.logs["dns"] = workdir / "dnsmasq-public.log"
    servers.env_file = _write_secret(
        workdir / "kvs.env",
        "".join(f"{name}={value}\n" for name, value in client_environment(servers).items()),
    )
    waits = [dns_wait, _start_signaling(network, scenario, signaling_cert, servers, workdir)]
    if scenario.stun_turn is not None:
        turn_node = scenario.topology.node(scenario.stun_turn.host)
        turn_names = [names.stun] + [names.turn(a) for a in turn_node.addresses]
        turn_cert = _turn_certificate(
            workdir, turn_node.addresses, ca, scenario.stun_turn.faults, turn_names
        )
        start = _start_mock if software == "mock" else _start_coturn
        waits.append(start(network, scenario, turn_cert, secret, servers, workdir))
    deadline = time.monotonic() + scaled(READY_TIMEOUT_S)
    for wait in waits:
        wait(deadline)
    start_proxies(network, scenario, workdir)
    return servers


def _turn_certificate(
    workdir: Path, addresses: list[str], ca: Any, faults: JsonObject, names: list[str]
) -> ServerCertificate:
    """The TURN server's certificate for its addresses and names; a `tls` fault makes it
    expired or for another name."""
    kind = faults.get("tls", "valid")
    if kind == "wrong-name":
        return issue_server_certificate(
            workdir, "turn", ["192.0.2.250"], ca, dns_names=["turn.invalid"]
        )
    return issue_server_certificate(
        workdir, "turn", addresses, ca, expired=kind == "expired", dns_names=names
    )


def _start_mock(
    network: LabNetwork,
    scenario: Scenario,
    cert: ServerCertificate,
    secret: str,
    servers: RunningServers,
    workdir: Path,
):  # type: ignore[no-untyped-def]
    assert scenario.stun_turn is not None
    node = scenario.topology.node(scenario.stun_turn.host)
    servers.logs["stun_turn"] = workdir / "mock-turn.requests.jsonl"
    config = mock_config(
        tuple(node.addresses),
        cert.cert,
        cert.key,
        secret,
        scenario.stun_turn.denied_peers,
        scenario.stun_turn.faults,
        servers.logs["stun_turn"],
    )
    config_path = workdir / "mock-turn.json"
    config_path.write_text(json.dumps(config, indent=2))
    stderr_path = workdir / "mock-turn.stderr"
    args = [sys.executable, "-m", "lab.servers.mock_turn", "--config", str(config_path)]
    running: list[subprocess.Popen[bytes]] = []

    def start() -> Callable[[float], None]:
        stderr = stderr_path.open("ab")
        process = network.popen(node.name, args, stdout=subprocess.PIPE, stderr=stderr)
        running[:] = [process]
        return _ready_line_waiter(process, "mock STUN/TURN server", stderr_path)

    servers.restart_turn = _restarter(running, start)
    return start()


def _ready_line_waiter(process: subprocess.Popen[bytes], what: str, stderr_path: Path):  # type: ignore[no-untyped-def]
    def wait(deadline: float) -> None:
        line = _read_line(process, deadline)
        if not line.startswith("READY"):
            raise LabRunError(f"{what} did not start: {_tail(stderr_path) or line or 'no output'}")

    return wait


def _start_signaling(
    network: LabNetwork,
    scenario: Scenario,
    cert: ServerCertificate,
    servers: RunningServers,
    workdir: Path,
):  # type: ignore[no-untyped-def]
    address = scenario.topology.node(scenario.signaling_host).primary_address
    stderr_path = workdir / "signaling.stderr"
    servers.logs["signaling"] = workdir / "signaling.jsonl"
    turn = None
    names = scenario.service_names
    if scenario.stun_turn is not None:
        addresses = scenario.topology.node(scenario.stun_turn.host).addresses
        # GetIceServerConfig names the TURN hosts, as the service does.
        hosts = tuple(names.turn(address) for address in addresses)
        turn = TurnServers(hosts, servers.turn_secret, sets=ICE_SERVER_SETS)
    config = _write_secret(
        workdir / "signaling-service.json",
        json.dumps(service_config(servers.access_key, turn), indent=2),
    )
    args = [
        "--listen", address, "--port", str(SIGNALING_PORT),
        "--cert", str(cert.cert), "--key", str(cert.key),
        "--channel-arn", servers.channel_arn, "--log", str(servers.logs["signaling"]),
        "--service-config", str(config), "--region", servers.region,
        "--endpoint-host", names.wss, "--endpoint-https-host", names.https,
    ]  # fmt: skip
    process = network.fork(
        scenario.signaling_host, "lab.servers.signaling:forked_main", args,
        stderr_path=stderr_path, what="signaling server",
    )  # fmt: skip
    return _ready_line_waiter(process, "signaling server", stderr_path)


def _start_coturn(
    network: LabNetwork,
    scenario: Scenario,
    cert: ServerCertificate,
    secret: str,
    servers: RunningServers,
    workdir: Path,
):  # type: ignore[no-untyped-def]
    assert scenario.stun_turn is not None
    node = scenario.topology.node(scenario.stun_turn.host)
    setup = CoturnSetup(
        addresses=tuple(node.addresses),
        cert=cert.cert,
        key=cert.key,
        secret=secret,
        workdir=workdir,
        denied_peers=scenario.stun_turn.denied_peers,
    )
    servers.logs["stun_turn"] = log_path(setup)
    markers = ready_markers(setup)

    def start() -> Callable[[float], None]:
        """Start coturn; the waiter returns once its log says every listener is open
        (counting markers: a restarted coturn appends to the same log)."""
        text = log_path(setup).read_text() if log_path(setup).exists() else ""
        seen = {marker: text.count(marker) for marker in markers}
        process = network.popen(
            node.name, coturn_args(setup), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        running[:] = [process]

        def wait(deadline: float) -> None:
            while time.monotonic() < deadline:
                text = log_path(setup).read_text() if log_path(setup).exists() else ""
                if all(text.count(marker) > seen[marker] for marker in markers):
                    return
                if process.poll() is not None:
                    break
                time.sleep(0.005)
            raise LabRunError(f"coturn did not start: {_tail(log_path(setup)) or 'no log'}")

        return wait

    running: list[subprocess.Popen[bytes]] = []
    servers.restart_turn = _restarter(running, start)
    return start()


def _restarter(
    running: list[subprocess.Popen[bytes]], start: Callable[[], Callable[[float], None]]
) -> Callable[[], None]:
    """Stop the server `running` holds (by its own pid) and start it again, ready."""

    def restart() -> None:
        terminate_processes(running)
        start()(time.monotonic() + scaled(READY_TIMEOUT_S))

    return restart


def _read_line(process: subprocess.Popen[bytes], deadline: float) -> str:
    assert process.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.05)
        if ready:
            return process.stdout.readline().decode().strip()
        if process.poll() is not None:
            return ""
    return ""


def _tail(path: Path, lines: int = 3) -> str:
    if not path.exists():
        return ""
    return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
