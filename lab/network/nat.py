"""NAT behaviour in RFC 4787's words, and the nftables ruleset that gives it.

Mapping says when the NAT reuses a public port (endpoint-independent: one
mapping per inside address and port; address-dependent: one per destination
address; address-and-port-dependent: one per destination address and port).
Filtering says which outside packets may come in through a mapping.

Plain masquerade gives endpoint-independent mapping only by luck (it keeps the
inside port when it can) and address-and-port-dependent filtering (conntrack's
5-tuple). Everything else is built from what the NAT learns: a filter chain
after source NAT records each UDP mapping in nftables dynamic maps (inside
endpoint -> public port, public port -> inside endpoint, public port . remote
address), and the NAT chains look those up. Elements live `udp_timeout`
seconds after the last outbound packet, like the mapping they describe.
Only UDP gets these behaviours; TCP is masqueraded (ICE here is UDP; TCP only
carries TURN to the server). Rendering is pure so it is unit-tested without root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from lab.core.documents import JsonObject
from lab.core.errors import LabInputError
from lab.network.firewall import interface_set

EI = "endpoint-independent"
AD = "address-dependent"
APD = "address-and-port-dependent"
BEHAVIOURS = (EI, AD, APD)
#: The name of the rule that drops what a filtering behaviour lets in through no mapping.
FILTER_NAMES = {
    EI: "no mapping for this port",
    AD: "address-restricted filter",
    APD: "port-restricted filter",
}


@dataclass(frozen=True)
class NatBehaviour:
    """What a NAT node does to UDP and TCP flows between its inside and its uplink."""

    mapping: str = EI
    filtering: str = APD
    hairpinning: bool = False
    port_preservation: bool = True
    udp_timeout: int = 30

    @property
    def preset(self) -> str | None:
        """The classic name of this mapping/filtering pair, if it has one."""
        for name, (mapping, filtering) in PRESETS.items():
            if (mapping, filtering) == (self.mapping, self.filtering):
                return name
        return None

    def describe(self) -> JsonObject:
        return {"preset": self.preset, **asdict(self)}


PRESETS: dict[str, tuple[str, str]] = {
    "full-cone": (EI, EI),
    "restricted-cone": (EI, AD),
    "port-restricted-cone": (EI, APD),
    "symmetric": (APD, APD),
}


def nat_from_spec(spec: str | JsonObject | None, where: str) -> NatBehaviour | None:
    """Build a NatBehaviour from a scenario's `nat:` value (preset name or fields)."""
    if spec is None or spec == "none":
        return None
    if isinstance(spec, str):
        spec = {"preset": spec}
    fields = dict(spec)
    preset = fields.pop("preset", None)
    if preset is not None:
        if preset not in PRESETS:
            raise LabInputError(f"{where}: unknown NAT preset '{preset}'")
        mapping, filtering = PRESETS[preset]
        fields.setdefault("mapping", mapping)
        fields.setdefault("filtering", filtering)
    for key in ("mapping", "filtering"):
        if fields.get(key, EI) not in BEHAVIOURS:
            raise LabInputError(f"{where}.{key}: unknown behaviour '{fields[key]}'")
    return NatBehaviour(**fields)


def _declarations(timeout: int) -> list[str]:
    dynamic = f"flags dynamic, timeout; timeout {timeout}s;"
    return [
        "# inside address . inside port -> public address . public port (one per endpoint)",
        f"map ei_out {{ type ipv4_addr . inet_service : ipv4_addr . inet_service; {dynamic} }}",
        "# inside endpoint . remote address -> public address . port (one per destination)",
        "map ad_out { type ipv4_addr . inet_service . ipv4_addr : ipv4_addr . inet_service; "
        f"{dynamic} }}",
        "# public port -> the inside endpoint it belongs to",
        f"map inbound {{ type inet_service : ipv4_addr . inet_service; {dynamic} }}",
        "# public port . remote address the inside endpoint has sent to",
        f"set contacted {{ type inet_service . ipv4_addr; {dynamic} }}",
        "# public ports in use, so a fresh mapping never takes one",
        f"set mapped_ports {{ type inet_service; {dynamic} }}",
    ]


def _udp_snat(behaviour: NatBehaviour, out: str) -> list[str]:
    """Source NAT for UDP leaving through the uplink: reuse a mapping, else make one."""
    udp = f"{out} meta l4proto udp"
    rules = []
    if behaviour.mapping == EI:
        rules.append(f"{udp} snat ip to ip saddr . udp sport map @ei_out")
    elif behaviour.mapping == AD:
        rules.append(f"{udp} snat ip to ip saddr . udp sport . ip daddr map @ad_out")
    # A fresh mapping keeps the inside port if asked and if no mapping holds it yet.
    if behaviour.port_preservation:
        rules.append(f"{udp} udp sport @mapped_ports masquerade fully-random")
        rules.append(f"{udp} masquerade")
    else:
        rules.append(f"{udp} masquerade fully-random")
    return rules


def _learning(behaviour: NatBehaviour, out: str) -> list[str]:
    """Record each UDP mapping after source NAT (the packet then carries the public port)."""
    udp = f"{out} ct direction original meta l4proto udp"
    inside = "ct original ip saddr . ct original proto-src"
    public = "ip saddr . udp sport"
    rules = [
        f"{udp} update @mapped_ports {{ udp sport }}",
        f"{udp} update @inbound {{ udp sport : {inside} }}",
        f"{udp} update @contacted {{ udp sport . ip daddr }}",
    ]
    if behaviour.mapping == EI:
        rules.append(f"{udp} update @ei_out {{ {inside} : {public} }}")
    elif behaviour.mapping == AD:
        rules.append(f"{udp} update @ad_out {{ {inside} . ip daddr : {public} }}")
    return rules


def _inbound_dnat(behaviour: NatBehaviour, uplink: str, public: str) -> list[str]:
    """Unsolicited UDP from outside: which packets a mapping lets in (filtering)."""
    to_mapping = f'iifname "{uplink}" ip daddr {public} meta l4proto udp'
    if behaviour.filtering == EI:
        return [f"{to_mapping} dnat ip to udp dport map @inbound"]
    if behaviour.filtering == AD:
        return [f"{to_mapping} udp dport . ip saddr @contacted dnat ip to udp dport map @inbound"]
    return []  # APD: only replies matching conntrack's 5-tuple come in


def _hairpin(
    behaviour: NatBehaviour, inside: list[str], public: str
) -> tuple[list[str], list[str]]:
    """Inside to the NAT's own public address: loop back to the mapped inside endpoint,
    with the sender's public address as source (RFC 4787 REQ-9)."""
    if not behaviour.hairpinning or not inside:
        return [], []
    lan = interface_set(inside)
    dnat = [f"iifname {lan} ip daddr {public} meta l4proto udp dnat ip to udp dport map @inbound"]
    looped = f"iifname {lan} oifname {lan} ct status dnat meta l4proto udp"
    snat = []
    if behaviour.mapping == EI:
        snat.append(f"{looped} snat ip to ip saddr . udp sport map @ei_out")
    snat.append(f"{looped} snat ip to {public}")
    return dnat, snat


def render_nat(
    behaviour: NatBehaviour,
    uplink: str,
    public: str,
    inside: list[str],
    services: Sequence[int] = (),
) -> str:
    """An nftables table that gives `behaviour` to traffic between `inside` and `uplink`,
    whose address is `public`; `services` are UDP ports the NAT itself serves on its
    public address (a VPN concentrator's WireGuard)."""
    out = f'oifname "{uplink}"'
    other_mapping = "" if behaviour.mapping == EI else " fully-random"
    hairpin_dnat, hairpin_snat = _hairpin(behaviour, inside, public)
    postrouting = [
        *hairpin_snat,
        *_udp_snat(behaviour, out),
        f"{out} masquerade{other_mapping}",
    ]
    prerouting = _inbound_dnat(behaviour, uplink, public) + hairpin_dnat
    input_rules = [
        "# Unsolicited packets to the NAT itself are dropped silently, as home routers do;",
        "# the comment names the filtering that let no mapping take them (lab trace).",
        *_served(uplink, services),
        f'iifname "{uplink}" ct state new drop comment "{FILTER_NAMES[behaviour.filtering]}"',
    ]
    if not behaviour.hairpinning and inside:
        input_rules += [
            "# No hairpinning: inside packets to the public address are dropped.",
            f"iifname {interface_set(inside)} ip daddr {public} meta l4proto udp drop "
            'comment "no hairpinning"',
        ]
    chains = {
        "postrouting": ("type nat hook postrouting priority srcnat;", postrouting),
        "prerouting": ("type nat hook prerouting priority dstnat;", prerouting),
        "learn": ("type filter hook postrouting priority srcnat + 100;", _learning(behaviour, out)),
        "input": ("type filter hook input priority filter;", input_rules),
    }
    body = [f"    {line}" for line in _declarations(behaviour.udp_timeout)]
    for name, (hook, rules) in chains.items():
        body.append(f"    chain {name} {{")
        body.append(f"        {hook} policy accept;")
        body += [f"        {rule}" for rule in rules]
        body.append("    }")
    return "table ip icelab_nat {\n" + "\n".join(body) + "\n}\n"


def _served(uplink: str, services: Sequence[int]) -> list[str]:
    """Accept what the NAT itself serves, before the drop of unsolicited packets."""
    if not services:
        return []
    ports = ", ".join(str(port) for port in services)
    return [f'iifname "{uplink}" udp dport {{ {ports} }} accept comment "served by the NAT itself"']


def conntrack_sysctls(behaviour: NatBehaviour) -> dict[str, str]:
    """Per-namespace conntrack settings: how long an idle UDP mapping lives."""
    return {
        "net.netfilter.nf_conntrack_udp_timeout": str(behaviour.udp_timeout),
        "net.netfilter.nf_conntrack_udp_timeout_stream": str(behaviour.udp_timeout),
    }
