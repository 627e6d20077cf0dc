"""NAT behaviour in RFC 4787's words, and the nftables ruleset that gives it.

Mapping says when the NAT reuses a public port (endpoint-independent: one
mapping per inside address and port; address-and-port-dependent: a new one for
every destination). Filtering says which outside packets may come back in.
Rendering is pure so it is unit-tested without root.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lab.errors import LabInputError

EI = "endpoint-independent"
AD = "address-dependent"
APD = "address-and-port-dependent"


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

    def describe(self) -> dict[str, Any]:
        return {"preset": self.preset, **asdict(self)}


PRESETS: dict[str, tuple[str, str]] = {
    "full-cone": (EI, EI),
    "restricted-cone": (EI, AD),
    "port-restricted-cone": (EI, APD),
    "symmetric": (APD, APD),
}

#: The behaviours this version renders; others are refused with a clear message.
SUPPORTED = {(EI, APD), (APD, APD)}


def nat_from_spec(spec: str | dict[str, Any] | None, where: str) -> NatBehaviour | None:
    """Build a NatBehaviour from a scenario's `nat:` value (preset name or fields)."""
    if spec is None or spec == "none":
        return None
    if isinstance(spec, str):
        spec = {"preset": spec}
    fields = dict(spec)
    preset = fields.pop("preset", None)
    if preset is not None:
        mapping, filtering = PRESETS[preset]
        fields.setdefault("mapping", mapping)
        fields.setdefault("filtering", filtering)
    behaviour = NatBehaviour(**fields)
    if (behaviour.mapping, behaviour.filtering) not in SUPPORTED:
        raise LabInputError(
            f"{where}: mapping {behaviour.mapping} with filtering {behaviour.filtering} "
            "is not supported yet (supported: port-restricted-cone, symmetric)"
        )
    return behaviour


def render_nat(behaviour: NatBehaviour, uplink: str) -> str:
    """An nftables table that source-NATs everything leaving through `uplink`."""
    randomise = " fully-random" if behaviour.mapping == APD else ""
    return f"""table ip icelab_nat {{
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "{uplink}" masquerade{randomise}
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        # Unsolicited packets to the NAT itself are dropped silently, as home routers do.
        iifname "{uplink}" ct state new drop
    }}
}}
"""


def conntrack_sysctls(behaviour: NatBehaviour) -> dict[str, str]:
    """Per-namespace conntrack settings: how long an idle UDP mapping lives."""
    return {
        "net.netfilter.nf_conntrack_udp_timeout": str(behaviour.udp_timeout),
        "net.netfilter.nf_conntrack_udp_timeout_stream": str(max(behaviour.udp_timeout, 120)),
    }
