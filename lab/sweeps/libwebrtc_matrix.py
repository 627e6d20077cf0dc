"""libwebrtc's P2P connectivity matrix, as data: what `lab matrix` is checked against.

Read from libwebrtc's `p2p/base/p2p_transport_channel_unittest.cc` (`P2PTransportChannel-
MatrixTest::kMatrix`): rows are the controlling endpoint (ep1, the lab's viewer), columns
the controlled one (ep2, the master); a cell names the selected pair as the controlling
side sees it (its local candidate type and protocol, then the remote one's). libwebrtc's
current source has ten configurations; the two proxy configurations (PROXY_HTTPS,
PROXY_SOCKS) and their row and column are from its 2016 revision
(`webrtc/p2p/base/p2ptransportchannel_unittest.cc`), before proxy support left the
test. The first ten rows and columns are the same in both.

How libwebrtc builds each configuration (`ConfigureEndpoint`): OPEN is a public address;
a NAT_* is one NAT of that type (its NAT_OPEN_CONE: endpoint-independent mapping and no
filtering, i.e. full cone); NAT_DOUBLE_CONE is two cascaded open-cone NATs;
NAT_SYMMETRIC_THEN_CONE a symmetric NAT facing the internet with an open-cone NAT inside
it; BLOCK_* are public addresses behind a firewall (UDP in and out blocked; also TCP in;
or everything but TCP out to 80/443); PROXY_* block UDP and all TCP but to the proxy.

Entries libwebrtc leaves empty (`nullptr`, or `LTRT`/`LSRS`, defined as NULL) are tests
it does not run: the lab shows them as "no expectation" with libwebrtc's own reason.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The lab's matrix row for each libwebrtc configuration, in libwebrtc's order.
CONFIGS: dict[str, str] = {
    "open": "OPEN",
    "full-cone": "NAT_FULL_CONE",
    "restricted-cone": "NAT_ADDR_RESTRICTED",
    "port-restricted-cone": "NAT_PORT_RESTRICTED",
    "symmetric": "NAT_SYMMETRIC",
    "double-cone": "NAT_DOUBLE_CONE",
    "symmetric-then-cone": "NAT_SYMMETRIC_THEN_CONE",
    "udp-blocked": "BLOCK_UDP",
    "block-udp-and-incoming-tcp": "BLOCK_UDP_AND_INCOMING_TCP",
    "tcp-web-only": "BLOCK_ALL_BUT_OUTGOING_HTTP",
    "https-proxy": "PROXY_HTTPS",
    "socks5-proxy": "PROXY_SOCKS",
}

#: libwebrtc's predefined results (`kLocalUdpToStunUdp`, ...) by the source's shorthand:
#: (controlling type, protocol, controlled type, protocol). "local" is a host candidate,
#: "stun" a server-reflexive one, as libwebrtc named them.
RESULTS: dict[str, tuple[str, str, str, str]] = {
    "LULU": ("host", "udp", "host", "udp"),
    "LUSU": ("host", "udp", "srflx", "udp"),
    "LUPU": ("host", "udp", "prflx", "udp"),
    "PULU": ("prflx", "udp", "host", "udp"),
    "SULU": ("srflx", "udp", "host", "udp"),
    "SUSU": ("srflx", "udp", "srflx", "udp"),
    "SUPU": ("srflx", "udp", "prflx", "udp"),
    "PUSU": ("prflx", "udp", "srflx", "udp"),
    "LURU": ("host", "udp", "relay", "udp"),
    "PURU": ("prflx", "udp", "relay", "udp"),
    "RUPU": ("relay", "udp", "prflx", "udp"),
    "LTLT": ("host", "tcp", "host", "tcp"),
    "LTPT": ("host", "tcp", "prflx", "tcp"),
    "PTLT": ("prflx", "tcp", "host", "tcp"),
}

#: Why libwebrtc has no expectation for a cell, by what the source wrote there.
NO_EXPECTATION: dict[str, str] = {
    "NULL": "not implemented in libwebrtc's test (its NAT emulation has no TCP, and it "
    "has no HTTP proxy support)",
    "LTRT": "libwebrtc expects a TCP relay pair but disables the test: its test relay "
    "server cannot accept external TCP",
    "LSRS": "libwebrtc expects an SSL-TCP relay pair but disables the test: its test relay "
    "server cannot accept external TCP",
}

#: kMatrix, row by row (ep1, controlling), columns in the same order (ep2, controlled).
#: Columns: OPEN CONE ADDR PORT SYMM 2CON SCON !UDP !TCP HTTP PRXH PRXS.
KMATRIX: tuple[tuple[str, ...], ...] = tuple(
    tuple(row.split())
    for row in (
        "LULU LUSU LUSU LUSU LUPU LUSU LUPU LTPT LTPT LSRS NULL LTPT",  # OP
        "SULU SUSU SUSU SUSU SUPU SUSU SUPU NULL NULL LSRS NULL LTRT",  # CO
        "SULU SUSU SUSU SUSU SUPU SUSU SUPU NULL NULL LSRS NULL LTRT",  # AD
        "SULU SUSU SUSU SUSU RUPU SUSU RUPU NULL NULL LSRS NULL LTRT",  # PO
        "PULU PUSU PUSU PURU PURU PUSU PURU NULL NULL LSRS NULL LTRT",  # SY
        "SULU SUSU SUSU SUSU SUPU SUSU SUPU NULL NULL LSRS NULL LTRT",  # 2C
        "PULU PUSU PUSU PURU PURU PUSU PURU NULL NULL LSRS NULL LTRT",  # SC
        "LTPT NULL NULL NULL NULL NULL NULL LTPT LTPT LSRS NULL LTRT",  # !U
        "PTLT NULL NULL NULL NULL NULL NULL PTLT LTRT LSRS NULL LTRT",  # !T
        "LSRS LSRS LSRS LSRS LSRS LSRS LSRS LSRS LSRS LSRS NULL LSRS",  # HT
        "NULL NULL NULL NULL NULL NULL NULL NULL NULL NULL NULL NULL",  # PRXH
        "LTRT LTRT LTRT LTRT LTRT LTRT LTRT LTRT LTRT LSRS NULL LTRT",  # PRXS
    )
)


@dataclass(frozen=True)
class Expectation:
    """libwebrtc's entry for one cell: the selected pair from the controlling side, or
    None with the reason it has none."""

    code: str
    local: str | None = None
    local_protocol: str | None = None
    remote: str | None = None
    remote_protocol: str | None = None

    @property
    def exists(self) -> bool:
        return self.local is not None

    @property
    def relayed(self) -> bool | None:
        """Whether the expected pair goes through a TURN relay (None: no expectation)."""
        if not self.exists:
            return None
        return "relay" in (self.local, self.remote)

    @property
    def reason(self) -> str | None:
        """Why libwebrtc has no expectation here (None when it has one)."""
        return None if self.exists else NO_EXPECTATION[self.code]

    def text(self) -> str:
        """`srflx-prflx`, `host-prflx tcp`, or `none`."""
        if not self.exists:
            return "none"
        pair = f"{self.local}-{self.remote}"
        return pair if self.local_protocol == "udp" else f"{pair} {self.local_protocol}"

    def describe(self) -> dict[str, object]:
        """The entry for a saved matrix document."""
        return {
            "code": self.code,
            "local": self.local,
            "local_protocol": self.local_protocol,
            "remote": self.remote,
            "remote_protocol": self.remote_protocol,
            "relayed": self.relayed,
            "reason": self.reason,
        }


def expectation(viewer: str, master: str) -> Expectation | None:
    """libwebrtc's expectation for a viewer (controlling) and master (controlled) matrix
    row, or None when a row is not one of libwebrtc's configurations (the lab's own
    variants)."""
    names = list(CONFIGS)
    if viewer not in CONFIGS or master not in CONFIGS:
        return None
    code = KMATRIX[names.index(viewer)][names.index(master)]
    if code not in RESULTS:
        return Expectation(code)
    return Expectation(code, *RESULTS[code])
