"""Stateful firewalls: declarative rules per direction, rendered as one nftables table.

Outbound is traffic from a node's inside interfaces out through its uplink;
inbound is the reverse. Replies to allowed flows always pass (stateful).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lab.core.documents import JsonObject
from lab.core.errors import LabInputError

DNS = 53
#: Resolves a host name of the topology to its addresses; `where` is the field (relative
#: to the firewall) that named it, for the error if there is no such host.
HostResolver = Callable[[str, str], Sequence[str]]


@dataclass(frozen=True)
class Rule:
    action: str  # allow | deny
    protocol: str = "any"  # udp | tcp | icmp | any
    ports: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()  # node names the addresses came from (for `lab show`)
    #: DNS names (`*.kinesisvideo.us-west-2.amazonaws.com`): the rule matches the addresses
    #: the node's LAN resolver has answered for them, an nftables set it fills
    #: (lab/servers/dns.py), as enterprise firewalls allow by name.
    names: tuple[str, ...] = ()
    name_set: str | None = None


@dataclass(frozen=True)
class Direction:
    default: str = "allow"
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True)
class FirewallPolicy:
    outbound: Direction = field(default_factory=Direction)
    inbound: Direction = field(default_factory=Direction)
    deny_with: str = "drop"  # drop | reject
    preset: str | None = None
    allow_hosts: tuple[str, ...] = ()  # allowlist: the hosts it lets through
    between_inside: str = "allow"  # deny: inside segments cannot reach each other directly
    #: https | socks5: the node runs that proxy for its inside (lab/servers/proxy.py), the
    #: only way out when the firewall forwards nothing.
    proxy: str | None = None

    def name_sets(self) -> dict[str, tuple[str, ...]]:
        """nftables set -> the DNS names whose addresses fill it, for the rules by name."""
        rules = (*self.outbound.rules, *self.inbound.rules)
        return {r.name_set: r.names for r in rules if r.name_set}


def _rule(action: str, protocol: str = "any", ports: tuple[int, ...] = ()) -> Rule:
    return Rule(action, protocol, tuple(str(p) for p in ports))


#: Proxy-only edges (libwebrtc's PROXY_HTTPS, PROXY_SOCKS): nothing is forwarded either
#: way, not even DNS; the inside reaches out only through the proxy the node runs, whose
#: own connections leave from the node (not forwarded, so not filtered here).
PROXY_PRESETS: dict[str, str] = {"https-proxy": "https", "socks5-proxy": "socks5"}
_FORWARD_NOTHING = {"outbound": Direction("deny"), "inbound": Direction("deny")}

PRESETS: dict[str, dict[str, Direction]] = {
    "udp-blocked": {
        "outbound": Direction("allow", (_rule("allow", "udp", (DNS,)), _rule("deny", "udp"))),
    },
    "tcp-web-only": {
        "outbound": Direction(
            "deny", (_rule("allow", "udp", (DNS,)), _rule("allow", "tcp", (80, 443)))
        ),
    },
    "block-udp-and-incoming-tcp": {
        "outbound": Direction("allow", (_rule("allow", "udp", (DNS,)), _rule("deny", "udp"))),
        "inbound": Direction("allow", (_rule("deny", "tcp"),)),
    },
    **{name: _FORWARD_NOTHING for name in PROXY_PRESETS},
}


def allowlist(addresses: Sequence[str], hosts: Sequence[str] = ()) -> dict[str, Direction]:
    """Only the named hosts (plus DNS), both ways; replies to allowed flows still pass.

    Outbound: DNS, and anything to the hosts' addresses; the rest denied. Inbound: only
    flows the hosts start (e.g. a TURN server's relayed packets); the rest denied.
    """
    allowed = (Rule("allow", addresses=tuple(addresses), hosts=tuple(hosts)),) if addresses else ()
    return {
        "outbound": Direction("deny", (_rule("allow", "udp", (DNS,)), *allowed)),
        "inbound": Direction("deny", allowed),
    }


def _resolve(resolve: HostResolver | None, where: str, hosts: Sequence[str]) -> tuple[str, ...]:
    if not hosts:
        return ()
    if resolve is None:
        raise LabInputError(f"{where}: host names need a topology to resolve them")
    addresses: list[str] = []
    for index, host in enumerate(hosts):
        for address in resolve(f"{where}[{index}]", host):
            if address not in addresses:
                addresses.append(address)
    return tuple(addresses)


def _direction(
    spec: JsonObject | None, where: str, resolve: HostResolver | None
) -> Direction | None:
    if spec is None:
        return None
    rules = []
    for index, r in enumerate(spec.get("rules", ())):
        hosts = tuple(r.get("hosts", ()))
        from_hosts = _resolve(resolve, f"{where}.rules[{index}].hosts", hosts)
        names = tuple(r.get("names", ()))
        rules.append(
            Rule(
                action=r["action"],
                protocol=r.get("protocol", "any"),
                ports=tuple(str(p) for p in r.get("ports", ())),
                addresses=tuple(r.get("addresses", ())) + from_hosts,
                hosts=hosts,
                names=names,
                name_set=f"{where}_names_{index}" if names else None,
            )
        )
    return Direction(spec.get("default", "allow"), tuple(rules))


def firewall_from_spec(
    spec: str | JsonObject | None,
    resolve: HostResolver | None = None,
    default_allow_hosts: Sequence[str] = (),
) -> FirewallPolicy | None:
    """Build a FirewallPolicy from a scenario's `firewall:` value (preset name or fields).

    Host names (`allow_hosts`, a rule's `hosts`) become every address of the host via
    `resolve`; an `allowlist` without `allow_hosts` allows `default_allow_hosts`.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        spec = {"preset": spec}
    allow_hosts: tuple[str, ...] = ()
    if spec.get("preset") == "allowlist":
        allow_hosts = tuple(spec.get("allow_hosts") or default_allow_hosts)
        addresses = _resolve(resolve, "allow_hosts", allow_hosts)
        preset = allowlist(addresses, allow_hosts)
    else:
        preset = PRESETS.get(spec.get("preset", ""), {})
    return FirewallPolicy(
        outbound=_direction(spec.get("outbound"), "outbound", resolve)
        or preset.get("outbound", Direction()),
        inbound=_direction(spec.get("inbound"), "inbound", resolve)
        or preset.get("inbound", Direction()),
        deny_with=spec.get("deny_with", "drop"),
        preset=spec.get("preset"),
        allow_hosts=allow_hosts,
        between_inside=spec.get("between_inside", "allow"),
        proxy=PROXY_PRESETS.get(spec.get("preset", "")),
    )


def _set(items: Sequence[str]) -> str:
    """One nftables value, or an anonymous set of several."""
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def interface_set(names: Sequence[str]) -> str:
    """Interface names for `iifname`/`oifname`: quoted, one or a set (NAT rules use it too)."""
    return _set([f'"{name}"' for name in names])


def _match(rule: Rule, outbound: bool) -> str:
    parts = []
    if rule.protocol in ("udp", "tcp"):
        parts.append(f"meta l4proto {rule.protocol}")
    elif rule.protocol == "icmp":
        parts.append("meta l4proto icmp")
    if rule.ports:
        if rule.protocol == "any":
            parts.append("meta l4proto { tcp, udp }")
        parts.append(f"th dport {_set(rule.ports)}")
    if rule.addresses:
        parts.append(f"ip {'daddr' if outbound else 'saddr'} {_set(rule.addresses)}")
    if rule.name_set:
        parts.append(f"ip {'daddr' if outbound else 'saddr'} @{rule.name_set}")
    return " ".join(parts)


def _verdict(action: str, deny_with: str) -> list[str]:
    if action == "allow":
        return ["accept"]
    if deny_with == "reject":
        return ["meta l4proto tcp reject with tcp reset", "reject with icmpx admin-prohibited"]
    return ["drop"]


def _comment(action: str, name: str) -> str:
    """A denying rule's name, which `nft monitor trace` prints with its verdict (the hop
    trail of `lab run --capture` names the rule that dropped a check by it)."""
    return f' comment "{name}"' if action != "allow" else ""


def _direction_rules(
    direction: Direction, selector: str, deny_with: str, outbound: bool, label: str = "firewall"
) -> list[str]:
    lines = []
    way = "outbound" if outbound else "inbound"
    for index, rule in enumerate(direction.rules):
        match = _match(rule, outbound)
        name = _comment(rule.action, f"{label}: {way} rule {index + 1}, deny {rule.protocol}")
        lines += [
            f"{selector} {match} {v}{name}".replace("  ", " ")
            for v in _verdict(rule.action, deny_with)
        ]
    name = _comment(direction.default, f"{label}: {way} default deny")
    lines += [f"{selector} {v}{name}" for v in _verdict(direction.default, deny_with)]
    return lines


def _between_inside_rules(policy: FirewallPolicy, inside_set: str) -> list[str]:
    """Client isolation: inside segments may not talk directly; what the NAT loops back
    through its public address (hairpinning, `ct status dnat`) still passes."""
    if policy.between_inside == "allow":
        return []
    selector = f"iifname {inside_set} oifname {inside_set}"
    name = _comment("deny", f"{policy.preset or 'firewall'}: inside segments isolated")
    return [f"{selector} ct status dnat accept"] + [
        f"{selector} {v}{name}" for v in _verdict("deny", policy.deny_with)
    ]


def render_firewall(policy: FirewallPolicy, uplink: str, inside: list[str]) -> str:
    """An nftables table filtering forwarded traffic between `inside` interfaces and `uplink`."""
    inside_set = interface_set(inside)
    out_selector = f'iifname {inside_set} oifname "{uplink}"'
    in_selector = f'iifname "{uplink}" oifname {inside_set}'
    label = policy.preset or "firewall"
    rules = [
        "ct state established,related accept",
        f'ct state invalid drop comment "{label}: invalid connection state"',
    ]
    rules += _direction_rules(policy.outbound, out_selector, policy.deny_with, True, label)
    rules += _direction_rules(policy.inbound, in_selector, policy.deny_with, False, label)
    rules += _between_inside_rules(policy, inside_set)
    body = "\n".join(f"        {r}" for r in rules)
    sets = "".join(
        f"    set {name} {{\n        type ipv4_addr\n    }}\n" for name in policy.name_sets()
    )
    return f"""table inet icelab_filter {{
{sets}    chain forward {{
        type filter hook forward priority filter; policy accept;
{body}
    }}
}}
"""
