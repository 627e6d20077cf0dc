"""The lab's mock STUN/TURN server: pure logic, then real clients on 127.0.0.1.

The network tests run the server in-process (or as `python -m`) and talk to it with
aioice's TURN client or hand-built STUN messages, on loopback only.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aioice import stun, turn

from lab.servers.certificates import issue_server_certificate, make_ca
from lab.servers.credentials import rest_credentials
from lab.servers.mock_turn import ConfigError, MockTurnServer, config_from_dict
from lab.servers.mock_turn.allocation import Allocation, desired_lifetime
from lab.servers.mock_turn.binding import answer_binding
from lab.servers.mock_turn.codec import (
    pack_channel_data,
    unknown_required_attributes,
    xor_peer_addresses,
)
from lab.servers.mock_turn.config import Auth, Faults, Lifetimes, Rule
from lab.servers.mock_turn.credentials import (
    Nonces,
    authenticate,
    long_term_key,
    password_for,
)
from lab.servers.mock_turn.faults import delay_for, is_forbidden_peer, quota_reached, should_drop
from lab.servers.mock_turn.rfc5780 import Quartet
from lab.servers.mock_turn.transports import StreamFramer

REPO = Path(__file__).resolve().parents[2]
SECRET = "unit-secret"
T = TypeVar("T")


# --- pure logic ------------------------------------------------------------------------------


def test_config_parses_the_documented_example() -> None:
    config = config_from_dict(
        {
            "listen": [
                {"address": "203.0.113.10", "port": 3478, "transport": "udp"},
                {"address": "203.0.113.10", "port": 443, "transport": "tls"},
            ],
            "alternate": {"address": "203.0.113.11", "port": 3479},
            "relay_address": "203.0.113.10",
            "auth": {"mode": "rest", "secret": "S"},
            "tls": {"cert": "/c.pem", "key": "/k.pem"},
            "faults": {
                "forbid_peers": ["192.168.0.0/16"],
                "credentials": "expired",
                "quota": 2,
                "drop": [{"method": "allocate", "transport": "udp"}],
                "delay": [{"method": "binding", "seconds": 2.0}],
            },
            "request_log": "/tmp/r.jsonl",
        }
    )
    assert config.alternate is not None and config.alternate.port == 3479
    assert config.faults.drop == (Rule("allocate", "udp"),)
    assert config.faults.delay[0].seconds == 2.0
    assert config.faults.quota == 2 and config.auth.secret == "S"


@pytest.mark.parametrize(
    "bad",
    [
        {"listen": []},
        {"listen": [{"address": "127.0.0.1", "port": 1, "transport": "sctp"}]},
        {"listen": [{"address": "127.0.0.1", "port": 1, "transport": "tls"}]},  # no cert
        {"listen": [{"address": "127.0.0.1", "port": 1}], "faults": {"dorp": []}},
        {"listen": [{"address": "127.0.0.1", "port": 1}], "faults": {"drop": [{"method": "x"}]}},
        {"listen": [{"address": "127.0.0.1", "port": 1}], "auth": {"mode": "rest"}},
    ],
)
def test_config_rejects_mistakes(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        config_from_dict(bad)


def test_long_term_key_matches_aioice() -> None:
    assert long_term_key("u", "ice-lab", "p") == turn.make_integrity_key("u", "ice-lab", "p")


def test_rest_passwords_and_expiry() -> None:
    auth = Auth("rest", SECRET)
    creds = rest_credentials(SECRET, "viewer", ttl_s=300, now=1000)
    assert password_for(auth, creds.username, now=1200).password == creds.password
    assert password_for(auth, creds.username, now=1301).problem == "expired"
    assert password_for(auth, "no-expiry", now=0).problem == "unknown"
    assert password_for(Auth("static", users={"u": "p"}), "u", 0).password == "p"


def test_nonces_go_stale_and_foreign_ones_are_invalid() -> None:
    nonces = Nonces(lifetime_s=10)
    nonce = nonces.issue(now=100)
    assert nonces.check(nonce, 105) == "ok"
    assert nonces.check(nonce, 111) == "stale"
    assert Nonces().check(nonce, 105) == "invalid"


def _signed_request(username: str, password: str, nonce: bytes) -> stun.Message:
    request = stun.Message(stun.Method.ALLOCATE, stun.Class.REQUEST)
    request.attributes.update({"USERNAME": username, "REALM": "ice-lab", "NONCE": nonce})
    request.add_message_integrity(long_term_key(username, "ice-lab", password))
    return stun.parse_message(bytes(request))  # as received: integrity data recorded


def test_authenticate_challenges_accepts_and_applies_credential_faults() -> None:
    nonces, now = Nonces(), time.time()
    auth = Auth("static", users={"u": "p"})
    bare = stun.Message(stun.Method.ALLOCATE, stun.Class.REQUEST)
    assert authenticate(bare, auth, "valid", "ice-lab", nonces, now).error == 401
    good = _signed_request("u", "p", nonces.issue(now))
    result = authenticate(good, auth, "valid", "ice-lab", nonces, now)
    assert result.ok and result.key == long_term_key("u", "ice-lab", "p")
    bad = _signed_request("u", "nope", nonces.issue(now))
    assert authenticate(bad, auth, "valid", "ice-lab", nonces, now).error == 401
    faulted = authenticate(good, auth, "wrong", "ice-lab", nonces, now)
    assert (faulted.error, faulted.fault) == (401, "credentials")
    stale = _signed_request("u", "p", Nonces().issue(now))
    assert authenticate(stale, auth, "valid", "ice-lab", nonces, now).error == 438


def test_fault_decisions() -> None:
    faults = Faults(
        forbid_peers=config_from_dict(
            {
                "listen": [{"address": "127.0.0.1", "port": 1}],
                "faults": {"forbid_peers": ["192.168.0.0/16", "10.0.0.0/8"]},
            }
        ).faults.forbid_peers,
        quota=2,
        drop=(Rule("allocate", "udp"),),
        delay=(Rule("binding", None, 1.0), Rule("binding", "tcp", 3.0)),
    )
    assert should_drop(faults, "allocate", "udp")
    assert not should_drop(faults, "allocate", "tcp")
    assert not should_drop(faults, "binding", "udp")
    assert delay_for(faults, "binding", "udp") == 1.0
    assert delay_for(faults, "binding", "tcp") == 3.0
    assert delay_for(faults, "allocate", "udp") == 0.0
    assert is_forbidden_peer(faults, "192.168.1.20")
    assert is_forbidden_peer(faults, "10.0.0.7")
    assert not is_forbidden_peer(faults, "172.16.0.1")
    assert not is_forbidden_peer(faults, "::1")
    assert not quota_reached(faults, 1) and quota_reached(faults, 2)
    assert not quota_reached(Faults(), 10_000)


def test_allocation_lifetimes_permissions_and_channels() -> None:
    lifetimes = Lifetimes()
    assert desired_lifetime(None, lifetimes) == 600
    assert desired_lifetime(60, lifetimes) == 600  # never below the default
    assert desired_lifetime(10_000, lifetimes) == 3600
    assert desired_lifetime(0, lifetimes) == 0
    a = Allocation(("udp", ("c", 1), ("s", 2)), "u", b"t" * 12, ("r", 3), 600.0, lifetimes)
    assert not a.expired(599.9) and a.expired(600.0)
    a.refresh(600, now=500.0)
    assert not a.expired(1099.0) and a.expired(1100.0)
    a.permit("10.0.0.1", now=0.0)
    assert a.is_permitted("10.0.0.1", 299.9) and not a.is_permitted("10.0.0.1", 300.0)
    assert a.bind_channel(0x4000, ("10.0.0.2", 5), now=0.0) is None
    assert a.is_permitted("10.0.0.2", 299.0)  # ChannelBind installs a permission
    assert a.bind_channel(0x4000, ("10.0.0.3", 5), now=1.0) == "Channel bound to another peer"
    assert a.bind_channel(0x4001, ("10.0.0.2", 5), now=1.0) == "Peer bound to another channel"
    assert a.bind_channel(0x3FFF, ("10.0.0.4", 5), now=1.0) == "Channel number out of range"
    assert a.peer_of(0x4000, 599.0) == ("10.0.0.2", 5) and a.peer_of(0x4000, 600.0) is None
    assert a.bind_channel(0x4000, ("10.0.0.3", 5), now=600.0) is None  # expired: reusable


def test_rfc5780_quartet_addresses() -> None:
    q = Quartet(("A", "B"), (1, 2))
    assert sorted(q.sockets()) == [("A", 1), ("A", 2), ("B", 1), ("B", 2)]
    assert q.other_address(("A", 1)) == ("B", 2)
    assert q.other_address(("B", 1)) == ("A", 2)
    assert q.response_origin(("A", 1), 0) == ("A", 1)
    assert q.response_origin(("A", 1), 0x04) == ("B", 1)
    assert q.response_origin(("A", 1), 0x02) == ("A", 2)
    assert q.response_origin(("A", 1), 0x06) == ("B", 2)


def test_binding_answer_attributes_and_change_request_errors() -> None:
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    request.attributes["CHANGE-REQUEST"] = 0x06
    q = Quartet(("127.0.0.1", "127.0.0.2"), (1, 2))
    answer = answer_binding(request, ("9.9.9.9", 7), ("127.0.0.1", 1), q, stream=False)
    attrs = answer.message.attributes
    assert attrs["XOR-MAPPED-ADDRESS"] == attrs["MAPPED-ADDRESS"] == ("9.9.9.9", 7)
    assert answer.origin == attrs["RESPONSE-ORIGIN"] == ("127.0.0.2", 2)
    assert attrs["OTHER-ADDRESS"] == ("127.0.0.2", 2)
    no_rfc5780 = answer_binding(request, ("9.9.9.9", 7), ("127.0.0.1", 1), None, False)
    assert no_rfc5780.message.error_code == 420
    over_tcp = answer_binding(request, ("9.9.9.9", 7), ("127.0.0.1", 1), q, stream=True)
    assert over_tcp.message.error_code == 400


def test_stream_framer_splits_stun_and_padded_channel_data() -> None:
    stun_bytes = bytes(stun.Message(stun.Method.BINDING, stun.Class.REQUEST))
    channel = pack_channel_data(0x4000, b"hello", pad=True)
    assert len(channel) == 12
    stream = stun_bytes + channel + stun_bytes
    framer = StreamFramer()
    frames = [frame for i in range(0, len(stream), 7) for frame in framer.feed(stream[i : i + 7])]
    assert frames == [stun_bytes, channel, stun_bytes]
    with pytest.raises(ValueError):
        StreamFramer().feed(b"\xff" * 8)


def test_repeated_peer_addresses_and_unknown_attributes() -> None:
    tid = bytes(12)

    def attribute(attr_type: int, value: bytes) -> bytes:
        return struct.pack("!HH", attr_type, len(value)) + value

    def message(body: bytes) -> bytes:
        return struct.pack("!HHI12s", 0x0008, len(body), stun.COOKIE, tid) + body

    peers = [("10.0.0.1", 1), ("10.0.0.2", 2)]
    body = b"".join(attribute(0x0012, stun.pack_xor_address(p, tid)) for p in peers)
    assert xor_peer_addresses(message(body), tid) == peers
    assert unknown_required_attributes(message(body)) == []
    assert unknown_required_attributes(message(body + attribute(0x7F00, b""))) == [0x7F00]
    assert unknown_required_attributes(message(body + attribute(0xFF00, b""))) == []


# --- on the loopback network -----------------------------------------------------------------


def run(coro: Awaitable[T], timeout: float = 8.0) -> T:
    """Run a test coroutine; a hang fails the test instead of blocking the suite."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def base_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "listen": [{"address": "127.0.0.1", "port": 0, "transport": "udp"}],
        "relay_address": "127.0.0.1",
        "auth": {"mode": "rest", "secret": SECRET},
    }
    config.update(overrides)
    return config


@asynccontextmanager
async def running(config: dict[str, Any]) -> AsyncIterator[MockTurnServer]:
    server = MockTurnServer(config_from_dict(config))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def address_of(server: MockTurnServer, transport: str) -> tuple[str, int]:
    return next(address for name, address in server.bound if name == transport)


def requests(server: MockTurnServer, method: str) -> list[dict[str, Any]]:
    return [r for r in server.log.records if r.get("method") == method]


class Collector(asyncio.DatagramProtocol):
    """What an application behind a TURN relay (or a plain UDP socket) receives."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.errors: list[Exception] = []
        self.error_event = asyncio.Event()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.put_nowait((data, (addr[0], addr[1])))

    def error_received(self, exc: Exception) -> None:
        self.errors.append(exc)
        self.error_event.set()


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)  # type: ignore[attr-defined]


async def udp_endpoint(
    factory: Any, local: tuple[str, int] = ("127.0.0.1", 0)
) -> tuple[asyncio.DatagramTransport, Any]:
    loop = asyncio.get_running_loop()
    return await loop.create_datagram_endpoint(factory, local_addr=local)


def credentials() -> tuple[str, str]:
    creds = rest_credentials(SECRET, "unit")
    return creds.username, creds.password


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert = issue_server_certificate(directory, "turn", ["127.0.0.1"], make_ca(directory))
    return cert.cert, cert.key, cert.ca


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_aioice_relays_through_the_mock_over_each_transport(
    transport: str, tls_files: tuple[Path, Path, Path]
) -> None:
    cert, key, ca = tls_files
    config = base_config(
        listen=[{"address": "127.0.0.1", "port": 0, "transport": transport}],
        tls={"cert": str(cert), "key": str(key)},
    )
    context = ssl.create_default_context(cafile=str(ca)) if transport == "tls" else None

    async def scenario() -> None:
        async with running(config) as server:
            echo, _ = await udp_endpoint(Echo)
            peer = echo.get_extra_info("sockname")[:2]
            relay, app = await turn.create_turn_endpoint(
                Collector,
                server_addr=address_of(server, transport),
                username=credentials()[0],
                password=credentials()[1],
                transport="udp" if transport == "udp" else "tcp",
                ssl=context,
            )
            assert relay.get_extra_info("sockname")[0] == "127.0.0.1"
            for payload in (b"odd", b"hello", b"x" * 1001):  # odd sizes: TCP padding
                relay.sendto(payload, peer)
                assert await app.received.get() == (payload, peer)
            relay.close()
            await asyncio.sleep(0.1)  # Refresh(LIFETIME=0) deletes the allocation
            echo.close()
            assert [r["outcome"] for r in requests(server, "allocate")] == ["error", "success"]
            assert requests(server, "channel_bind")[0]["peer"] == f"{peer[0]}:{peer[1]}"
            ended = [r for r in server.log.records if r["event"] == "allocation_end"]
            assert ended[0]["end"] == "deleted" and ended[0]["transport"] == transport
            assert ended[0]["counts"]["channel_data_to_client"] == 3
            assert len(server.turn.allocations) == 0

    run(scenario())


class RawClient:
    """Hand-built STUN over UDP, for what aioice's client never sends."""

    def __init__(self, transport: asyncio.DatagramTransport, protocol: Collector) -> None:
        self.transport, self.protocol = transport, protocol

    @classmethod
    async def open(cls) -> RawClient:
        transport, protocol = await udp_endpoint(Collector)
        return cls(transport, protocol)

    async def request(
        self, message: stun.Message, server: tuple[str, int], timeout: float = 1.0
    ) -> tuple[stun.Message, tuple[str, int]]:
        self.transport.sendto(bytes(message), server)
        data, addr = await asyncio.wait_for(self.protocol.received.get(), timeout)
        return stun.parse_message(data), addr


def _request(method: stun.Method, **attributes: Any) -> stun.Message:
    message = stun.Message(method, stun.Class.REQUEST)
    message.attributes.update(attributes)
    return message


def test_send_and_data_indications_need_a_permission() -> None:
    async def scenario() -> None:
        async with running(base_config(auth={"mode": "none"})) as server:
            address = address_of(server, "udp")
            echo, _ = await udp_endpoint(Echo)
            peer = echo.get_extra_info("sockname")[:2]
            stranger, _ = await udp_endpoint(Collector)
            client = await RawClient.open()
            allocate = _request(stun.Method.ALLOCATE, **{"REQUESTED-TRANSPORT": 0x11000000})
            response, _ = await client.request(allocate, address)
            relayed = response.attributes["XOR-RELAYED-ADDRESS"]
            stranger.sendto(b"no permission", relayed)  # dropped: nobody permitted it
            permission = _request(stun.Method.CREATE_PERMISSION, **{"XOR-PEER-ADDRESS": peer})
            response, _ = await client.request(permission, address)
            assert response.message_class == stun.Class.RESPONSE
            send = stun.Message(stun.Method.SEND, stun.Class.INDICATION)
            send.attributes.update({"XOR-PEER-ADDRESS": peer, "DATA": b"via send"})
            client.transport.sendto(bytes(send), address)
            data, _ = await asyncio.wait_for(client.protocol.received.get(), 1)
            indication = stun.parse_message(data)
            assert indication.message_method == stun.Method.DATA
            assert indication.attributes["DATA"] == b"via send"
            assert indication.attributes["XOR-PEER-ADDRESS"] == peer
            counts = server.turn.allocations.all()[0].counts
            assert counts["from_peer_no_permission"] == 1 and counts["data_indications"] == 1
            for transport in (echo, stranger, client.transport):
                transport.close()

    run(scenario())


def test_retransmitted_allocate_gets_the_same_answer_and_a_new_one_437() -> None:
    async def scenario() -> None:
        async with running(base_config(auth={"mode": "none"})) as server:
            client = await RawClient.open()
            allocate = _request(stun.Method.ALLOCATE, **{"REQUESTED-TRANSPORT": 0x11000000})
            first, _ = await client.request(allocate, address_of(server, "udp"))
            again, _ = await client.request(allocate, address_of(server, "udp"))
            assert again.transaction_id == first.transaction_id
            assert (
                again.attributes["XOR-RELAYED-ADDRESS"] == first.attributes["XOR-RELAYED-ADDRESS"]
            )
            assert len(requests(server, "allocate")) == 1  # a retransmission is not logged
            other = _request(stun.Method.ALLOCATE, **{"REQUESTED-TRANSPORT": 0x11000000})
            mismatch, _ = await client.request(other, address_of(server, "udp"))
            assert mismatch.error_code == 437
            assert len(server.turn.allocations) == 1
            client.transport.close()

    run(scenario())


def test_forbidden_peer_gets_403_on_channel_bind_and_others_still_work() -> None:
    config = base_config(faults={"forbid_peers": ["127.0.0.3/32"]})

    async def scenario() -> None:
        async with running(config) as server:
            echo, _ = await udp_endpoint(Echo)
            peer = echo.get_extra_info("sockname")[:2]
            relay, app = await turn.create_turn_endpoint(
                Collector, address_of(server, "udp"), *credentials()
            )
            relay.sendto(b"hi", ("127.0.0.3", peer[1]))
            await app.error_event.wait()
            assert isinstance(app.errors[0], stun.TransactionFailed)
            assert app.errors[0].response.attributes["ERROR-CODE"] == (403, "Forbidden IP")
            relay.sendto(b"hi", peer)
            assert await app.received.get() == (b"hi", peer)
            refused = [r for r in requests(server, "channel_bind") if r["outcome"] == "error"]
            assert refused[0]["fault"] == "forbid_peers"
            assert refused[0]["peer"] == f"127.0.0.3:{peer[1]}"
            relay.close()
            echo.close()

    run(scenario())


@pytest.mark.parametrize("case", ["expired-username", "credentials-fault"])
def test_bad_credentials_get_401(case: str) -> None:
    faults = {"credentials": "wrong"} if case == "credentials-fault" else {}
    username, password = credentials()
    if case == "expired-username":
        creds = rest_credentials(SECRET, "unit", ttl_s=-10)
        username, password = creds.username, creds.password

    async def scenario() -> None:
        async with running(base_config(faults=faults)) as server:
            with pytest.raises(stun.TransactionFailed) as failure:
                await turn.create_turn_endpoint(
                    Collector, address_of(server, "udp"), username, password
                )
            assert failure.value.response.error_code == 401
            last = requests(server, "allocate")[-1]
            assert last["error_code"] == 401
            assert last["fault"] == ("credentials" if faults else None)

    run(scenario())


def test_quota_refuses_allocations_beyond_n_with_486() -> None:
    async def scenario() -> None:
        async with running(base_config(faults={"quota": 1})) as server:
            first, _ = await turn.create_turn_endpoint(
                Collector, address_of(server, "udp"), *credentials()
            )
            with pytest.raises(stun.TransactionFailed) as failure:
                await turn.create_turn_endpoint(
                    Collector, address_of(server, "udp"), *credentials()
                )
            assert failure.value.response.attributes["ERROR-CODE"][0] == 486
            assert requests(server, "allocate")[-1]["fault"] == "quota"
            first.close()

    run(scenario())


def test_dropped_allocate_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stun, "RETRY_MAX", 2)
    monkeypatch.setattr(stun, "RETRY_RTO", 0.05)
    config = base_config(faults={"drop": [{"method": "allocate", "transport": "udp"}]})

    async def scenario() -> None:
        async with running(config) as server:
            with pytest.raises(stun.TransactionTimeout):
                await turn.create_turn_endpoint(
                    Collector, address_of(server, "udp"), *credentials()
                )
            dropped = requests(server, "allocate")
            assert len(dropped) == 3  # the first try and both retransmissions
            assert {(r["outcome"], r["fault"]) for r in dropped} == {("dropped", "drop")}

    run(scenario())


def test_delayed_binding_is_answered_once_after_the_delay() -> None:
    config = base_config(faults={"delay": [{"method": "binding", "seconds": 0.4}]})

    async def scenario() -> None:
        async with running(config) as server:
            client = await RawClient.open()
            request = _request(stun.Method.BINDING)
            start = time.monotonic()
            client.transport.sendto(bytes(request), address_of(server, "udp"))
            response, _ = await client.request(request, address_of(server, "udp"))  # resent
            assert time.monotonic() - start >= 0.35
            assert response.attributes["XOR-MAPPED-ADDRESS"] == client.transport.get_extra_info(
                "sockname"
            )
            await asyncio.sleep(0.1)
            assert client.protocol.received.empty()  # the retransmission got no second answer
            assert [r["fault"] for r in requests(server, "binding")] == ["delay"]
            client.transport.close()

    run(scenario())


def _free_port() -> int:
    """A port free for UDP on 127.0.0.1 and 127.0.0.2 (checked, then released)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            for address in ("127.0.0.1", "127.0.0.2"):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as check:
                    check.bind((address, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


def test_rfc5780_change_request_is_answered_from_the_other_socket() -> None:
    primary, alternate = _free_port(), _free_port()
    config = base_config(
        listen=[{"address": "127.0.0.1", "port": primary, "transport": "udp"}],
        alternate={"address": "127.0.0.2", "port": alternate},
    )

    async def scenario() -> None:
        async with running(config):
            client = await RawClient.open()
            a_p, b_q = ("127.0.0.1", primary), ("127.0.0.2", alternate)
            expected = {0: a_p, 0x02: ("127.0.0.1", alternate), 0x04: ("127.0.0.2", primary)}
            expected[0x06] = b_q
            for flags, origin in expected.items():
                request = _request(stun.Method.BINDING, **{"CHANGE-REQUEST": flags})
                response, source = await client.request(request, a_p)
                assert source == origin == response.attributes["RESPONSE-ORIGIN"]
                assert response.attributes["OTHER-ADDRESS"] == b_q
            response, source = await client.request(_request(stun.Method.BINDING), b_q)
            assert source == b_q and response.attributes["OTHER-ADDRESS"] == a_p
            client.transport.close()

    run(scenario())


def test_allocation_expires_without_refresh() -> None:
    config = base_config(
        auth={"mode": "none"}, lifetimes={"allocation_default": 1, "allocation_max": 1}
    )

    async def scenario() -> None:
        async with running(config) as server:
            server.sweep_interval = 0.1
            client = await RawClient.open()
            allocate = _request(stun.Method.ALLOCATE, **{"REQUESTED-TRANSPORT": 0x11000000})
            response, _ = await client.request(allocate, address_of(server, "udp"))
            assert response.attributes["LIFETIME"] == 1
            await asyncio.sleep(1.3)
            assert len(server.turn.allocations) == 0
            ended = [r for r in server.log.records if r["event"] == "allocation_end"]
            assert ended[0]["end"] == "expired"
            refresh = _request(stun.Method.REFRESH)
            response, _ = await client.request(refresh, address_of(server, "udp"))
            assert response.error_code == 437
            client.transport.close()

    run(scenario())


def test_cli_prints_ready_logs_requests_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "requests.jsonl"
    config = base_config(
        listen=[{"address": "127.0.0.1", "port": port, "transport": "udp"}],
        request_log=str(log),
    )
    (tmp_path / "config.json").write_text(json.dumps(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "lab.servers.mock_turn", "--config", str(tmp_path / "config.json")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "READY\n"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(2)
            client.bind(("127.0.0.1", 0))
            client.sendto(bytes(_request(stun.Method.BINDING)), ("127.0.0.1", port))
            answer = stun.parse_message(client.recv(2048))
            assert answer.attributes["XOR-MAPPED-ADDRESS"] == client.getsockname()
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        assert process.stdout.read() == ""  # exactly one line
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    entry = json.loads(log.read_text().splitlines()[0])
    assert (entry["method"], entry["outcome"], entry["transport"]) == ("binding", "success", "udp")
    assert set(entry) >= {"t", "client", "error_code", "reason", "fault", "peer"}


def test_cli_rejects_a_bad_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"listen": [], "bogus": 1}))
    result = subprocess.run(
        [sys.executable, "-m", "lab.servers.mock_turn", "--config", str(tmp_path / "config.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 2 and "bogus" in result.stderr and result.stdout == ""
