"""`lab matrix` on real runs: the cascaded-NAT cells libwebrtc defines, firewall cells, a
line per cell when piped, saved as JSON (root)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.sweeps.matrix import describe_cell

from .helpers import lab

pytestmark = pytest.mark.root


def test_cascaded_nats_agree_with_libwebrtc_and_each_cell_is_one_line(tmp_path: Path) -> None:
    """double-cone is two open cones, so a symmetric-then-cone peer's checks get in and the
    pair is direct both ways (the lab's earlier port-restricted cascade needed a relay)."""
    path = tmp_path / "matrix.json"
    completed = lab(
        "matrix", "--nat", "double-cone,symmetric-then-cone", "--json", str(path), "-j", "2"
    )
    assert completed.returncode == 0, completed.stderr
    document = json.loads(path.read_text())
    by_pair = {(c["viewer"], c["master"]): c for c in document["cells"]}
    assert set(by_pair) == {
        (v, m)
        for v in ("double-cone", "symmetric-then-cone")
        for m in ("double-cone", "symmetric-then-cone")
    }
    assert all(c["result"]["outcome"] == "connected" and c["agrees"] for c in by_pair.values())
    assert describe_cell(by_pair[("double-cone", "symmetric-then-cone")]) == "srflx-prflx"
    assert describe_cell(by_pair[("symmetric-then-cone", "double-cone")]) == "prflx-srflx"
    assert "relay" in describe_cell(by_pair[("symmetric-then-cone", "symmetric-then-cone")])
    assert document["agreement"]["agree"] == 4
    assert by_pair[("double-cone", "symmetric-then-cone")]["libwebrtc"]["code"] == "SUPU"
    # Piped, progress is one line per finished cell on stderr; the grid is on stdout.
    lines = [line for line in completed.stderr.splitlines() if line.startswith("[")]
    assert len(lines) == 4 and lines[-1].startswith("[4/4, 0 running, 0 failed")
    assert "4 of 4 cells agree with libwebrtc on direct versus relay" in completed.stdout


def test_unknown_preset_is_bad_input() -> None:
    completed = lab("matrix", "--nat", "open,sideways")
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1 and "--nat: unknown row sideways" in completed.stderr


def test_firewall_cells_relay_over_tcp_or_tls_and_say_why_libwebrtc_pairs_over_tcp(
    tmp_path: Path,
) -> None:
    path = tmp_path / "matrix.json"
    completed = lab("matrix", "--nat", "udp-blocked,tcp-web-only", "--json", str(path), "-j", "2")
    assert completed.returncode == 0, completed.stderr
    by_pair = {(c["viewer"], c["master"]): c for c in json.loads(path.read_text())["cells"]}
    for cell in by_pair.values():
        pair = cell["result"]["selected"]["viewer"]
        assert cell["result"]["outcome"] == "connected" and pair["local"]["type"] == "relay"
        assert pair["local"]["relay_protocol"] in ("tcp", "tls")  # no UDP gets out
    # HTTP only: TURN over TLS on 443 is the one way out (TURN/TCP is on 3478).
    assert (
        by_pair[("tcp-web-only", "udp-blocked")]["result"]["selected"]["viewer"]["local"][
            "relay_protocol"
        ]
        == "tls"
    )
    # libwebrtc pairs two UDP-blocked peers over ICE-TCP; aiortc has none, and says so.
    blocked = by_pair[("udp-blocked", "udp-blocked")]
    assert blocked["libwebrtc"]["code"] == "LTPT" and blocked["agrees"] is False
    assert blocked["explanation"].startswith("aiortc has no ICE over TCP")
    assert by_pair[("tcp-web-only", "tcp-web-only")]["libwebrtc"]["code"] == "LSRS"
    assert "differs: viewer udp-blocked x master udp-blocked" in completed.stdout
