"""The aioice agent's derived timing: pace, nomination wait, retransmission timeouts."""

from __future__ import annotations

import pytest

from lab.peers import check_schedule as cs


def test_pacing_starts_several_checks_per_aioice_tick() -> None:
    assert cs.checks_per_tick(0.005) == 4
    assert cs.paced_interval_s(0.005) == pytest.approx(0.005)
    # A slower pace than aioice's tick (the kvs profile's 50 ms) keeps the tick.
    assert cs.checks_per_tick(0.05) == 1 and cs.paced_interval_s(0.05) == cs.AIOICE_TICK_S
    assert cs.checks_per_tick(0) == 1


def deadline(**changes: float) -> float:
    values = {
        "checking_started": 10.0,
        "pairs": 20,
        "pacing_s": 0.005,
        "round_trips_s": [0.001, 0.002],
        "first_success": 10.02,
        "wait_cap_s": 0.2,
        "stun_rto_s": 0.015,
    }
    return cs.nomination_deadline(**(values | changes))  # type: ignore[arg-type]


def test_nomination_waits_until_every_pair_had_its_check_and_a_few_round_trips() -> None:
    # 20 pairs 5 ms apart: all sent by 10.1; then 4 round trips of 2 ms and one RTO.
    assert deadline() == pytest.approx(10.0 + 0.1 + 0.008 + 0.015)
    # More pairs or longer round trips wait longer ...
    assert deadline(pairs=30) > deadline() and deadline(round_trips_s=[0.01]) > deadline()
    # ... but never longer than the profile's wait after the first success.
    assert deadline(pairs=500) == pytest.approx(10.02 + 0.2)


def test_a_derived_timeout_is_a_few_round_trips_within_the_floor_and_the_profile() -> None:
    assert cs.derived_rto_s([0.004, 0.005], 0.03) == pytest.approx(0.02)
    assert cs.derived_rto_s([0.0005], 0.03) == cs.MIN_RTO_S  # noise floor
    assert cs.derived_rto_s([0.05], 0.03) == 0.03  # never longer than the profile's
    assert cs.derived_rto_s([], 0.5) == 0.5  # nothing measured: the profile's


def test_a_transaction_lasts_every_send_with_the_timeout_doubling() -> None:
    assert cs.transaction_s(0.03, 3) == pytest.approx(0.45)  # the fast profile's
    assert cs.transaction_s(0.015, 3) == pytest.approx(0.225)


def test_the_zygote_preloads_the_signaling_server_the_signer_and_the_peers() -> None:
    from lab.peers.forked import PEER_MODULES
    from lab.run.programs import PROGRAM_MODULES
    from lab.servers.sigv4 import SIGNER_MODULES

    assert ("lab.servers.signaling", *SIGNER_MODULES, *PEER_MODULES) == PROGRAM_MODULES


def test_only_the_fast_profile_on_links_without_added_delay_derives_its_timing() -> None:
    from lab.peers.timing import PROFILES, derives_timing, for_links

    assert derives_timing(PROFILES["fast"].as_dict())
    assert not derives_timing(PROFILES["kvs"].as_dict())  # the C SDK's constants
    assert not derives_timing(for_links(PROFILES["fast"], added_rtt_ms=340).as_dict())
    assert derives_timing(for_links(PROFILES["fast"], loss_percent=10).as_dict())
