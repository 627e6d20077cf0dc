"""The emulated service's host names, and a scenario's `dns:` block: what the public DNS
server and each LAN resolver answer (lab/servers/dns.py runs the servers that answer it)."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lab.core.documents import JsonObject
from lab.core.errors import LabInputError

DEFAULT_REGION = "us-west-2"
NAME = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@dataclass(frozen=True)
class ServiceNames:
    """The service's host names in one region. The 8 hex digits of the endpoint labels
    are derived from the region, so a scenario (and a firewall rule) can name them."""

    region: str
    token: str

    @classmethod
    def for_region(cls, region: str) -> ServiceNames:
        return cls(region, hashlib.sha256(f"ice-lab:{region}".encode()).hexdigest()[:8])

    @property
    def zone(self) -> str:
        """`kinesisvideo.<region>.amazonaws.com`: the control plane, and the zone of the rest."""
        return f"kinesisvideo.{self.region}.amazonaws.com"

    @property
    def control_plane(self) -> str:
        return self.zone

    @property
    def wss(self) -> str:
        """GetSignalingChannelEndpoint's WSS endpoint host."""
        return f"m-{self.token}.{self.zone}"

    @property
    def https(self) -> str:
        """GetSignalingChannelEndpoint's HTTPS endpoint host (GetIceServerConfig)."""
        return f"r-{self.token}.{self.zone}"

    @property
    def stun(self) -> str:
        return f"stun.{self.zone}"

    def turn(self, address: str) -> str:
        """A TURN host named after its address, as the service names them."""
        return f"{address.replace('.', '-')}.t-{self.token}.{self.zone}"

    def records(self, signaling: str, turn: Iterable[str]) -> dict[str, str]:
        """Name -> address: what the public DNS server answers."""
        turn = list(turn)
        records = {self.control_plane: signaling, self.wss: signaling, self.https: signaling}
        if turn:
            records[self.stun] = turn[0]
            records.update({self.turn(address): address for address in turn})
        return records


def covers(pattern: str, name: str) -> bool:
    """Does a scenario's name cover `name`? `x.y` covers itself and the names under it,
    `*.x.y` only the names under it (as a firewall's `*.` rule does)."""
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern or name.endswith("." + pattern)


@dataclass(frozen=True)
class Answers:
    """How one resolver departs from the truth: names it does not know, names it gets wrong."""

    no_answer: tuple[str, ...] = ()
    wrong_answer: dict[str, str] = field(default_factory=dict)

    def apply(self, records: dict[str, str]) -> dict[str, str]:
        """The records as this resolver answers them."""
        kept = {
            name: address
            for name, address in records.items()
            if not any(covers(p, name) for p in self.no_answer)
        }
        return {**kept, **self.wrong_answer}


@dataclass(frozen=True)
class DnsSettings:
    """A scenario's `dns:`: the public server's answers and the LAN resolvers by node."""

    public: Answers = field(default_factory=Answers)
    lan_resolvers: dict[str, Answers] = field(default_factory=dict)


def dns_from_spec(
    spec: JsonObject | None, fail: Callable[[str, str], LabInputError]
) -> DnsSettings:
    """The scenario's `dns:` block, checked; `fail(field, message)` names file and field."""
    spec = spec or {}
    lan = {
        node: _answers(answers or {}, f"dns.lan_resolvers.{node}", fail)
        for node, answers in (spec.get("lan_resolvers") or {}).items()
    }
    return DnsSettings(_answers(spec, "dns", fail), lan)


def _answers(spec: JsonObject, where: str, fail: Callable[[str, str], LabInputError]) -> Answers:
    for index, name in enumerate(spec.get("no_answer", ())):
        if not NAME.match(name):
            raise fail(f"{where}.no_answer[{index}]", f"'{name}' is not a DNS name")
    wrong = dict(spec.get("wrong_answer") or {})
    for name, address in wrong.items():
        if not NAME.match(name) or name.startswith("*."):
            raise fail(f"{where}.wrong_answer", f"'{name}' is not a DNS name (no wildcards)")
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            raise fail(
                f"{where}.wrong_answer.{name}", f"'{address}' is not an IPv4 address"
            ) from None
    return Answers(tuple(spec.get("no_answer", ())), wrong)
