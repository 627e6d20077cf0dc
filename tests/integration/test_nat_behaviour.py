"""Every NAT behaviour the lab offers, measured for real (RFC 5780) by `lab probe-nat`
from behind a NAT node, and cross-checked with coturn's own `turnutils_natdiscovery`
(root)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.network.build import LabNetwork
from lab.network.topology import TOPOLOGY_DIR
from lab.scenario.scenario import SCENARIO_DIR, load_scenario
from tests.integration.helpers import lab, leftovers

pytestmark = pytest.mark.root

EI, AD, APD = "endpoint-independent", "address-dependent", "address-and-port-dependent"


def scenario_with_nat(tmp_path: Path, nat: Any, software: str = "coturn") -> Path:
    """home-nat-both with the viewer's home router set to `nat`."""
    document = yaml.safe_load((SCENARIO_DIR / "home-nat-both.yaml").read_text())
    document["topology"] = str(TOPOLOGY_DIR / "two-homes.yaml")
    document["conditions"] = {"viewer-gw": {"nat": nat}}
    document.setdefault("servers", {})["stun_turn"] = {"host": "turn", "software": software}
    path = tmp_path / "probe.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def probe(reference: str, host: str = "viewer", *args: str) -> tuple[int, dict[str, Any]]:
    completed = lab("probe-nat", reference, "--host", host, "--json", *args, timeout=60)
    assert completed.returncode in (0, 1), completed.stderr
    return completed.returncode, json.loads(completed.stdout)


BEHAVIOURS = [(mapping, filtering) for mapping in (EI, AD, APD) for filtering in (EI, AD, APD)]


@pytest.mark.parametrize(("mapping", "filtering"), BEHAVIOURS)
def test_every_mapping_and_filtering_behaves_as_declared(
    tmp_path: Path, mapping: str, filtering: str
) -> None:
    path = scenario_with_nat(tmp_path, {"mapping": mapping, "filtering": filtering})
    status, report = probe(str(path))
    assert report["measured"]["mapping"] == mapping
    assert report["measured"]["filtering"] == filtering
    assert status == 0 and report["matches"], report


@pytest.mark.parametrize(
    ("preset", "mapping", "filtering"),
    [
        ("full-cone", EI, EI),
        ("restricted-cone", EI, AD),
        ("port-restricted-cone", EI, APD),
        ("symmetric", APD, APD),
    ],
)
def test_presets_are_the_classic_behaviours(
    tmp_path: Path, preset: str, mapping: str, filtering: str
) -> None:
    status, report = probe(str(scenario_with_nat(tmp_path, preset)))
    assert (report["measured"]["mapping"], report["measured"]["filtering"]) == (mapping, filtering)
    assert status == 0


@pytest.mark.parametrize("preset", ["full-cone", "port-restricted-cone", "symmetric"])
@pytest.mark.parametrize("hairpinning", [True, False])
def test_hairpinning_on_and_off(tmp_path: Path, preset: str, hairpinning: bool) -> None:
    path = scenario_with_nat(tmp_path, {"preset": preset, "hairpinning": hairpinning})
    status, report = probe(str(path))
    assert report["measured"]["hairpinning"] is hairpinning
    assert status == 0


@pytest.mark.parametrize("preserve", [True, False])
def test_port_preservation_on_and_off(tmp_path: Path, preserve: bool) -> None:
    path = scenario_with_nat(tmp_path, {"preset": "full-cone", "port_preservation": preserve})
    status, report = probe(str(path))
    local_port = report["measured"]["local"].split(":")[1]
    mapped_port = report["measured"]["mapped"].split(":")[1]
    assert (local_port == mapped_port) is preserve
    assert report["measured"]["mapping"] == EI  # a random port is still kept per endpoint
    assert status == 0


def test_the_probe_works_against_the_mock_server_too(tmp_path: Path) -> None:
    path = scenario_with_nat(tmp_path, "restricted-cone", software="mock")
    status, report = probe(str(path))
    assert (report["measured"]["mapping"], report["measured"]["filtering"]) == (EI, AD)
    assert status == 0


def test_carrier_grade_and_double_nat_compose_to_the_most_dependent(tmp_path: Path) -> None:
    status, report = probe("double-nat")
    assert report["nats"] == ["viewer-gw", "carrier"]
    assert report["measured"]["local"].startswith("192.168.")
    assert (report["measured"]["mapping"], report["measured"]["filtering"]) == (APD, APD)
    assert status == 0
    status, report = probe("cgnat-mobile-viewer")
    assert report["measured"]["local"].startswith("100.64.")
    assert status == 0


@pytest.mark.parametrize(
    ("row", "mapping", "filtering"),
    [
        ("double-cone", EI, EI),  # libwebrtc's: two open cones compose to an open cone
        ("symmetric-then-cone", APD, APD),
        ("double-port-restricted-cone", EI, APD),
        ("symmetric-then-port-restricted-cone", APD, APD),
    ],
)
def test_the_matrix_cascades_behave_as_their_nats_compose(
    tmp_path: Path, row: str, mapping: str, filtering: str
) -> None:
    """`lab matrix`'s own cell, probed from its viewer behind both NATs."""
    from lab.sweeps.matrix_cells import cell_documents

    topology, scenario = cell_documents(row, "open")
    (tmp_path / "topology.yaml").write_text(yaml.safe_dump(topology))
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    status, report = probe(str(tmp_path / "scenario.yaml"))
    assert report["nats"] == ["viewer-home", "viewer-cgn"]
    assert (report["measured"]["mapping"], report["measured"]["filtering"]) == (mapping, filtering)
    assert status == 0


def test_no_nat_on_the_open_internet() -> None:
    status, report = probe("open-internet")
    assert report["measured"]["nat"] is False and status == 0


def test_bad_host_is_exit_2_naming_the_nodes() -> None:
    completed = lab("probe-nat", "home-nat-both", "--host", "nobody")
    assert completed.returncode == 2
    assert "--host: no node 'nobody'" in completed.stderr and "viewer-gw" in completed.stderr
    assert leftovers()["shells"] == []


# -- coturn's own client agrees --------------------------------------------------------


def natdiscovery(network: LabNetwork, flag: str) -> str:
    done = network.run(
        "viewer", ["timeout", "15", "turnutils_natdiscovery", flag, "203.0.113.10"], 20
    )
    verdicts = [line for line in done.stdout.decode().splitlines() if line.startswith("NAT with")]
    assert verdicts, done.stdout.decode()
    return verdicts[-1]


@pytest.mark.parametrize(
    ("nat", "mapping", "filtering"),
    [
        ("full-cone", "Endpoint Independent Mapping", "Endpoint Independent Filtering"),
        (
            {"mapping": AD, "filtering": AD},
            "Address Dependent Mapping",
            "Address Dependent Filtering",
        ),
        ("symmetric", "Address and Port Dependent Mapping", None),
    ],
)
def test_coturn_natdiscovery_sees_the_same(
    tmp_path: Path, nat: Any, mapping: str, filtering: str | None
) -> None:
    from lab.servers.launch import start_servers

    scenario = load_scenario(str(scenario_with_nat(tmp_path, nat)))
    with LabNetwork(scenario.topology, scenario.conditions, tmp_path) as network:
        start_servers(network, scenario, tmp_path, "coturn")
        assert mapping in natdiscovery(network, "-m")
        if filtering:
            assert filtering in natdiscovery(network, "-f")


# -- mapping lifetime -------------------------------------------------------------------

BIND_AND_LISTEN = """
import json, socket, sys, time
from lab.network.nat_discovery import Schedule, binding, _mapped
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 0))
print(json.dumps(_mapped(binding(sock, ("203.0.113.10", 3478), Schedule()))), flush=True)
sock.settimeout(float(sys.argv[1]))
got = []
try:
    while True:
        got.append(sock.recvfrom(100)[0].decode())
except TimeoutError:
    pass
print(json.dumps(got), flush=True)
"""


def send_from_turn_host(network: LabNetwork, mapped: list[Any], text: str) -> None:
    code = (
        "import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
        "s.bind(('203.0.113.10',40000));s.sendto(sys.argv[1].encode(),(sys.argv[2],int(sys.argv[3])))"
    )
    network.run("turn", [sys.executable, "-c", code, text, mapped[0], str(mapped[1])])


def test_an_idle_mapping_expires_after_udp_timeout(tmp_path: Path) -> None:
    """Full cone with a 2 s timeout: an outside host gets in through the mapping while it
    is fresh, and no longer once it has been idle for longer than the timeout."""
    from lab.servers.launch import start_servers

    path = scenario_with_nat(tmp_path, {"preset": "full-cone", "udp_timeout": 2})
    scenario = load_scenario(str(path))
    with LabNetwork(scenario.topology, scenario.conditions, tmp_path) as network:
        start_servers(network, scenario, tmp_path, "coturn")
        listener = network.popen(
            "viewer",
            [sys.executable, "-c", BIND_AND_LISTEN, "4.5"],
            stdout=subprocess.PIPE,
        )
        assert listener.stdout is not None
        mapped = json.loads(listener.stdout.readline())
        send_from_turn_host(network, mapped, "fresh")
        time.sleep(3.0)  # longer than udp_timeout, with no outbound packet
        send_from_turn_host(network, mapped, "stale")
        received = json.loads(listener.stdout.readline())
        listener.wait(timeout=5)
    assert received == ["fresh"]


def test_a_saved_result_names_the_nat_behaviours_it_was_observed_on(tmp_path: Path) -> None:
    from tests.integration.helpers import run_scenario

    status, result, output = run_scenario(tmp_path, "double-nat")
    assert status == 0, output
    assert result["network"]["topology"] == "double-nat"
    carrier = result["network"]["conditions"]["carrier"]["nat"]
    assert (carrier["preset"], carrier["mapping"]) == ("symmetric", APD)
