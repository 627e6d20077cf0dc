"""A multi-homed host: a second uplink with its own routing table (source routing)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.core.errors import LabInputError
from lab.network.build import source_routes
from lab.network.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]


def test_each_further_uplink_routes_what_leaves_from_its_own_address() -> None:
    viewer = load_topology("multi-homed").node("viewer")
    assert viewer.uplink().name == "eth0"  # type: ignore[union-attr]
    assert source_routes(viewer) == [
        "ip route add 100.64.0.0/24 dev eth1 table 100",
        "ip rule add from 100.64.0.10 table 100",
        "ip route add default via 100.64.0.1 table 100",
    ]
    assert source_routes(load_topology("multi-homed").node("master")) == []


@pytest.mark.parametrize(
    ("gateway", "words"),
    [("10.9.9.1", "is on none of its links"), ("192.168.2.254", "default gateway's link")],
)
def test_a_further_uplink_must_be_another_link(tmp_path: Path, gateway: str, words: str) -> None:
    document = yaml.safe_load((ROOT / "topologies" / "multi-homed.yaml").read_text())
    document["nodes"]["viewer"]["other_gateways"] = [gateway]
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(LabInputError, match=rf"nodes.viewer.other_gateways\[0\]: .*{words}"):
        load_topology(str(path))
