"""What nftables did with each traced STUN packet, read from `nft monitor trace`.

Every traced packet prints a `packet:` line per hook (its interfaces, addresses, ports
and the first 12 bytes of its UDP payload: STUN type, length, magic cookie and the first
4 bytes of the transaction id), then each rule that matched with its verdict, then the
chain's policy. A rule's comment (lab/network/nat.py, firewall.py) names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lab.observations.capture.capture import NO_ROUTE
from lab.observations.ice import endpoint

_LINE = re.compile(r"^trace id (\w+) (\w+) (\S+) (\S+) (.*)$")
_FIELDS = {
    "iif": re.compile(r'\biif "([^"]+)"'),
    "oif": re.compile(r'\boif "([^"]+)"'),
    "saddr": re.compile(r"\bip6? saddr (\S+)"),
    "daddr": re.compile(r"\bip6? daddr (\S+)"),
    "sport": re.compile(r"\budp sport (\d+)"),
    "dport": re.compile(r"\budp dport (\d+)"),
    "payload": re.compile(r"@th,64,96 0x([0-9a-f]+)"),
}
_RULE = re.compile(r"^rule (.*) \(verdict (\w+)\)$")
_COMMENT = re.compile(r'comment "([^"]*)"')


@dataclass
class Traced:
    """One STUN packet as one node's nftables saw it from its arrival on."""

    node: str
    iif: str
    src: str  # address:port as it arrived
    dst: str
    transaction_prefix: str  # the first 4 bytes of the STUN transaction id, hex
    #: (chain, what decided: rule text or `policy accept`, verdict), in order.
    steps: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def dropped_by(self) -> str | None:
        """The rule that dropped (or rejected) the packet, by its comment, else its text."""
        for _chain, rule, verdict in self.steps:
            if verdict == "drop" or " reject" in f" {rule}":
                found = _COMMENT.search(rule)
                return found.group(1) if found else rule
        return None

    @property
    def unroutable(self) -> bool:
        """Whether the node had no route for it (the trace table's fib rule matched)."""
        return any(NO_ROUTE in rule for _chain, rule, _verdict in self.steps)

    @property
    def forwarded(self) -> bool:
        return any(chain.endswith(("postrouting", "learn")) for chain, _, _ in self.steps)


def _packet_fields(text: str) -> dict[str, str]:
    found = {}
    for name, pattern in _FIELDS.items():
        match = pattern.search(text)
        found[name] = match.group(1) if match else ""
    return found


def parse_trace(node: str, text: str) -> list[Traced]:
    """Every packet in one node's `nft monitor trace` output, in arrival order."""
    packets: list[Traced] = []
    current: dict[str, Traced] = {}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        trace_id, _family, table, chain, rest = match.groups()
        where = f"{table} {chain}"
        if rest.startswith("packet:"):
            fields = _packet_fields(rest)
            if fields["iif"] and not fields["oif"] and table.endswith("trace"):
                payload = fields["payload"].rjust(24, "0")
                traced = Traced(
                    node,
                    fields["iif"],
                    endpoint(fields["saddr"], fields["sport"]),
                    endpoint(fields["daddr"], fields["dport"]),
                    payload[16:24],
                )
                packets.append(traced)
                current[trace_id] = traced
            continue
        traced = current.get(trace_id)
        if traced is None:
            continue
        rule = _RULE.match(rest)
        if rule:
            traced.steps.append((where, rule.group(1), rule.group(2)))
        elif rest.startswith("policy"):
            traced.steps.append((where, rest.strip(), rest.split()[-1]))
    return packets


def read_traces(directory: Path, nodes: list[str]) -> dict[str, list[Traced]]:
    """Each traced node's packets, from `<node>.trace` in the capture directory."""
    traces = {}
    for node in nodes:
        path = directory / f"{node}.trace"
        traces[node] = parse_trace(node, path.read_text(errors="replace")) if path.exists() else []
    return traces
