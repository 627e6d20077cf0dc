"""The result's `call` section: what happened to an ongoing call as the network changed.

It lines up, on one clock (seconds since both peers were connected), the events the lab
applied (lab/run/events.py), each peer's ICE connection and gathering state changes,
its consent freshness checks (RFC 7675) and selected pair, and the viewer's messages: how
many left and came back each second, and for each event how long after it ended data
flowed again (`recovery_s`: the first echo of a message sent after the event ended; null
if none came back before the call ended). An idle timeout only bites once the
application has been silent, so its recovery counts from the end of the call's next
pause instead.
"""

from __future__ import annotations

import math

from lab.core.documents import JsonObject
from lab.scenario.call_events import CallEvent, Pause

#: Chromium pings its selected pair every 2.5 s or so: two checks in a row without an
#: answer (seen in getStats) is a consent problem, one may just be in flight.
BROWSER_UNANSWERED_MIN = 2
BROWSER_AGENTS = ("chromium", "firefox", "kvs-js")


def call_section(
    events: tuple[CallEvent, ...],
    applied: list[JsonObject],
    call_started_at: float | None,
    observations: dict[str, JsonObject],
    pauses: tuple[Pause, ...] = (),
) -> JsonObject:
    """The `call` section of a result (pure)."""
    viewer_call = observations.get("viewer", {}).get("call") or {}
    if call_started_at is None:
        return {"started": False, "events": [e.as_dict() for e in events]}
    zero = call_started_at
    sent = viewer_call.get("sent_at") or []
    echoed = viewer_call.get("echoed_at") or []
    silences = _pause_entries(pauses, viewer_call.get("started_at"), zero, sent, echoed)
    section = {
        "started": True,
        "events": [
            _event_entry(e, i, applied, zero, sent, echoed, silences) for i, e in enumerate(events)
        ],
        "peers": {role: _peer_timeline(obs, zero) for role, obs in observations.items()},
        "pauses": silences,
        "delivery": delivery_per_second(sent, echoed, zero),
        "messages_sent": len(sent),
        "messages_echoed": sum(1 for t in echoed if t is not None),
    }
    section["longest_gap_s"] = longest_gap(echoed, zero, viewer_call.get("ended_at"))
    section["consent"] = {
        role: consent_summary(
            (obs.get("call") or {}).get("consent") or [], obs.get("agent") in BROWSER_AGENTS
        )
        for role, obs in observations.items()
    }
    section["ice_restarts"] = {
        role: _restarts(obs.get("call") or {}) for role, obs in observations.items()
    }
    return section


def _rel(at: float | None, zero: float) -> float | None:
    return None if at is None else round(at - zero, 3)


def _pause_entries(
    pauses: tuple[Pause, ...],
    viewer_started_at: float | None,
    zero: float,
    sent: list[float],
    echoed: list[float | None],
) -> list[JsonObject]:
    """Each pause on the call's clock (the viewer counts it from its own start) and how
    long after its end the first echo came (`resumed_s`; null: none did)."""
    if viewer_started_at is None:
        return []
    entries = []
    for pause in pauses:
        end_at = viewer_started_at + pause.ends_s
        entries.append(
            {
                "from_s": _rel(viewer_started_at + pause.at_s, zero),
                "to_s": _rel(end_at, zero),
                "resumed_s": recovery_after(end_at, sent, echoed),
            }
        )
    return entries


def _event_entry(
    event: CallEvent,
    index: int,
    applied: list[JsonObject],
    zero: float,
    sent: list[float],
    echoed: list[float | None],
    silences: list[JsonObject],
) -> JsonObject:
    entry = event.as_dict()
    mine = {a["what"]: a for a in applied if a["event"] == index}
    began, ended = mine.get("began"), mine.get("ended")
    entry["applied"] = began is not None and began["ok"] and (ended is None or ended["ok"])
    errors = [a["error"] for a in mine.values() if a.get("error")]
    if errors:
        entry["error"] = "; ".join(errors)
    entry["began_s"] = _rel(began["at"], zero) if began else None
    if began and "mappings_before" in began:
        entry["mappings"] = {
            "before": began["mappings_before"],
            "after": began.get("mappings_after"),
        }
    end_at = ended["at"] if ended else (began["at"] if began and event.duration_s == 0 else None)
    entry["ended_s"] = _rel(end_at, zero)
    if event.kind == "idle-timeout" and end_at is not None:
        end_at = _next_pause_end(silences, end_at, zero)
        entry["recovery_from_s"] = _rel(end_at, zero)
    entry["recovery_s"] = recovery_after(end_at, sent, echoed) if end_at else None
    return entry


def _next_pause_end(silences: list[JsonObject], after: float, zero: float) -> float:
    """The end of the first pause that ends after `after` (epoch), or `after` itself."""
    ends = [zero + p["to_s"] for p in silences if zero + p["to_s"] > after]
    return min(ends) if ends else after


def recovery_after(end_at: float, sent: list[float], echoed: list[float | None]) -> float | None:
    """Seconds from `end_at` to the first echo of a message sent at or after it."""
    arrivals = [e for s, e in zip(sent, echoed, strict=False) if s >= end_at and e is not None]
    return round(min(arrivals) - end_at, 3) if arrivals else None


def delivery_per_second(
    sent: list[float], echoed: list[float | None], zero: float
) -> list[dict[str, int]]:
    """Per second of the call: messages sent, and echoes received in that second."""
    if not sent:
        return []
    seconds = math.ceil(max([*sent, *(e for e in echoed if e is not None)]) - zero)
    rows = [{"second": s, "sent": 0, "echoes": 0} for s in range(max(seconds, 1))]
    for at in sent:
        rows[min(int(max(at - zero, 0)), len(rows) - 1)]["sent"] += 1
    for at in echoed:
        if at is not None:
            rows[min(int(max(at - zero, 0)), len(rows) - 1)]["echoes"] += 1
    return rows


def longest_gap(
    echoed: list[float | None], zero: float, ended_at: float | None = None
) -> dict[str, float] | None:
    """The longest time without an echo, and when it began (call clock); a call whose
    echoes stopped for good has its gap run to the call's end."""
    arrivals = sorted(e for e in echoed if e is not None)
    if ended_at is not None and arrivals and ended_at > arrivals[-1]:
        arrivals.append(ended_at)
    if len(arrivals) < 2:
        return None
    gap, start = max((b - a, a) for a, b in zip(arrivals, arrivals[1:], strict=False))
    return {"from_s": round(start - zero, 3), "length_s": round(gap, 3)}


def _restarts(call: JsonObject) -> int | None:
    """How many ICE restarts the peer made or answered; None if the call wanted them and
    its agent cannot."""
    if not call.get("ice_restart_supported", True):
        return None if call.get("ice_restart_wanted") else 0
    return sum(1 for r in call.get("restarts") or [] if r.get("kind") != "signaling")


def _peer_timeline(observation: JsonObject, zero: float) -> list[JsonObject]:
    """The peer's ICE connection and gathering state changes, consent freshness and
    selected pair changes, in time order."""
    browser = observation.get("agent") in BROWSER_AGENTS
    entries = [
        {"t_s": _rel(s["at"], zero), "ice_state": s["state"]}
        | _browser_consent_signal(s["state"] if browser else None)
        for s in observation.get("ice_states") or []
        if s.get("at") is not None
    ]
    call = observation.get("call") or {}
    entries += [
        {"t_s": _rel(g["at"], zero), "gathering": g["state"]}
        for g in call.get("gathering") or []
        if g.get("at") is not None
    ]
    entries += [
        {"t_s": _rel(at, zero), "consent": what}
        for at, what in consent_changes(call.get("consent") or [], browser)
    ]
    entries += [
        {"t_s": _rel(s["at"], zero), "selected_pair": s["pair"]} for s in call.get("selected") or []
    ]
    entries += [
        {"t_s": _rel(r["at"], zero), "ice_restart": r["reason"]} for r in call.get("restarts") or []
    ]
    return sorted(entries, key=lambda e: e["t_s"])


def _browser_consent_signal(state: str | None) -> dict[str, str]:
    """What a browser's ICE state says about consent: Chromium has no consent event, but
    `disconnected` is its verdict that checks on the selected pair went unanswered and
    `failed` that consent expired (RFC 7675: 30 s)."""
    if state == "disconnected":
        return {"consent": "checks unanswered (the browser's disconnected)"}
    if state == "failed":
        return {"consent": "expired (the browser's failed)"}
    return {}


def consent_changes(records: list[JsonObject], browser: bool) -> list[tuple[float, str]]:
    """When consent checks started going unanswered, were answered again, or expired.

    aiortc's records are its checks (`answered`), one every 5 s or so, and its expiry;
    a browser's are counts of unanswered checks on the selected pair read from getStats()
    (`unanswered`), where one may just be in flight."""
    changes: list[tuple[float, str]] = []
    failing = False
    for record in records:
        if record.get("expired"):
            changes.append((record["at"], "expired: the agent closes the connection"))
            continue
        if browser:
            unanswered = record.get("unanswered", 0)
            now_failing = unanswered >= BROWSER_UNANSWERED_MIN or (failing and unanswered > 0)
        else:
            now_failing = not record.get("answered", True)
        if now_failing != failing:
            changes.append((record["at"], "checks unanswered" if now_failing else "answered again"))
        failing = now_failing
    return changes


def moved_mappings(mappings: JsonObject) -> list[tuple[str, str, str]]:
    """Inside endpoints whose public endpoint changed with a NAT event: (inside, public
    before, public after), from the NAT's conntrack before and shortly after (pure)."""
    before = {m["inside"]: m["public"] for m in mappings.get("before") or []}
    after = {m["inside"]: m["public"] for m in mappings.get("after") or []}
    return [
        (inside, before[inside], public)
        for inside, public in sorted(after.items())
        if inside in before and before[inside] != public
    ]


def consent_summary(records: list[JsonObject], browser: bool) -> JsonObject:
    """How many consent checks the peer sent during the call (a browser's counter, if it
    has one), the most that went unanswered in a row, and whether consent expired."""
    if browser and not records:
        # Firefox's getStats() counts no checks on a pair: nothing is known either way.
        return {"checks": None, "unanswered_in_a_row_max": None, "expired": None}
    if browser:
        sent = [r["consent_requests_sent"] for r in records if r.get("consent_requests_sent")]
        streaks = [r.get("unanswered", 0) for r in records]
        checks = max(sent) - min(sent) if sent else None
    else:
        checks = sum(1 for r in records if "answered" in r)
        streaks, streak = [0], 0
        for record in records:
            if "answered" in record:
                streak = 0 if record["answered"] else streak + 1
                streaks.append(streak)
    return {
        "checks": checks,
        "unanswered_in_a_row_max": max(streaks, default=0),
        "expired": any(r.get("expired") for r in records),
    }


def selected_around_events(section: JsonObject) -> tuple[str | None, str | None]:
    """The viewer's selected pair just before the first event, and at the call's end."""
    events = [e["began_s"] for e in section.get("events") or [] if e.get("began_s") is not None]
    pairs = [e for e in (section.get("peers") or {}).get("viewer", []) if "selected_pair" in e]
    if not events or not pairs:
        return None, None
    first = min(events)
    before = [e["selected_pair"] for e in pairs if e["t_s"] < first]
    later = [e["selected_pair"] for e in pairs if e["t_s"] >= first]
    return (before[-1] if before else None), (later[-1] if later else None)


def recovery_checks(expect: JsonObject, section: JsonObject | None) -> list[JsonObject]:
    """The scenario's expectations about recovery, judged against the call section."""
    if section is None:
        return []
    events = section.get("events") or []
    recoveries = [e.get("recovery_s") for e in events]
    checks = []
    if "recovers_within_s" in expect:
        limit = expect["recovers_within_s"]
        checks.append(
            {
                "check": f"data flows again within {limit:g} s of each event's end",
                "met": bool(section.get("started"))
                and all(r is not None and r <= limit for r in recoveries),
                "observed": recoveries,
            }
        )
    if "ice_restart" in expect:
        restarts = section.get("ice_restarts") or {}
        happened = any(restarts.values())
        checks.append(
            {
                "check": "ICE restarts during the call"
                if expect["ice_restart"]
                else "no ICE restart during the call",
                "met": happened == expect["ice_restart"],
                "observed": restarts,
            }
        )
    if "selected_pair_changes_to" in expect:
        wanted = expect["selected_pair_changes_to"]
        before, after = selected_around_events(section)
        local_type = after.split(" ", 1)[0] if after else None
        checks.append(
            {
                "check": f"the viewer's selected pair moves to another one ({wanted})",
                "met": after is not None
                and after != before
                and (wanted == "any" or local_type == wanted),
                "observed": {"before": before, "after": after},
            }
        )
    if "call_breaks" in expect:
        broke = not section.get("started") or any(r is None for r in recoveries)
        checks.append(
            {
                "check": "the call breaks" if expect["call_breaks"] else "the call survives",
                "met": broke == expect["call_breaks"],
                "observed": recoveries,
            }
        )
    return checks


def call_lines(section: JsonObject) -> list[str]:
    """The call section as a timeline for the terminal (pure): events, ICE states and
    selected pairs of both peers, and echoes per second, on the call's clock."""
    if not section.get("started"):
        return ["call: never started (the peers did not both connect)"]
    rows: list[tuple[float, str]] = []
    for event in section["events"]:
        recovery = event.get("recovery_s")
        after = f"data again {recovery:g} s after" if recovery is not None else "data never again"
        if "recovery_from_s" in event:  # an idle timeout: what counts is the next pause
            after = (
                f"data again {recovery:g} s after the next pause"
                if recovery is not None
                else "data never again after the next pause"
            )
        lasts = event.get("ended_s") is not None and event["ended_s"] != event["began_s"]
        if lasts:
            rows.append((event["began_s"] or 0.0, f"lab     {event['what']}"))
        else:  # instant: its recovery counts from its start
            rows.append((event["began_s"] or 0.0, f"lab     {event['what']} ({after})"))
        if lasts:
            rows.append((event["ended_s"], f"lab     end of: {event['what']} ({after})"))
        if event.get("error"):
            rows.append((event["began_s"] or 0.0, f"lab     event failed: {event['error']}"))
        for inside, old, new in moved_mappings(event.get("mappings") or {}):
            rows.append(
                (event["began_s"] or 0.0, f"lab     {inside} now leaves as {new} (was {old})")
            )
    for role, entries in (section.get("peers") or {}).items():
        for entry in entries:
            if entry["t_s"] is None or entry["t_s"] < 0:
                continue
            if "ice_state" in entry:
                what = f"ICE {entry['ice_state']}"
                if "consent" in entry:
                    what += f": consent {entry['consent'].split(' (')[0]}"
            elif "gathering" in entry:
                what = f"gathering {entry['gathering']}"
            elif "consent" in entry:
                what = f"consent {entry['consent']}"
            elif "ice_restart" in entry:
                what = f"ICE restart ({entry['ice_restart']})"
            else:
                what = f"selected {entry['selected_pair']}"
            rows.append((entry["t_s"], f"{role:<7} {what}"))
    for pause in section.get("pauses") or []:
        rows.append((pause["from_s"], "viewer  pauses its messages"))
        resumed = pause.get("resumed_s")
        back = f"data again {resumed:g} s after" if resumed is not None else "data never again"
        rows.append((pause["to_s"], f"viewer  sends again ({back})"))
    lines = ["call timeline (s since both peers connected):"]
    lines += [f"  {t:7.3f}  {text}" for t, text in sorted(rows, key=lambda r: r[0])]
    echoes = " ".join(str(row["echoes"]) for row in section.get("delivery") or [])
    lines.append(
        f"  echoes per second: {echoes} ({section['messages_echoed']} of "
        f"{section['messages_sent']} messages came back)"
    )
    restarts = section.get("ice_restarts") or {}
    if any(restarts.values()) or None in restarts.values():
        told = ", ".join(
            f"{role} {'cannot (no restartIce in its agent)' if n is None else n}"
            for role, n in restarts.items()
        )
        lines.append(f"  ICE restarts: {told}")
    gap = section.get("longest_gap_s")
    if gap:
        lines.append(f"  longest silence: {gap['length_s']:g} s from {gap['from_s']:g} s")
    return lines
