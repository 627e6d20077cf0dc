"""`lab probe-nat`'s bookkeeping: which NATs a host sits behind, what the scenario
declares for that path, and when measured and declared differ."""

from __future__ import annotations

from lab.network.nat import AD, APD, EI, nat_from_spec
from lab.run.probe import declared_behaviour, path_nats, probe_report
from lab.scenario.scenario import load_scenario


def test_path_nats_walks_the_gateways_outwards() -> None:
    scenario = load_scenario("double-nat")
    assert [name for name, _ in path_nats(scenario, "viewer")] == ["viewer-gw", "carrier"]
    assert path_nats(load_scenario("open-internet"), "viewer") == []


def test_a_path_through_two_nats_is_as_dependent_as_the_most_dependent() -> None:
    cone = nat_from_spec({"preset": "full-cone", "hairpinning": True}, "x")
    restricted = nat_from_spec("restricted-cone", "x")
    symmetric = nat_from_spec("symmetric", "x")
    assert declared_behaviour([cone, restricted]) == {
        "nat": True,
        "mapping": EI,
        "filtering": AD,
        "hairpinning": None,  # not compared behind two NATs
        "port_preservation": None,
    }
    assert declared_behaviour([cone, symmetric])["mapping"] == APD
    assert declared_behaviour([cone])["hairpinning"] is True
    assert declared_behaviour([]) == {"nat": False, "mapping": None, "filtering": None}


def test_a_difference_is_reported_by_name() -> None:
    scenario = load_scenario("home-nat-both")  # viewer-gw: port-restricted cone
    measured = {
        "nat": True,
        "mapping": EI,
        "filtering": EI,
        "hairpinning": False,
        "port_preservation": True,
    }
    report = probe_report(scenario, "viewer", measured)
    assert report["matches"] is False and report["differences"] == ["filtering"]
    measured["filtering"] = APD
    assert probe_report(scenario, "viewer", measured)["matches"] is True
