"""RFC 5780 NAT behaviour discovery, run from inside a lab host.

The STUN server must answer with OTHER-ADDRESS and honour CHANGE-REQUEST (coturn
with two listening addresses, or the lab's mock). Every test gets a fresh socket,
so one test's packets never open the NAT for the next. Messages are built and
parsed with aioice's STUN codec; the lab's round trips are sub-millisecond, so a
short retransmission schedule (configurable) keeps a probe to about a second
even when the NAT drops what a test sends.

Run as `python -m lab.network.nat_discovery SERVER_IP [PORT]`: prints one JSON object.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from dataclasses import asdict, dataclass

from aioice import stun

EI = "endpoint-independent"
AD = "address-dependent"
APD = "address-and-port-dependent"
CHANGE_IP = 0x04
CHANGE_PORT = 0x02

Address = tuple[str, int]


@dataclass
class Measured:
    """What the probe saw. `nat` is False when the mapped address is the host's own."""

    local: str
    mapped: str
    other_address: str
    nat: bool
    mapping: str | None
    filtering: str | None
    hairpinning: bool | None
    port_preservation: bool


@dataclass
class Schedule:
    """How long to wait for a response: `tries` sends, `rto` seconds apart."""

    tries: int = 3
    rto: float = 0.1


def new_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 0))
    return sock


def _request(change: int = 0) -> stun.Message:
    message = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    if change:
        message.attributes["CHANGE-REQUEST"] = change
    return message


def receive(
    sock: socket.socket, transaction_id: bytes, until: float
) -> tuple[stun.Message, Address] | None:
    """The response to `transaction_id`, or None once `until` has passed."""
    while (left := until - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, origin = sock.recvfrom(2048)
        except TimeoutError:
            return None
        try:
            message = stun.parse_message(data)
        except ValueError:
            continue
        if message.transaction_id == transaction_id:
            return message, origin
    return None


def binding(
    sock: socket.socket, server: Address, schedule: Schedule, change: int = 0
) -> tuple[stun.Message, Address] | None:
    """One Binding transaction; None if no response came back through the NAT."""
    request = _request(change)
    for _ in range(schedule.tries):
        sock.sendto(bytes(request), server)
        answer = receive(sock, request.transaction_id, time.monotonic() + schedule.rto)
        if answer is not None:
            return answer
    return None


def _mapped(answer: tuple[stun.Message, Address] | None) -> Address | None:
    if answer is None:
        return None
    return tuple(answer[0].attributes["XOR-MAPPED-ADDRESS"])  # type: ignore[return-value]


def discover_mapping(primary: Address, other: Address, schedule: Schedule) -> str:
    """RFC 5780 4.3: is the mapping kept towards another address, and another port?"""
    sock = new_socket()
    first = _mapped(binding(sock, primary, schedule))
    second = _mapped(binding(sock, (other[0], primary[1]), schedule))
    if first == second:
        return EI
    third = _mapped(binding(sock, other, schedule))
    return AD if third == second else APD


def discover_filtering(primary: Address, schedule: Schedule) -> str:
    """RFC 5780 4.4: may answers come from another address, or only another port?"""
    sock = new_socket()
    if binding(sock, primary, schedule) is None:
        raise ConnectionError(f"no answer from {primary[0]}:{primary[1]}")
    if binding(sock, primary, schedule, CHANGE_IP | CHANGE_PORT) is not None:
        return EI
    if binding(sock, primary, schedule, CHANGE_PORT) is not None:
        return AD
    return APD


def discover_hairpinning(primary: Address, schedule: Schedule) -> bool:
    """RFC 5780 4.5: does a packet sent to our own mapped address come back to us?"""
    listener, sender = new_socket(), new_socket()
    mapped = _mapped(binding(listener, primary, schedule))
    if mapped is None:
        return False
    request = _request()
    for _ in range(schedule.tries):
        sender.sendto(bytes(request), mapped)
        if receive(listener, request.transaction_id, time.monotonic() + schedule.rto):
            return True
    return False


def probe(server: str, port: int = 3478, schedule: Schedule | None = None) -> Measured:
    """Mapping, filtering and hairpinning as seen from this host towards `server`."""
    schedule = schedule or Schedule()
    primary = (server, port)
    sock = new_socket()
    answer = binding(sock, primary, schedule)
    if answer is None:
        raise ConnectionError(f"no answer from the STUN server {server}:{port}")
    message, _ = answer
    if "OTHER-ADDRESS" not in message.attributes:
        raise ConnectionError(f"{server}:{port} does not support RFC 5780 (no OTHER-ADDRESS)")
    mapped = _mapped(answer)
    assert mapped is not None
    other = tuple(message.attributes["OTHER-ADDRESS"])
    local_port = sock.getsockname()[1]
    local_ip = _route_source(server)
    behind_nat = mapped != (local_ip, local_port)
    return Measured(
        local=f"{local_ip}:{local_port}",
        mapped=f"{mapped[0]}:{mapped[1]}",
        other_address=f"{other[0]}:{other[1]}",
        nat=behind_nat,
        mapping=discover_mapping(primary, other, schedule) if behind_nat else None,  # type: ignore[arg-type]
        filtering=discover_filtering(primary, schedule) if behind_nat else None,
        hairpinning=discover_hairpinning(primary, schedule) if behind_nat else None,
        port_preservation=mapped[1] == local_port,
    )


def _route_source(server: str) -> str:
    """The address this host sends from towards `server` (a connected UDP socket knows)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((server, 9))
        return sock.getsockname()[0]


def main(argv: list[str]) -> int:
    server = argv[0]
    port = int(argv[1]) if len(argv) > 1 else 3478
    rto = float(argv[2]) if len(argv) > 2 else Schedule.rto
    try:
        measured = probe(server, port, Schedule(rto=rto))
    except ConnectionError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps(asdict(measured)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
