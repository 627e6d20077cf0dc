"""coturn's own clients against the lab's mock STUN/TURN server, on loopback.

If `turnutils_uclient`, `turnutils_stunclient` and `turnutils_natdiscovery` succeed
against the mock as they do against coturn, the mock can stand in for coturn. Every
process is started here, wrapped in `timeout`, and stopped by pid.
"""

from __future__ import annotations

import json
import re
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.servers.certificates import issue_server_certificate, make_ca

REPO = Path(__file__).resolve().parents[2]
SECRET = "integration-secret"
TOOLS = ("turnutils_uclient", "turnutils_stunclient", "turnutils_natdiscovery", "turnutils_peer")

pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in TOOLS), reason="coturn's client tools missing"
)


def free_port() -> int:
    """A port free for UDP and TCP on 127.0.0.1 and 127.0.0.2 (checked, then released)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                for address in ("127.0.0.1", "127.0.0.2"):
                    with socket.socket(socket.AF_INET, kind) as check:
                        check.bind((address, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


def stop(process: subprocess.Popen[Any]) -> None:
    """Stop a process this test started, by its pid."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class MockServer:
    """`python -m lab.servers.mock_turn` with its ports, log and CA."""

    def __init__(self, workdir: Path, faults: dict[str, Any]) -> None:
        self.port, self.alt_port, self.tls_port = free_port(), free_port(), free_port()
        self.log = workdir / "requests.jsonl"
        ca = make_ca(workdir)
        cert = issue_server_certificate(workdir, "turn", ["127.0.0.1"], ca)
        self.ca = cert.ca
        config = {
            "listen": [
                {"address": "127.0.0.1", "port": self.port, "transport": "udp"},
                {"address": "127.0.0.1", "port": self.port, "transport": "tcp"},
                {"address": "127.0.0.1", "port": self.tls_port, "transport": "tls"},
            ],
            "alternate": {"address": "127.0.0.2", "port": self.alt_port},
            "relay_address": "127.0.0.1",
            "realm": "ice-lab",
            "auth": {"mode": "rest", "secret": SECRET},
            "tls": {"cert": str(cert.cert), "key": str(cert.key)},
            "faults": faults,
            "request_log": str(self.log),
        }
        path = workdir / "mock_turn.json"
        path.write_text(json.dumps(config))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lab.servers.mock_turn", "--config", str(path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 10.0) -> None:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if line != "READY\n":
            stop(self.process)
            raise RuntimeError(f"mock_turn not ready: {line!r} {self.process.stderr.read()!r}")

    def records(self) -> list[dict[str, Any]]:
        """The request log, read after the server stopped (as the lab does)."""
        stop(self.process)
        assert self.process.returncode == 0
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def mock_turn(tmp_path: Path) -> Iterator[Callable[..., MockServer]]:
    started: list[MockServer] = []

    def start(**faults: Any) -> MockServer:
        server = MockServer(tmp_path, faults)
        started.append(server)
        return server

    yield start
    for server in started:
        stop(server.process)


@pytest.fixture
def echo_peer() -> Iterator[int]:
    """coturn's UDP echo peer on 127.0.0.1, probed until it answers."""
    port = free_port()
    process = subprocess.Popen(
        ["turnutils_peer", "-L", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            probe.settimeout(0.1)
            for _ in range(50):
                probe.sendto(b"probe", ("127.0.0.1", port))
                try:
                    probe.recv(64)
                    break
                except TimeoutError:
                    continue
            else:
                raise RuntimeError("turnutils_peer did not start")
        yield port
    finally:
        stop(process)


def run_tool(args: list[str], seconds: int = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["timeout", str(seconds), *args], capture_output=True, text=True, timeout=seconds + 5
    )


def uclient(server: MockServer, peer_port: int, flags: list[str], port: int) -> str:
    result = run_tool(
        ["turnutils_uclient", *flags, "-p", str(port), "-e", "127.0.0.1", "-r", str(peer_port)]
        + ["-u", "lab-user", "-W", SECRET, "-n", "10", "127.0.0.1"]
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


@pytest.mark.root
@pytest.mark.parametrize(
    ("transport", "flags"),
    [
        ("udp", []),
        ("udp", ["-s"]),  # Send/Data indications and CreatePermission instead of channels
        ("tcp", ["-t"]),
        ("tls", ["-t", "-S", "CA"]),
    ],
)
def test_uclient_relays_with_no_loss(
    mock_turn: Callable[..., MockServer], echo_peer: int, transport: str, flags: list[str]
) -> None:
    server = mock_turn()
    if "CA" in flags:
        flags = [*flags[:-1], "-E", str(server.ca)]  # verify the lab CA's certificate
    port = server.tls_port if transport == "tls" else server.port
    output = uclient(server, echo_peer, flags, port)
    assert "Total lost packets 0 (0.000000%)" in output
    received = re.findall(r"tot_recv_msgs=(\d+)", output)
    assert received and int(received[-1]) >= 10
    records = server.records()
    allocations = [r for r in records if r["method"] == "allocate" and r["outcome"] == "success"]
    assert allocations and {r["transport"] for r in allocations} == {transport}
    ended = [r for r in records if r["event"] == "allocation_end" and r["end"] == "deleted"]
    to_client = "data_indications" if "-s" in flags else "channel_data_to_client"
    assert sum(r["counts"].get(to_client, 0) for r in ended) >= 10


@pytest.mark.root
def test_uclient_sees_403_forbidden_ip(
    mock_turn: Callable[..., MockServer], echo_peer: int
) -> None:
    server = mock_turn(forbid_peers=["127.0.0.1/32"])
    result = run_tool(
        ["turnutils_uclient", "-p", str(server.port), "-e", "127.0.0.1", "-r", str(echo_peer)]
        + ["-u", "lab-user", "-W", SECRET, "-n", "3", "127.0.0.1"]
    )
    assert result.returncode != 0
    assert "error 403 (Forbidden IP)" in result.stdout + result.stderr
    assert any(r["fault"] == "forbid_peers" for r in server.records() if r["event"] == "request")


@pytest.mark.root
def test_stunclient_gets_reflexive_and_rfc5780_addresses(
    mock_turn: Callable[..., MockServer],
) -> None:
    server = mock_turn()
    result = run_tool(["turnutils_stunclient", "-p", str(server.port), "127.0.0.1"], 15)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(r"UDP reflexive addr: 127\.0\.0\.1:\d+", output), output
    assert f"Other addr: : 127.0.0.2:{server.alt_port}" in output
    assert f"Response origin: : 127.0.0.2:{server.alt_port}" in output  # CHANGE-REQUEST


@pytest.mark.root
def test_natdiscovery_finds_no_nat_on_loopback(mock_turn: Callable[..., MockServer]) -> None:
    server = mock_turn()
    start = time.monotonic()
    result = run_tool(["turnutils_natdiscovery", "-m", "-f", "-p", str(server.port), "127.0.0.1"])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Endpoint Independent Mapping" in output, output
    assert "Endpoint Independent Filtering" in output, output
    assert "timeout" not in output.lower()
    assert time.monotonic() - start < 10
