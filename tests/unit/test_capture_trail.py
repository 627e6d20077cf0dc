"""Wire evidence from a real enterprise-firewall run: decoding (tshark), nftables trace
verdicts and the hop trail per check (fixtures recorded with `lab run --capture`)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lab.network.nat import nat_from_spec, render_nat
from lab.observations.capture.capture import NO_ROUTE, plan_points, render_trace_table
from lab.observations.capture.decode import decode, parse_line
from lab.observations.capture.trail import describe_drop, pair_trails
from lab.observations.capture.verdicts import parse_trace, read_traces
from lab.scenario.scenario import load_scenario

FIXTURES = Path(__file__).parent / "fixtures" / "capture"
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")

TRACE = """\
trace id 1 ip icelab_trace prerouting packet: iif "eth1" ip saddr 198.51.100.2 ip daddr 198.51.100.18 udp sport 40112 udp dport 5000 udp length 28 @th,64,96 0x100002112a442d6c42b2f
trace id 1 ip icelab_trace prerouting rule meta l4proto udp @th,96,32 0x2112a442 meta nftrace set 1 (verdict continue)
trace id 1 ip icelab_trace prerouting policy accept
trace id 1 ip icelab_nat input packet: iif "eth1" ip saddr 198.51.100.2 ip daddr 198.51.100.18 udp sport 40112 udp dport 5000
trace id 1 ip icelab_nat input rule iifname "eth1" ct state new drop comment "port-restricted filter" (verdict drop)
trace id 2 ip icelab_trace prerouting packet: iif "eth0" ip saddr 198.51.100.2 ip daddr 192.168.1.10 udp sport 1 udp dport 2 @th,64,96 0x100002112a442aabbccdd
trace id 2 ip icelab_trace prerouting rule fib daddr type != local fib daddr oif missing comment "no route to the destination" (verdict continue)
trace id 2 ip icelab_trace prerouting policy accept
"""  # noqa: E501


def test_trace_names_the_rule_that_dropped_a_packet_by_its_comment() -> None:
    dropped, unroutable = parse_trace("master-gw", TRACE)
    assert (dropped.iif, dropped.src, dropped.dst) == ("eth1", "198.51.100.2:40112",
                                                       "198.51.100.18:5000")  # fmt: skip
    assert dropped.transaction_prefix == "d6c42b2f"  # nft drops the leading zeros: padded
    assert dropped.dropped_by == "port-restricted filter"
    assert not dropped.unroutable
    assert unroutable.dropped_by is None and unroutable.unroutable


def test_nat_filters_are_named_by_their_filtering() -> None:
    symmetric = render_nat(nat_from_spec("symmetric", "nat"), "eth1", "198.51.100.2", ["eth0"])
    restricted = render_nat(nat_from_spec("restricted-cone", "nat"), "eth1", "1.2.3.4", ["eth0"])
    assert 'ct state new drop comment "port-restricted filter"' in symmetric
    assert 'ct state new drop comment "address-restricted filter"' in restricted


def test_trace_table_traces_stun_only_and_names_unroutable_packets() -> None:
    table = render_trace_table()
    assert "@th,96,32 0x2112a442 meta nftrace set 1" in table
    assert f'fib daddr oif missing comment "{NO_ROUTE}"' in table


def test_one_capture_point_per_link() -> None:
    topology = load_scenario("enterprise-firewall").topology
    points = plan_points(topology)
    assert len(points) == len(topology.links)
    assert len({p.file for p in points}) == len(points)


def test_a_port_restricted_drop_says_from_where_no_outbound_went() -> None:
    ended = {"node": "viewer-gw", "rule": "port-restricted filter",
             "from": "198.51.100.18:40112", "to": "198.51.100.2:5000"}  # fmt: skip
    assert describe_drop(ended) == (
        "dropped by viewer-gw: port-restricted filter, no prior outbound to 198.51.100.18:40112"
    )


def test_parse_line_reads_a_check_relayed_in_a_data_indication() -> None:
    line = "\t".join(
        [
            "2",
            "1796258646.5",
            "203.0.113.10",
            "3478",
            "",
            "192.168.2.10",
            "50995",
            "",
            "0x01;0x00",
            "0x0007;0x0001",
            "aa" * 12 + ";" + "bb" * 12,
            "",
            "198.51.100.18",
            "19790",
            "",
            "",
            "STUN",
            "Data Indication",
        ]  # fmt: skip
    )
    packet = parse_line(line, ["a", "b", "turn link"])
    assert packet is not None and packet.link == "turn link" and packet.relayed
    assert packet.check is not None and packet.check.transaction_id == "bb" * 12
    assert (packet.check.method, packet.check.cls) == ("Binding", "request")
    assert packet.address == "198.51.100.18:19790"


@pytest.fixture(scope="module")
def recorded() -> tuple[dict[str, Any], list[Any], dict[str, Any]]:
    manifest = json.loads((FIXTURES / "capture.json").read_text())
    manifest["directory"] = str(FIXTURES)
    if shutil.which("tshark") is None:
        pytest.skip("tshark not installed")
    return manifest, decode(manifest), read_traces(FIXTURES, manifest["traced_nodes"])


@pytest.fixture
def pairs(recorded: tuple[dict[str, Any], list[Any], dict[str, Any]]) -> list[dict[str, Any]]:
    manifest, packets, traces = recorded
    pairs = copy.deepcopy(json.loads((FIXTURES / "pairs.json").read_text())["pairs"])
    pair_trails(pairs, packets, manifest, traces)
    return pairs


@needs_tshark
def test_checks_relayed_in_channeldata_are_decoded(recorded: Any) -> None:
    _, packets, _ = recorded
    inside = [p for p in packets if p.channel is not None and p.check is not None]
    assert inside and all(p.check.method == "Binding" for p in inside)


@needs_tshark
def test_every_failed_pair_is_dropped_where_the_scenario_drops_it(pairs: list[Any]) -> None:
    for pair in (p for p in pairs if p["state"] == "failed"):
        at = pair["failure"]["dropped_at"]
        if pair["agent"] == "viewer" and pair["local"]["type"] == "host":  # UDP leaving
            expected = {"node": "office-gw", "direction": "outbound",
                        "rule": "tcp-web-only: outbound default deny"}  # fmt: skip
        else:  # from a relay or the home: to a private address across the internet
            assert pair["remote"]["type"] == "host"
            expected = {"node": "internet", "direction": "forward",
                        "rule": f"no route to {pair['remote']['address']}"}  # fmt: skip
        assert at == expected, pair
        assert pair["failure"]["message"].startswith(f"dropped by {expected['node']}: ")


@needs_tshark
def test_every_succeeded_pair_ends_in_a_response_unless_it_never_crossed_a_link(
    pairs: list[Any],
) -> None:
    for pair in (p for p in pairs if p["state"] == "succeeded"):
        ended = [c["ended"]["kind"] for c in pair["trail"]["checks"]]
        tls_both = pair["local"]["relay_protocol"] == pair["remote"]["relay_protocol"] == "tls"
        if tls_both:  # relay to relay inside one server, both legs TLS: nothing to see
            assert ended == [] and "TLS" in pair["trail"]["summary"]
        else:
            assert "answered" in ended, pair["trail"]


@needs_tshark
def test_the_trail_shows_the_home_nat_translating_the_check(pairs: list[Any]) -> None:
    pair = next(
        p for p in pairs if p["local"]["type"] == "relay" and p["remote"]["type"] == "srflx"
    )
    hops = pair["trail"]["checks"][0]["hops"]
    assert [h["dst"].split(":")[0] for h in hops] == ["198.51.100.18", "198.51.100.18",
                                                      "192.168.1.10"]  # fmt: skip
    assert hops[-1]["link"] == "master:eth0 - home-gw:eth0"


def test_a_result_without_a_capture_is_bad_input_naming_file_and_field(tmp_path: Path) -> None:
    from lab.commands.capture import captured_document, captured_result
    from lab.core.errors import LabInputError
    from tests.result_docs import typed

    plain = tmp_path / "result.json"
    plain.write_text(json.dumps(typed({"scenario": "x"}).to_json()))
    with pytest.raises(LabInputError, match=r"result\.json: capture: missing"):
        captured_result(plain)
    with pytest.raises(LabInputError, match="no captured result"):
        captured_result(tmp_path / "nothing")
    plain.write_text(json.dumps({"scenario": "x", "pairs": []}))
    with pytest.raises(LabInputError, match=r"result\.json: capture: missing"):
        captured_result(plain)
    # What `lab up --capture` keeps of a session: its pcaps (lab pcap), no pairs to trace.
    session = {"scenario": "x", "pairs": [], "capture": {"pcap_dir": "/p", "links": []}}
    plain.write_text(json.dumps(session))
    assert captured_document(plain)[0]["capture"]["pcap_dir"] == "/p"
    with pytest.raises(LabInputError, match="session has no pairs to trace"):
        captured_result(plain)


def test_the_ladder_prints_hops_in_time_order_with_the_verdict(pairs: list[Any]) -> None:
    from lab.commands.capture import ladder_lines
    from lab.observations.ice import CandidatePair

    pair = next(p for p in pairs if (p.get("failure") or {}).get("dropped_at"))
    lines = ladder_lines(CandidatePair.from_json(pair))
    assert lines[0].startswith("check ") and lines[-1].startswith("dropped_at: ")
    assert any(line.strip().startswith("=> dropped by ") for line in lines)
