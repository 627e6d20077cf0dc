"""A `switch` node joins its links into one LAN: its ends have no address, the other
ends share a subnet, and the switch is a bridge inside its own namespace."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.core.errors import LabInputError
from lab.network.build import render_node_setup
from lab.network.topology import TOPOLOGY_DIR, load_topology


def _write(tmp_path: Path, document: dict) -> str:
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def _home_lan() -> dict:
    return yaml.safe_load((TOPOLOGY_DIR / "home-lan.yaml").read_text())


def test_the_switch_bridges_every_link_and_has_no_address() -> None:
    topology = load_topology("home-lan")
    lan = topology.node("lan")
    assert lan.addresses == []
    commands = render_node_setup(lan, None).commands
    assert commands.index("ip link add br0 type bridge") < commands.index(
        "ip link set eth0 master br0"
    )
    assert {f"ip link set eth{n} master br0" for n in range(3)} <= set(commands)
    assert not any(c.startswith("ip addr add") for c in commands)
    assert any("net.ipv4.ip_forward=0" in c for c in commands)
    assert topology.node("viewer").uplink().name == "eth0"  # gateway is on the LAN


def test_a_switch_end_with_an_address_is_refused(tmp_path: Path) -> None:
    document = _home_lan()
    document["links"][0]["addresses"][1] = "192.168.1.2/24"
    with pytest.raises(LabInputError, match=r"links\[0\]\.addresses\[1\]: expected null"):
        load_topology(_write(tmp_path, document))


def test_a_host_end_without_an_address_is_refused(tmp_path: Path) -> None:
    document = _home_lan()
    document["links"][0]["addresses"][0] = None
    with pytest.raises(LabInputError, match=r"links\[0\]\.addresses\[0\]: expected an address"):
        load_topology(_write(tmp_path, document))


def test_a_switch_has_no_gateway(tmp_path: Path) -> None:
    document = _home_lan()
    document["nodes"]["lan"]["gateway"] = "192.168.1.1"
    with pytest.raises(LabInputError, match=r"nodes\.lan\.gateway: a switch has no gateway"):
        load_topology(_write(tmp_path, document))
