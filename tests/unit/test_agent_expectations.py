"""Expectations hold for every agent on the same evidence: a browser's mDNS host
candidates that cannot resolve form no pair, pairs it never checked say nothing, an
unanswered pair at the end of the lab's budget timed out, and agents may word one
gathering failure differently."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.core.errors import LabInputError
from lab.report.expectations import evaluate
from lab.scenario.scenario import load_scenario
from tests.result_docs import typed

ROOT = Path(__file__).resolve().parents[2]
HOST_HOST = {"local": "host", "remote": "host", "reason": "timeout"}


def candidate(kind: str, address: str = "198.51.100.2") -> dict:
    return {"type": kind, "address": address, "port": 1, "relay_protocol": None, "server": None}


def result(pairs: list[dict], unresolved: list[dict] | None = None) -> dict:
    viewer = {"candidates": [], "unresolved_remote_candidates": unresolved or []}
    return {
        "outcome": "connected",
        "pairs": pairs,
        "peers": {"viewer": viewer, "master": {"candidates": []}},
        "selected": {"viewer": None, "master": None},
        "timings": {"gathering_s": {}},
    }


def pair(state: str, local: str = "host", remote: str = "host", **extra: object) -> dict:
    return {"agent": "viewer", "local": candidate(local), "remote": candidate(remote),
            "state": state, **extra}  # fmt: skip


def check(expect: dict, observed: dict) -> dict:
    return evaluate({"outcome": "connected", **expect}, typed(observed))[1].to_json()


def test_unresolvable_mdns_names_meet_a_failing_pairs_expectation() -> None:
    name = {"type": "host", "address": "5f3c.local", "port": 9, "reason": "..."}
    met = check({"failing_pairs": [HOST_HOST]}, result([], unresolved=[name]))
    assert met["met"] and "5f3c.local" in met["observed"][0]
    assert not check({"failing_pairs": [HOST_HOST]}, result([]))["met"]  # nothing at all


def test_never_checked_pairs_say_nothing_either_way() -> None:
    never = pair("waiting", checks_sent=0)
    failed = pair("failed", failure={"reason": "timeout"}, checks_sent=3)
    assert check({"failing_pairs": [HOST_HOST]}, result([never, failed]))["met"]
    unchecked = check({"failing_pairs": [HOST_HOST]}, result([never]))
    assert unchecked["met"] and "none checked" in unchecked["observed"][0]
    succeeded = pair("succeeded", checks_sent=1)
    assert not check({"failing_pairs": [HOST_HOST]}, result([never, succeeded]))["met"]
    # Firefox's `cancelled`: nICEr stopped checking it, with no verdict and no counters.
    cancelled = pair("cancelled", agent_state="cancelled", checks_sent=None)
    assert check({"failing_pairs": [HOST_HOST]}, result([cancelled, failed]))["met"]
    assert not check({"failing_pairs": [HOST_HOST]}, result([cancelled, succeeded]))["met"]


def test_an_unanswered_pair_at_the_end_of_the_budget_timed_out() -> None:
    gave_up = pair("in-progress", failure={"reason": "timeout"}, checks_sent=3)
    assert check({"failing_pairs": [HOST_HOST]}, result([gave_up]))["met"]
    answered = pair("in-progress", failure=None, checks_sent=3)
    assert not check({"failing_pairs": [HOST_HOST]}, result([answered]))["met"]


def test_gathering_error_alternatives() -> None:
    observed = result([])
    observed["peers"]["viewer"]["gathering_errors"] = [
        {"url": "turns:203.0.113.10:443?transport=tcp", "reason": "701 Failed to establish"}
    ]
    met = check({"gathering_errors": {"viewer": ["TLS|701"]}}, observed)
    assert met["met"] and met["check"] == "viewer has a gathering error mentioning 'TLS' or '701'"
    assert not check({"gathering_errors": {"viewer": ["TLS"]}}, observed)["met"]


def test_scenario_names_each_peers_agent(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "scenarios" / "home-nat-both.yaml").read_text())
    document["peers"]["viewer"] |= {"agent": "chromium", "reveal_host_addresses": True}
    path = tmp_path / "browser.yaml"
    path.write_text(yaml.safe_dump(document))
    scenario = load_scenario(str(path))
    assert scenario.peers["viewer"].agent == "chromium"
    assert scenario.peers["viewer"].reveal_host_addresses
    assert scenario.peers["master"].agent == "aiortc"
    assert scenario.resolved()["peers"]["viewer"]["agent"] == "chromium"


def test_unknown_agent_in_a_scenario_names_the_field(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "scenarios" / "home-nat-both.yaml").read_text())
    document["peers"]["master"]["agent"] = "safari"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(LabInputError, match=r"bad.yaml: peers.master.agent"):
        load_scenario(str(path))


def test_a_browser_check_from_its_host_socket_counts_as_host() -> None:
    from_host = pair("in-progress", local="srflx", local_base_type="host",
                     failure={"reason": "timeout"}, checks_sent=2)  # fmt: skip
    assert check({"failing_pairs": [HOST_HOST]}, result([from_host]))["met"]
    worked = pair("succeeded", local="srflx", remote="srflx", local_base_type="host")
    srflx_pairs = {"local": "host", "remote": "srflx"}
    # A pair that worked is named by its valid local candidate: not a host pair.
    assert check({"failing_pairs": [srflx_pairs]}, result([worked]))["observed"] == []
