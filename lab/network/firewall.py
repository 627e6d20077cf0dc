"""Stateful firewalls: declarative rules per direction, rendered as one nftables table.

Outbound is traffic from a node's inside interfaces out through its uplink;
inbound is the reverse. Replies to allowed flows always pass (stateful).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DNS = 53


@dataclass(frozen=True)
class Rule:
    action: str  # allow | deny
    protocol: str = "any"  # udp | tcp | icmp | any
    ports: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()


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


def _rule(action: str, protocol: str = "any", ports: tuple[int, ...] = ()) -> Rule:
    return Rule(action, protocol, tuple(str(p) for p in ports))


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
}


def _direction(spec: dict[str, Any] | None) -> Direction | None:
    if spec is None:
        return None
    rules = tuple(
        Rule(
            action=r["action"],
            protocol=r.get("protocol", "any"),
            ports=tuple(str(p) for p in r.get("ports", ())),
            addresses=tuple(r.get("addresses", ())),
        )
        for r in spec.get("rules", ())
    )
    return Direction(spec.get("default", "allow"), rules)


def firewall_from_spec(spec: str | dict[str, Any] | None) -> FirewallPolicy | None:
    """Build a FirewallPolicy from a scenario's `firewall:` value (preset name or fields)."""
    if spec is None:
        return None
    if isinstance(spec, str):
        spec = {"preset": spec}
    preset = PRESETS.get(spec.get("preset", ""), {})
    return FirewallPolicy(
        outbound=_direction(spec.get("outbound")) or preset.get("outbound", Direction()),
        inbound=_direction(spec.get("inbound")) or preset.get("inbound", Direction()),
        deny_with=spec.get("deny_with", "drop"),
        preset=spec.get("preset"),
    )


def _set(items: tuple[str, ...]) -> str:
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


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
    return " ".join(parts)


def _verdict(action: str, deny_with: str) -> list[str]:
    if action == "allow":
        return ["accept"]
    if deny_with == "reject":
        return ["meta l4proto tcp reject with tcp reset", "reject with icmpx admin-prohibited"]
    return ["drop"]


def _direction_rules(
    direction: Direction, selector: str, deny_with: str, outbound: bool
) -> list[str]:
    lines = []
    for rule in direction.rules:
        match = _match(rule, outbound)
        lines += [
            f"{selector} {match} {v}".replace("  ", " ") for v in _verdict(rule.action, deny_with)
        ]
    lines += [f"{selector} {v}" for v in _verdict(direction.default, deny_with)]
    return lines


def render_firewall(policy: FirewallPolicy, uplink: str, inside: list[str]) -> str:
    """An nftables table filtering forwarded traffic between `inside` interfaces and `uplink`."""
    inside_set = _set(tuple(f'"{name}"' for name in inside))
    out_selector = f'iifname {inside_set} oifname "{uplink}"'
    in_selector = f'iifname "{uplink}" oifname {inside_set}'
    rules = ["ct state established,related accept", "ct state invalid drop"]
    rules += _direction_rules(policy.outbound, out_selector, policy.deny_with, outbound=True)
    rules += _direction_rules(policy.inbound, in_selector, policy.deny_with, outbound=False)
    body = "\n".join(f"        {r}" for r in rules)
    return f"""table inet icelab_filter {{
    chain forward {{
        type filter hook forward priority filter; policy accept;
{body}
    }}
}}
"""
